"""Benchmark: the cost of recording one run through `RunWriter`.

A default hall-year produces about 16k events and, as metric series, 8760
hourly hall values and 365 daily values per row for each of 5 metrics (20
rows: ~80k buckets in 105 series). Recording it must stay a small part (at
most ~20 %) of the ~0.3 s the simulation of that year takes. This times a
synthetic run of that shape written as the engine writes it (events in
batches, then every series at once) to a fresh SQLite file, and to
PostgreSQL when TWIN_TEST_PG_URL is set (in a throwaway schema).

Records are events plus metric values (one per bucket); rows are what the
database stores: events plus one row per series.

    python -m bench.bench_store
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from storage import open_store
from storage.testing import PG_URL_ENV, SyntheticRun, pg_test_schema, synthetic_run, write_run

__all__ = ["bench_store", "HALL_YEAR"]

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


if __name__ == "__main__":
    print(json.dumps(bench_store(), indent=2))
