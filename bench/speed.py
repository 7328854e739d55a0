"""Engine timings: the default hall-year, and how run time scales with the hall.

Role: the measurements behind the "Engine speed" and "Linear scaling"
sections of `python -m bench`. Every run records as a real run does: events
and metrics go to a `ListSink`, so building the records is timed too (only
the database write is left out; `bench.bench_store` times that).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from bench.scenarios import default_hall, scaled_hall
from twin.engine import simulate
from twin.records import ListSink, RunResult
from twin.scenario import Scenario

__all__ = ["Timing", "time_engine", "engine_speed", "scaling", "saturated_crews"]


@dataclass(frozen=True)
class Timing:
    """Wall seconds of repeated runs of one scenario, and what one run produced."""

    scenario: str
    systems: int
    days: float
    walls: tuple[float, ...]
    events: int
    metric_buckets: int
    availability: float

    @property
    def best(self) -> float:
        return min(self.walls)

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def system_days(self) -> float:
        return self.systems * self.days

    @property
    def system_years(self) -> float:
        return self.system_days / 365.0

    def as_dict(self) -> dict[str, object]:
        return {
            "scenario": self.scenario, "systems": self.systems, "days": self.days,
            "walls_s": list(self.walls), "best_s": self.best, "median_s": self.median,
            "events": self.events, "metric_buckets": self.metric_buckets,
            "availability": self.availability,
            "system_days_per_s_best": self.system_days / self.best,
            "system_days_per_s_median": self.system_days / self.median,
            "ms_per_system_year_best": 1000.0 * self.best / self.system_years,
        }


def _metric_buckets(sink: ListSink) -> int:
    series = getattr(sink, "series", None)
    if series is not None:
        return sum(len(s.values) for s in series)
    return len(sink.metrics)


def _one_run(scenario: Scenario, seed: int) -> tuple[float, RunResult, ListSink]:
    sink = ListSink()
    started = time.perf_counter()
    result = simulate(scenario, seed=seed, sink=sink)
    return time.perf_counter() - started, result, sink


def time_engine(scenario: Scenario, repeats: int = 3, seed: int = 1) -> Timing:
    """Run `scenario` `repeats` times with the same seed (same work each time)."""
    walls = []
    for _ in range(repeats):
        wall, result, sink = _one_run(scenario, seed)
        walls.append(wall)
    return Timing(
        scenario=scenario.name,
        systems=result.systems,
        days=result.until_h / 24.0,
        walls=tuple(walls),
        events=len(sink.events),
        metric_buckets=_metric_buckets(sink),
        availability=result.kpis["availability"],
    )


def engine_speed(repeats: int = 3) -> Timing:
    """The default hall (1,020 systems, one year, all mechanisms, default recording)."""
    return time_engine(default_hall(), repeats)


def scaling(factors: tuple[int, ...] = (1, 4, 16), repeats: int = 1) -> list[Timing]:
    """The default hall scaled by each factor (rows, crews, spares, spare systems)."""
    return [
        time_engine(default_hall() if f == 1 else scaled_hall(f), repeats) for f in factors
    ]


def saturated_crews(factor: int = 64) -> Timing:
    """One run of the default hall scaled by `factor` but with the default hall's crews
    (x64: 65,280 systems and 2 crews, whose queue never empties)."""
    return time_engine(scaled_hall(factor, scale_crews=False), repeats=1)
