"""Benchmarks: the cost of recording a run through `RunWriter`.

Two measurements:

- `bench_store`: the write alone. A synthetic run shaped like a default
  hall-year (16k events; as metric series, 8760 hourly hall values and 365
  daily values per row for each of 5 metrics, 20 rows: ~80k buckets in 105
  series), written as the engine writes it (events in batches, then every
  series at once) to a fresh SQLite file, and to PostgreSQL when
  TWIN_TEST_PG_URL is set (in a throwaway schema). Records are events plus
  metric values (one per bucket); rows are what the database stores: events
  plus one row per series.
- `recording_overhead`: the store issue's target, end to end. The default
  hall-year simulated without a sink, then with a `RunWriter` (from
  `begin_run` to `complete`, so building the records is counted too), in
  alternation; recording must add at most 20 % to the run without it.

    python -m bench.bench_store
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.scenarios import default_hall
from storage import Store, open_store
from storage.testing import PG_URL_ENV, SyntheticRun, pg_test_schema, synthetic_run, write_run
from twin.engine import simulate
from twin.scenario import Scenario

__all__ = ["bench_store", "HALL_YEAR", "Overhead", "recording_overhead", "TARGET_OVERHEAD"]

TARGET_OVERHEAD = 0.20  # recording adds at most this share to the run without it

HALL_YEAR = {
    "n_events": 16000,
    "hours": 8760.0,
    "rows": 20,
    "names": ("power_kw", "it_load", "inlet_c", "cooling_kw", "throttled"),
}


def _time_write(url: str, run: SyntheticRun, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        store = open_store(url)
        try:
            start = time.perf_counter()
            write_run(store, run, batch=1000)
            best = min(best, time.perf_counter() - start)
        finally:
            store.close()
    return best


def _sqlite_time(run: SyntheticRun, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):  # a fresh file each time: the first run's cost, not the nth
        with tempfile.TemporaryDirectory() as folder:
            best = min(best, _time_write(str(Path(folder) / "bench.db"), run, repeat=1))
    return best


def bench_store(repeat: int = 5, **shape: object) -> dict[str, float]:
    """Best-of-`repeat` seconds to write one run of `shape` (default `HALL_YEAR`)."""
    run = synthetic_run(**(HALL_YEAR | shape))  # type: ignore[arg-type]
    values = sum(len(s.values) for s in run.series)
    records = len(run.events) + values
    rows = len(run.events) + len(run.series)
    out: dict[str, float] = {
        "events": len(run.events),
        "series": len(run.series),
        "metric_values": values,
    }
    timings = {"sqlite": _sqlite_time(run, repeat)}
    pg_url = os.environ.get(PG_URL_ENV)
    if pg_url:
        with pg_test_schema(pg_url) as url:
            timings["postgresql"] = _time_write(url, run, repeat)
    for backend, seconds in timings.items():
        out[f"{backend}_s"] = round(seconds, 4)
        out[f"{backend}_records_per_s"] = round(records / seconds)
        out[f"{backend}_rows_per_s"] = round(rows / seconds)
    return out


@dataclass(frozen=True)
class Overhead:
    """Paired wall times of the hall-year without and with recording to one backend."""

    backend: str
    plain: tuple[float, ...]
    recorded: tuple[float, ...]

    @property
    def best(self) -> float:
        """Added share, best against best: the cost with the machine's noise left out."""
        return min(self.recorded) / min(self.plain) - 1.0

    @property
    def median(self) -> float:
        """Added share, the median over rounds of each round's pair."""
        pairs = zip(self.plain, self.recorded, strict=True)
        return statistics.median(r / p - 1.0 for p, r in pairs)

    def as_dict(self) -> dict[str, object]:
        return {
            "backend": self.backend, "plain_s": list(self.plain), "recorded_s": list(self.recorded),
            "plain_best_s": min(self.plain), "recorded_best_s": min(self.recorded),
            "added_best_s": min(self.recorded) - min(self.plain),
            "overhead_best": self.best, "overhead_median": self.median,
            "target": TARGET_OVERHEAD, "meets_target": self.best <= TARGET_OVERHEAD,
        }


def _timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _pairs(scenario: Scenario, rounds: int, store_for: Callable[[int], Store]) -> Overhead:
    plain, recorded, backend = [], [], ""
    for i in range(rounds):  # alternate, so drift in the machine's speed hits both alike
        plain.append(_timed(lambda: simulate(scenario)))
        store = store_for(i)
        backend = store.engine.dialect.name
        try:
            recorded.append(_timed(lambda: store.record(scenario)))  # noqa: B023
        finally:
            store.close()
    return Overhead(backend, tuple(plain), tuple(recorded))


def recording_overhead(rounds: int = 15, pg_url: str | None = None) -> list[Overhead]:
    """What recording adds to the default hall-year, on SQLite (a fresh file per
    round: a first run's cost) and, given `pg_url`, on PostgreSQL (a throwaway
    schema). Opening the store is left out: it is paid once per store, not per run."""
    scenario = default_hall()
    simulate(scenario)  # imports and first-touch costs out of the first pair
    out = []
    with tempfile.TemporaryDirectory() as folder:
        out.append(_pairs(scenario, rounds, lambda i: open_store(str(Path(folder) / f"{i}.db"))))
    if pg_url:
        with pg_test_schema(pg_url) as url:
            out.append(_pairs(scenario, rounds, lambda i: open_store(url)))
    return out


if __name__ == "__main__":
    print(json.dumps(bench_store(), indent=2))
    overheads = recording_overhead(pg_url=os.environ.get(PG_URL_ENV))
    print(json.dumps([o.as_dict() for o in overheads], indent=2))
