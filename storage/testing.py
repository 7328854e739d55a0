"""Helpers for tests and benchmarks of code that writes to the store.

`synthetic_run` makes plausible records without the engine (scopes shaped like
a hall; failures, outages with their duration, throttle episodes with the
capacity they lost); `write_run`
pushes them through a `RunWriter` exactly as the engine would;
`pg_test_schema` gives a test its own PostgreSQL schema so that concurrent
tests never see each other's rows.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa

from storage.store import Store
from storage.urls import normalize_url
from twin.records import Event, Metric, RunResult

__all__ = ["SyntheticRun", "synthetic_run", "write_run", "pg_test_schema", "PG_URL_ENV"]

PG_URL_ENV = "TWIN_TEST_PG_URL"
SYSTEMS_PER_ROW = 16
_CAUSES = ("psu", "pump", "fan", "wafer", "feed", "chiller", "cores")


@dataclass(frozen=True)
class SyntheticRun:
    """Records and result of a made-up run."""

    events: list[Event]
    metrics: list[Metric]
    result: RunResult
    header: dict[str, object] = field(default_factory=dict)


def synthetic_run(
    n_events: int = 1000,
    n_metrics: int = 2000,
    *,
    seed: int = 0,
    scenario_name: str = "synthetic",
    kpis: dict[str, float] | None = None,
) -> SyntheticRun:
    """A made-up run with `n_events` events and `n_metrics` metrics, reproducible by seed."""
    rng = np.random.default_rng(seed)
    until_h = 8760.0
    events = _events(rng, n_events, until_h, 64)
    metrics = [
        Metric(float(i), 1.0, f"hall.row{i % 4}", ("power_kw", "it_load")[i % 2], float(v))
        for i, v in enumerate(rng.normal(100.0, 5.0, n_metrics))
    ]
    doc = {"hall": {"rows": 4, "systems": 64}, "seed": seed}
    result = RunResult(
        scenario_name=scenario_name,
        scenario_hash=f"{scenario_name}-{seed:08d}",
        scenario=doc,
        seed=seed,
        until_h=until_h,
        systems=64,
        wall_s=1.0,
        kpis=dict(kpis if kpis is not None else {"availability": 0.99, "failures.psu": 3.0}),
    )
    header: dict[str, object] = {
        "scenario_name": scenario_name,
        "scenario_hash": result.scenario_hash,
        "scenario": doc,
        "seed": seed,
        "until_h": until_h,
        "systems": 64,
    }
    return SyntheticRun(events, metrics, result, header)


def _events(rng: np.random.Generator, n: int, until_h: float, systems: int) -> list[Event]:
    t = np.sort(rng.uniform(0.0, until_h, n))
    cause = rng.integers(0, len(_CAUSES), n)
    system = rng.integers(0, systems, n)
    out = []
    for i in range(n):
        s = int(system[i])
        scope = f"hall.row{s // SYSTEMS_PER_ROW}.rack{s // 4}.sys{s}"
        why = _CAUSES[cause[i]]
        if i % 2 == 0:
            kind, value = "failure", float(rng.integers(1, 9)) if why == "cores" else math.nan
        elif i % 4 == 1:
            kind, value = "outage", float(rng.exponential(8.0))
        else:
            kind, value = "throttle", float(rng.exponential(1.5))
        out.append(Event(float(t[i]), scope, kind, why, value))
    return out


def write_run(
    store: Store,
    run: SyntheticRun,
    *,
    batch: int = 1000,
    complete: bool = True,
    chunk_rows: int | None = None,
) -> int:
    """Write `run` in engine-sized batches; complete it unless told not to. Returns its id."""
    extra = {} if chunk_rows is None else {"chunk_rows": chunk_rows}
    writer = store.begin_run(**run.header, **extra)  # type: ignore[arg-type]
    for start in range(0, max(len(run.events), len(run.metrics)), batch):
        writer.write_events(run.events[start : start + batch])
        writer.write_metrics(run.metrics[start : start + batch])
    if complete:
        writer.complete(run.result)
    else:
        writer.flush()
    return writer.run_id


@contextmanager
def pg_test_schema(base_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh, uniquely named schema, dropped afterwards."""
    url = normalize_url(base_url)
    name = f"twin_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        scoped = url.update_query_dict({"options": f"-csearch_path={name}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        admin.dispose()
