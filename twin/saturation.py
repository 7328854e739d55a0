"""Warnings for resources that saturate: a queue that grows for the whole run.

A hall scaled up without its support (crews, part stocks, spare systems)
starves quietly: its queues never drain. `Saturation` looks at each queue
once a simulated day (a few hundred wake-ups a year, nothing on the hot
path) and, at the end of the run, warns for each one that never emptied
over the second half of the run while its mean length there exceeded the
first half's: a queue at a stable operating point empties again and again,
one that cannot keep up only grows (or, once everything waits, stays
full). Runs shorter than `MIN_SAMPLES` days are too short to tell.
"""

from __future__ import annotations

from collections.abc import Callable

import simpy

__all__ = ["Saturation", "SAMPLE_H", "MIN_SAMPLES"]

SAMPLE_H = 24.0
MIN_SAMPLES = 8

# a queue's name, what waits in it, the scenario key that sizes its servers
# and its length now
Queue = tuple[str, str, str, Callable[[], int]]


class Saturation:
    """Daily samples of the queues of a run, and the warnings they give."""

    def __init__(self, env: simpy.Environment, queues: list[Queue]) -> None:
        self.env = env
        self.queues = queues
        self.samples: list[list[int]] = [[] for _ in queues]
        env.process(self._sample())

    def _sample(self):  # type: ignore[no-untyped-def]
        while True:
            yield self.env.timeout(SAMPLE_H)
            for series, (_, _, _, length) in zip(self.samples, self.queues, strict=True):
                series.append(length())

    def warnings(self) -> tuple[str, ...]:
        """One line per saturated queue (none for a run shorter than MIN_SAMPLES days)."""
        out = []
        for series, (name, what, key, length) in zip(self.samples, self.queues, strict=True):
            if len(series) < MIN_SAMPLES:
                continue
            half = len(series) // 2
            early, late = series[:half], series[half:]
            if min(late) > 0 and sum(late) / len(late) > sum(early) / len(early):
                out.append(
                    f"{name} saturated: {what} never emptied over the second half of the run "
                    f"and grew (mean {sum(early) / len(early):,.1f} in the first half, "
                    f"{sum(late) / len(late):,.1f} in the second, {length():,} at the end); "
                    f"raise {key}"
                )
        return tuple(out)
