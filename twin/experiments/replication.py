"""One replication as a task: what an executor runs, wherever it runs.

A `Task` carries everything the replication needs (the level's resolved
scenario as JSON text, its seed, what to record) and nothing of the store,
so a process-pool worker or a Dask worker runs it alike; `run_replication`
returns an `Outcome`: the run's result and, at the ``metrics`` and
``events`` record levels, its records, which the process that owns the
store commits. A worker validates each distinct scenario once
(`_scenario` keeps the last few).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from twin.records import EventRow, MetricSeries, RunResult
from twin.scenario import Scenario

__all__ = ["RECORD_LEVELS", "Task", "Outcome", "run_replication"]

# What a replication keeps besides its KPIs, each level including the one before.
RECORD_LEVELS = ("kpis", "metrics", "events")


@dataclass(frozen=True)
class Task:
    """Replication `replication` of level `level`: its scenario (canonical JSON), seed
    and record level."""

    level: int
    replication: int
    seed: int
    document: str
    record: str = "kpis"

    @property
    def key(self) -> str:
        """A name that only this very task has (Dask's task key): two levels may resolve to
        the same scenario (``twin compare A A``), so the level and replication are in it."""
        digest = hashlib.sha256(self.document.encode()).hexdigest()[:16]
        return (f"wafertwin-replication-{digest}-{self.seed}-{self.record}"
                f"-{self.level}-{self.replication}")


@dataclass(frozen=True)
class Outcome:
    """A finished replication: its result and the records its level asked for."""

    level: int
    replication: int
    result: RunResult
    events: list[EventRow] = field(default_factory=list)
    series: list[MetricSeries] = field(default_factory=list)


class _Records:
    """A sink that keeps the metric series, and the events if asked."""

    def __init__(self, events: bool) -> None:
        self.keep_events = events
        self.events: list[EventRow] = []
        self.series: list[MetricSeries] = []

    def write_events(self, events: Sequence[EventRow]) -> None:
        if self.keep_events:
            self.events.extend(events)

    def write_series(self, series: Sequence[MetricSeries]) -> None:
        self.series.extend(series)


@functools.lru_cache(maxsize=8)
def _scenario(document: str) -> Scenario:
    return Scenario.model_validate(json.loads(document))


def run_replication(task: Task) -> Outcome:
    """Simulate one replication; the same task gives the same outcome anywhere."""
    from twin.engine import simulate

    if task.record not in RECORD_LEVELS:
        raise ValueError(f"record level {task.record!r} is not one of {RECORD_LEVELS}")
    scenario = _scenario(task.document)
    if task.record == "kpis":
        return Outcome(task.level, task.replication, simulate(scenario, seed=task.seed))
    sink = _Records(events=task.record == "events")
    result = simulate(scenario, seed=task.seed, sink=sink)
    return Outcome(task.level, task.replication, result, sink.events, sink.series)
