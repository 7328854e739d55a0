"""`Agenda`: the next times of one mechanism, held in a heap and fired in order.

A mechanism (failures of a component class, thermal crossings, ...) keeps one
pending time per key (a unit, a system) and one SimPy timeout for the
earliest of them. Rescheduling a key replaces its pending time (the old
heap entry is skipped when popped); an earlier time re-arms the agenda
there. This is the "one timeout per mechanism" of docs/performance.md, *The
approach*.

The agenda is driven by event callbacks, not by a generator process: a
process paid for resuming its generator on every firing, and for an
`Interrupt` (an event, a thrown exception) on every earlier time. An
earlier time arms a new timeout at once (the one it replaces is skipped
when it comes up): one SimPy event, where a process needed three. Only the
first arming waits for an urgent event at the start of the run, so that a
mechanism can fill its agenda after it is built.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Iterable

import numpy as np
import simpy
from simpy.events import NORMAL, URGENT, EventPriority

__all__ = ["Agenda", "NO_TIME", "Wake"]


class Wake(simpy.Event):
    """An event triggered as it is made that calls `callback`: a timeout (`delay`
    later, NORMAL) or, URGENT, processed before the normal events of the same
    instant. The lightest timeout with a callback: what the agendas arm, and
    what a mechanism on callbacks (the repair pipeline, part deliveries) waits
    on."""

    def __init__(
        self,
        env: simpy.Environment,
        callback: Callable[[simpy.Event], None],
        delay: float = 0.0,
        priority: EventPriority = NORMAL,
    ) -> None:
        # what SimPy's own Timeout, Initialize and Interruption set: one schedule call
        self.env = env
        self.callbacks = [callback]
        self._value = None
        self._ok = True
        env.schedule(self, priority, delay)


NO_TIME = -1  # the stamp of a key with no pending time (entries have seq >= 0)


class Agenda:
    """Pending times by key, fired in time order by one SimPy timeout at a time.

    Entries are ``(t, seq, key)``, fired in that order; `seq` counts the calls,
    so equal times fire in the order they were scheduled. A key's *stamp* is the
    seq of its pending entry (`NO_TIME`: it has none); an entry whose seq is not
    its key's stamp is stale and skipped. The first batch a fresh agenda gets
    (`schedule_many` at the start of a run: every unit of a class, every wafer)
    is not turned into heap entries: it stays three sorted arrays read from the
    front, and its keys have no stamp until first touched (a key absent from
    the stamps still has its batch entry pending). A hall-year fires a few
    thousand of a large hall's hundreds of thousands of first failure times;
    the rest cost a sort, not a Python tuple, a float and a dict entry each.
    Nor are they all sorted: the batch is sorted a chunk at a time, the
    earliest sixteenth first (every entry of the time it ends at with it), the
    next, twice as long, when it is read through (`_sort_chunk`); a GPU
    class's year reads ~6 % of its 55,200 units' times.
    """

    def __init__(self, env: simpy.Environment, handler: Callable[[int], None]) -> None:
        self.env = env
        self._handler = handler
        self._heap: list[tuple[float, int, int]] = []
        self._stamp: dict[int, int] = {}
        self._seq = itertools.count()
        # the first batch's chunk being read, sorted by (t, seq), read from `_next`;
        # `_head` its first entry not yet passed, as a heap entry (None: not read yet,
        # or none left); `_rest` the batch's later entries, in seq order
        self._batch: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._rest: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._next = 0
        self._head: tuple[float, int, int] | None = None
        self._wake_at = -math.inf  # -inf: firing, or about to arm
        self._timer: simpy.Event | None = None  # the timeout armed for `_wake_at`
        self._on_timer = self._fire  # one bound method, not one per timeout
        Wake(env, self._arm, priority=URGENT)

    def schedule(self, key: int, t: float) -> None:
        """Fire `handler(key)` at time `t`, replacing any pending time of `key`."""
        t = float(t)  # a numpy scalar would make the clock, and every time after it, one
        seq = next(self._seq)
        self._stamp[key] = seq
        heapq.heappush(self._heap, (t, seq, key))
        if t < self._wake_at:
            self._rearm()

    def schedule_many(self, keys: Iterable[int], times: Iterable[float]) -> None:
        """Schedule many keys at once, as `schedule` would one after the other (a key
        given twice: its later time holds). A fresh agenda keeps a batch of distinct
        keys as arrays (the start of a run); a later batch goes on the heap, pushed
        one by one when small (a swap) so that cost never grows with the hall."""
        if isinstance(keys, range):  # every unit of a class: no list of ints made
            key_array = np.arange(keys.start, keys.stop, keys.step, dtype=np.int64)
        else:
            key_array = np.asarray(keys if isinstance(keys, np.ndarray) else list(keys), np.int64)
        key_array = key_array.reshape(-1)
        time_array = np.asarray(times, dtype=float).reshape(-1)
        n = len(key_array)
        if n != len(time_array):
            raise ValueError(f"{n} keys for {len(time_array)} times")
        if not n:
            return
        first = next(self._seq)
        self._seq = itertools.count(first + n)
        fresh = not self._stamp and not self._heap and self._batch is None
        if fresh and (isinstance(keys, range) or _distinct(key_array)):
            self._rest = (time_array, np.arange(first, first + n), key_array)
            self._sort_chunk(max(1, n // 16))
        else:
            self._push(key_array.tolist(), time_array.tolist(), first)
        if time_array.min() < self._wake_at:
            self._rearm()

    def _push(self, keys: list[int], times: list[float], first: int) -> None:
        seqs = range(first, first + len(keys))
        self._stamp.update(zip(keys, seqs, strict=True))
        entries = list(zip(times, seqs, keys, strict=True))
        if len(entries) * 8 > len(self._heap):
            self._heap.extend(entries)
            heapq.heapify(self._heap)
        else:
            for entry in entries:
                heapq.heappush(self._heap, entry)

    def _sort_chunk(self, size: int) -> None:
        """The batch's next chunk: its `size` earliest later entries, with every other
        of the time the last of them is at (a later chunk's times are all later),
        sorted by (t, seq); all of them if that is not much less than all."""
        assert self._rest is not None
        times, seqs, keys = self._rest
        if len(times) > 2 * size:
            early = times <= np.partition(times, size - 1)[size - 1]
            late = ~early
            self._rest = (times[late], seqs[late], keys[late])
            times, seqs, keys = times[early], seqs[early], keys[early]
        else:
            self._rest = None
        order = _time_order(times)
        self._batch = (times[order], seqs[order], keys[order])
        self._next = 0

    def cancel(self, key: int) -> None:
        self._stamp[key] = NO_TIME

    def _batch_head(self) -> tuple[float, int, int] | None:
        """Read the batch on to its first entry still pending (its key untouched since),
        past a head whose key was touched, into its next chunk when one is read
        through; None, and no batch, when none is left."""
        assert self._batch is not None
        times, seqs, keys = self._batch
        stamp = self._stamp
        i = self._next + (self._head is not None)
        while True:
            n = len(keys)
            while i < n and int(keys[i]) in stamp:
                i += 1
            if i < n or self._rest is None:
                break
            self._sort_chunk(2 * n)
            times, seqs, keys = self._batch
            i = 0
        self._next = i
        if i == n:
            self._batch = self._head = None
            return None
        head = self._head = (float(times[i]), int(seqs[i]), int(keys[i]))
        return head

    def _earliest(self) -> tuple[float, int, int] | None:
        """The earliest pending entry, heap or batch (stale heap entries dropped)."""
        heap, stamp = self._heap, self._stamp
        while heap and stamp.get(heap[0][2]) != heap[0][1]:
            heapq.heappop(heap)
        if self._batch is None:
            return heap[0] if heap else None
        head = self._head
        if head is None or head[2] in stamp:  # not read yet, or passed
            head = self._batch_head()
        if heap and (head is None or heap[0] < head):
            return heap[0]
        return head

    def _rearm(self) -> None:
        """A time before the armed one: arm a timeout for it (the armed one is stale)."""
        self._arm_for(self._earliest())

    def _arm(self, _event: object = None) -> None:
        """Arm a timeout for the earliest pending entry (none if there is none)."""
        self._arm_for(self._earliest())

    def _arm_for(self, entry: tuple[float, int, int] | None) -> None:
        if entry is None:
            self._wake_at, self._timer = math.inf, None
            return
        t = entry[0]
        self._wake_at = t
        self._timer = Wake(self.env, self._on_timer, max(t - self.env.now, 0.0))

    def _fire(self, event: simpy.Event) -> None:
        if event is not self._timer:
            return  # a timeout an earlier time replaced
        self._wake_at = -math.inf
        heap, stamp, handler = self._heap, self._stamp, self._handler
        now = self.env.now
        while (entry := self._earliest()) is not None and entry[0] <= now:
            if entry is self._head:
                self._next += 1
                self._head = None
            else:
                heapq.heappop(heap)
            key = entry[2]
            stamp[key] = NO_TIME
            handler(key)
        self._arm_for(entry)


def _time_order(times: np.ndarray) -> np.ndarray:
    """The indices that sort `times`, equal times in index (seq) order: numpy's fast
    unstable sort (a third of a stable one's time on a class's units), sorted
    again stably only if two times are equal."""
    order = np.argsort(times)
    ordered = times[order]
    if bool((ordered[1:] == ordered[:-1]).any()):
        order = np.argsort(times, kind="stable")
    return order


def _distinct(keys: np.ndarray) -> bool:
    ordered = np.sort(keys)
    return not bool((ordered[1:] == ordered[:-1]).any())
