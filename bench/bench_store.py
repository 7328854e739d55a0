"""Benchmark: the cost of recording one run through `RunWriter`.

A default hall-year produces about 30k events and 60k metrics; writing them
must stay a small part (at most ~20 %) of a ~3 s run. This times a synthetic
run of that size written in engine-sized batches to a fresh SQLite file, and
to PostgreSQL when TWIN_TEST_PG_URL is set (in a throwaway schema).

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

__all__ = ["bench_store"]


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


def bench_store(n_events: int = 30000, n_metrics: int = 60000, repeat: int = 3) -> dict[str, float]:
    """Best-of-`repeat` seconds to write one run of that size; rows per second too."""
    run = synthetic_run(n_events, n_metrics)
    rows = n_events + n_metrics
    out: dict[str, float] = {"events": n_events, "metrics": n_metrics}
    timings = {"sqlite": _sqlite_time(run, repeat)}
    pg_url = os.environ.get(PG_URL_ENV)
    if pg_url:
        with pg_test_schema(pg_url) as url:
            timings["postgresql"] = _time_write(url, run, repeat)
    for backend, seconds in timings.items():
        out[f"{backend}_s"] = round(seconds, 4)
        out[f"{backend}_rows_per_s"] = round(rows / seconds)
    return out


if __name__ == "__main__":
    print(json.dumps(bench_store(), indent=2))
