"""`Agenda`: the next times of one mechanism, held in a heap and fired in order.

A mechanism (failures of a component class, thermal crossings, ...) keeps one
pending time per key (a unit, a system) and one SimPy timeout for the
earliest of them. Rescheduling a key replaces its pending time (the old
heap entry is skipped when popped); an earlier time re-arms the agenda
there. This is the "one process per mechanism" of docs/performance.md, *The
approach*.

The agenda is driven by event callbacks, not by a generator process: a
process paid for resuming its generator on every firing, and for an
`Interrupt` (an event, a thrown exception) on every earlier time. The
events are created at the same instants and with the same priorities as the
process made them (an urgent event where the process was interrupted or
started, the timeout when it went to sleep), so every event of a run keeps
its place in SimPy's queue and runs stay bit-identical to the process's.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Iterable

import numpy as np
import simpy
from simpy.events import URGENT

__all__ = ["Agenda"]


class _Urgent(simpy.Event):
    """An event triggered as it is made and processed before the normal events of
    the same instant: where SimPy would start or interrupt a process."""

    def __init__(self, env: simpy.Environment, callback: Callable[[simpy.Event], None]) -> None:
        # what SimPy's own Initialize and Interruption events set, without a process
        self.env = env
        self.callbacks = [callback]
        self._value = None
        self._ok = True
        env.schedule(self, URGENT)


class Agenda:
    """Pending times by key, fired in time order by one SimPy timeout at a time."""

    def __init__(self, env: simpy.Environment, handler: Callable[[int], None]) -> None:
        self.env = env
        self._handler = handler
        self._heap: list[tuple[float, int, int]] = []
        self._stamp: dict[int, int] = {}
        self._seq = itertools.count()
        self._wake_at = -math.inf  # -inf: firing, or about to arm
        self._timer: simpy.Event | None = None  # the timeout armed for `_wake_at`
        _Urgent(env, self._arm)

    def schedule(self, key: int, t: float) -> None:
        """Fire `handler(key)` at time `t`, replacing any pending time of `key`."""
        t = float(t)  # a numpy scalar would make the clock, and every time after it, one
        seq = next(self._seq)
        self._stamp[key] = seq
        heapq.heappush(self._heap, (t, seq, key))
        if t < self._wake_at:
            self._rearm()

    def schedule_many(self, keys: Iterable[int], times: Iterable[float]) -> None:
        """Schedule many keys at once, as `schedule` would one after the other: one
        heapify for a big batch (the start of a run), pushes for a small one (a
        swap), so cost never grows with the hall. Keys and times go through numpy
        in one pass each: a Python loop converting element by element took half of
        the build of a large hall."""
        key_list: list[int] = (
            keys.astype(np.int64).reshape(-1).tolist() if isinstance(keys, np.ndarray)
            else list(map(int, keys))
        )
        time_list: list[float] = np.asarray(times, dtype=float).reshape(-1).tolist()
        if len(key_list) != len(time_list):
            raise ValueError(f"{len(key_list)} keys for {len(time_list)} times")
        if not key_list:
            return
        first = next(self._seq)
        seqs = range(first, first + len(key_list))
        self._seq = itertools.count(seqs.stop)
        self._stamp.update(zip(key_list, seqs))  # a key given twice: its later time holds
        entries = list(zip(time_list, seqs, key_list))
        if len(entries) * 8 > len(self._heap):
            self._heap.extend(entries)
            heapq.heapify(self._heap)
        else:
            for entry in entries:
                heapq.heappush(self._heap, entry)
        if min(time_list) < self._wake_at:
            self._rearm()

    def cancel(self, key: int) -> None:
        self._stamp.pop(key, None)

    def _rearm(self) -> None:
        """A time before the armed one: drop that timeout and arm again, now."""
        self._wake_at = -math.inf
        self._timer = None
        _Urgent(self.env, self._arm)

    def _arm(self, _event: object = None) -> None:
        """Arm a timeout for the earliest live entry (none if there is none)."""
        heap, stamp = self._heap, self._stamp
        while heap and stamp.get(heap[0][2]) != heap[0][1]:
            heapq.heappop(heap)
        if not heap:
            self._wake_at, self._timer = math.inf, None
            return
        t = heap[0][0]
        self._wake_at = t
        timer = self._timer = self.env.timeout(max(t - self.env.now, 0.0))
        timer.callbacks.append(self._fire)  # type: ignore[union-attr]

    def _fire(self, event: simpy.Event) -> None:
        if event is not self._timer:
            return  # a timeout an earlier time replaced
        self._wake_at = -math.inf
        heap, stamp, handler = self._heap, self._stamp, self._handler
        now = self.env.now
        while heap and heap[0][0] <= now:
            _, seq, key = heapq.heappop(heap)
            if stamp.get(key) == seq:
                del stamp[key]
                handler(key)
        self._arm()
