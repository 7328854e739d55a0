"""`Slowest`: the lowest speed among a changing set of members, in O(log n) per
change (a gang computes at the speed of its slowest member, docs/training.md).

Members at full speed (1) are not tracked; each slower speed level has a count
of members at it, and the levels sit on a min-heap. A level whose count falls
to zero stays on the heap until it reaches the top (lazy deletion); the heap is
rebuilt from the live levels when stale ones outnumber them, so it never grows
with the number of changes.
"""

from __future__ import annotations

import heapq

__all__ = ["Slowest"]


class Slowest:
    """Counts of members per speed level below 1, and the lowest live level."""

    def __init__(self) -> None:
        self._count: dict[float, int] = {}  # live levels only
        self._heap: list[float] = []
        self._on_heap: set[float] = set()

    def add(self, speed: float) -> None:
        if speed >= 1.0:
            return
        count = self._count.get(speed, 0)
        self._count[speed] = count + 1
        if count == 0 and speed not in self._on_heap:
            heapq.heappush(self._heap, speed)
            self._on_heap.add(speed)

    def remove(self, speed: float) -> None:
        if speed >= 1.0:
            return
        count = self._count[speed] - 1
        if count:
            self._count[speed] = count
        else:
            del self._count[speed]
            if len(self._heap) > 2 * len(self._count) + 16:
                self._heap = list(self._count)
                heapq.heapify(self._heap)
                self._on_heap = set(self._heap)

    def lowest(self) -> float:
        """The lowest member's speed (1 when none is slow)."""
        heap = self._heap
        while heap and heap[0] not in self._count:
            self._on_heap.discard(heapq.heappop(heap))
        return heap[0] if heap else 1.0
