"""`Agenda`: the process of one mechanism, holding its next times in a heap.

A mechanism (failures of a component class, thermal crossings, ...) keeps one
pending time per key (a unit, a system) and one SimPy process that sleeps
until the earliest. Rescheduling a key replaces its pending time (the old
heap entry is skipped when popped); an earlier time wakes the process with
an interrupt. This is the "one process per mechanism" of docs/performance.md, *The approach*.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Iterable

import simpy

__all__ = ["Agenda"]


class Agenda:
    """Pending times by key, fired in time order by one SimPy process."""

    def __init__(self, env: simpy.Environment, handler: Callable[[int], None]) -> None:
        self.env = env
        self._handler = handler
        self._heap: list[tuple[float, int, int]] = []
        self._stamp: dict[int, int] = {}
        self._seq = itertools.count()
        self._wake_at = -math.inf  # -inf: awake (firing) or about to sleep
        self._process = env.process(self._run())

    def schedule(self, key: int, t: float) -> None:
        """Fire `handler(key)` at time `t`, replacing any pending time of `key`."""
        t = float(t)  # a numpy scalar would make the clock, and every time after it, one
        seq = next(self._seq)
        self._stamp[key] = seq
        heapq.heappush(self._heap, (t, seq, key))
        if t < self._wake_at:
            self._wake_at = -math.inf
            self._process.interrupt()

    def schedule_many(self, keys: Iterable[int], times: Iterable[float]) -> None:
        """Schedule many keys at once: one heapify for a big batch (the start of a
        run), pushes for a small one (a swap), so cost never grows with the hall."""
        entries = []
        for key, t in zip(keys, times, strict=True):
            seq = next(self._seq)
            self._stamp[int(key)] = seq
            entries.append((float(t), seq, int(key)))
        if not entries:
            return
        if len(entries) * 8 > len(self._heap):
            self._heap.extend(entries)
            heapq.heapify(self._heap)
        else:
            for entry in entries:
                heapq.heappush(self._heap, entry)
        if min(entries)[0] < self._wake_at:
            self._wake_at = -math.inf
            self._process.interrupt()

    def cancel(self, key: int) -> None:
        self._stamp.pop(key, None)

    def _run(self):  # type: ignore[no-untyped-def]
        env, heap, stamp = self.env, self._heap, self._stamp
        while True:
            while heap and stamp.get(heap[0][2]) != heap[0][1]:
                heapq.heappop(heap)
            t = heap[0][0] if heap else math.inf
            self._wake_at = t
            try:
                yield env.timeout(max(t - env.now, 0.0)) if t < math.inf else env.event()
            except simpy.Interrupt:
                continue
            self._wake_at = -math.inf
            now = env.now
            while heap and heap[0][0] <= now:
                _, seq, key = heapq.heappop(heap)
                if stamp.get(key) == seq:
                    del stamp[key]
                    self._handler(key)
