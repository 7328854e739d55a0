"""Warnings for resources that cannot keep up: crews, part stocks, spare systems.

A hall scaled up without its support starves quietly. `Saturation` looks at
each resource once a simulated day (a few hundred wake-ups a year, nothing on
the hot path): the length of its queue, and two running totals in one unit,
the demand on it and its capacity. At the end of the run it judges the
second half (the first may still carry the start-up) and warns for a
resource when both hold there:

- **work waited**: its queue held work on at least `WAITED_SHARE` of the
  daily samples. Nobody waits most days for a resource that keeps up; one
  fed by periodic deliveries (an (s, Q) reorder, an RMA return) drains now
  and then even while it cannot keep up, so the test is not "never emptied";
- **demand reached capacity**: demand / capacity over that half is at least
  `FULL_LOAD`. Crews: hands-on hours worked per on-shift crew-hour (a busy
  share, about 1 for crews that cannot keep up whatever their backlog, so
  full counts from `FULL_LOAD`). A part: the demand over a lead time per
  mean stock position of its (s, Q) policy, reorder point + (order quantity
  + 1) / 2 (above 1 the stock expected when a delivery lands is negative:
  repairs wait on most deliveries, though the backlog stays level). Spare
  systems: wafer failures x (mean swap time + mean RMA time) per spare
  system (Little's law: the spares away from the pool, against the pool).

A queue that merely fills overnight (crews on a day shift) or in a burst has
a low load; a resource at full load whose queue stays empty has nobody
waiting on it. Runs shorter than `MIN_SAMPLES` days are too short to tell.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import simpy

__all__ = ["Saturation", "Queue", "SAMPLE_H", "MIN_SAMPLES", "WAITED_SHARE", "FULL_LOAD"]

SAMPLE_H = 24.0
MIN_SAMPLES = 8
WAITED_SHARE = 0.5
FULL_LOAD = 0.95


@dataclass(frozen=True)
class Queue:
    """One resource as `Saturation` watches it."""

    name: str  # e.g. "spares.psu"
    waiting: str  # what waits for it, e.g. "repairs waited for a part"
    raise_key: str  # the scenario keys that size it
    length: Callable[[], int]  # the queue's length now
    demand: Callable[[], float]  # demand on it since the start, in the unit of `capacity`
    capacity: Callable[[], float]  # its capacity since the start
    load: str  # what demand / capacity is, e.g. "demand over a lead time / (s + Q)"


class Saturation:
    """Daily samples of the resources of a run, and the warnings they give."""

    def __init__(self, env: simpy.Environment, queues: list[Queue]) -> None:
        self.env = env
        self.queues = queues
        # per queue, per day: (queue length, demand so far, capacity so far)
        self.samples: list[list[tuple[int, float, float]]] = [[] for _ in queues]
        env.process(self._sample())

    def _sample(self):  # type: ignore[no-untyped-def]
        while True:
            yield self.env.timeout(SAMPLE_H)
            for series, q in zip(self.samples, self.queues, strict=True):
                series.append((q.length(), q.demand(), q.capacity()))

    def warnings(self) -> tuple[str, ...]:
        """One line per saturated resource (none for a run shorter than MIN_SAMPLES days)."""
        out = []
        for series, q in zip(self.samples, self.queues, strict=True):
            if len(series) < MIN_SAMPLES:
                continue
            half = len(series) // 2
            late = [length for length, _, _ in series[half:]]
            waited = sum(length > 0 for length in late) / len(late)
            (_, demand_0, capacity_0), (_, demand_1, capacity_1) = series[half - 1], series[-1]
            load = _ratio(demand_1 - demand_0, capacity_1 - capacity_0)
            if waited >= WAITED_SHARE and load >= FULL_LOAD:
                out.append(
                    f"{q.name} saturated: {q.waiting} on {waited:.0%} of the days of the "
                    f"second half of the run (mean {sum(late) / len(late):,.1f} waiting, "
                    f"{q.length():,} at the end); {q.load} = {load:,.2f} there; "
                    f"raise {q.raise_key}"
                )
        return tuple(out)


def _ratio(demand: float, capacity: float) -> float:
    if capacity > 0.0:
        return demand / capacity
    return math.inf if demand > 0.0 else 0.0
