"""Helpers for tests and benchmarks of code that writes to the store.

`synthetic_run` makes plausible records without the engine: events shaped
like a hall's (failures, outages with their duration, throttle episodes with
the capacity they lost) and metric series as the engine records them (the
hall hourly, each row daily, the last bucket cut at the horizon);
`write_run` pushes them through a `RunWriter` as the engine would;
`pg_test_schema` gives a test its own PostgreSQL schema so that concurrent
tests never see each other's rows.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa

from storage.store import Store
from storage.urls import normalize_url
from twin.records import Event, Metric, MetricSeries, RunResult

__all__ = [
    "SyntheticRun",
    "synthetic_run",
    "write_run",
    "pg_test_schema",
    "PG_URL_ENV",
    "METRIC_NAMES",
]

PG_URL_ENV = "TWIN_TEST_PG_URL"
METRIC_NAMES = ("it_power_kw", "capacity", "throttled")  # names the engine writes
SYSTEMS_PER_ROW = 16
_CAUSES = ("psu", "pump", "fan", "wafer", "feed", "chiller", "cores")
_BASE = {"it_power_kw": (100.0, 5.0), "capacity": (0.8, 0.05), "throttled": (0.02, 0.01)}


@dataclass(frozen=True)
class SyntheticRun:
    """Records and result of a made-up run."""

    events: list[Event]
    series: list[MetricSeries]
    result: RunResult
    header: dict[str, object] = field(default_factory=dict)

    @property
    def metrics(self) -> list[Metric]:
        """Every series expanded to one `Metric` per bucket, as `read_metrics` gives them."""
        return [m for s in self.series for m in s.metrics()]


def synthetic_run(
    n_events: int = 1000,
    hours: float = 240.0,
    *,
    rows: int = 4,
    names: Sequence[str] = METRIC_NAMES,
    seed: int = 0,
    scenario_name: str = "synthetic",
    kpis: dict[str, float] | None = None,
) -> SyntheticRun:
    """A made-up run of `hours` with `n_events` events, reproducible by seed.

    Its hall has `rows` rows of 16 systems. Events alternate failures (even
    indexes; a ``cores`` failure's value is the cores lost, NaN otherwise)
    with outages (value: hours down) and throttle episodes (value: system-hours
    lost). Metrics are one hourly series per name for ``hall`` and one daily
    series per name and row; ``throttled`` has gaps (NaN): one per series, then ~1 %.
    """
    rng = np.random.default_rng(seed)
    until_h = float(hours)
    systems = SYSTEMS_PER_ROW * rows
    events = _events(rng, n_events, until_h, systems)
    series = [
        _series(rng, scope, name, bucket, until_h)
        for scope, bucket in [("hall", 1.0)] + [(f"hall.row{r}", 24.0) for r in range(rows)]
        for name in names
        if until_h > 0.0
    ]
    doc = {"hall": {"rows": rows, "systems": systems}, "seed": seed}
    result = RunResult(
        scenario_name=scenario_name,
        scenario_hash=f"{scenario_name}-{seed:08d}",
        scenario=doc,
        seed=seed,
        until_h=until_h,
        systems=systems,
        wall_s=1.0,
        kpis=dict(kpis if kpis is not None else {"availability": 0.99, "failures.psu": 3.0}),
    )
    header: dict[str, object] = {
        "scenario_name": scenario_name,
        "scenario_hash": result.scenario_hash,
        "scenario": doc,
        "seed": seed,
        "until_h": until_h,
        "systems": systems,
    }
    return SyntheticRun(events, series, result, header)


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


def _series(
    rng: np.random.Generator, scope: str, name: str, bucket: float, until_h: float
) -> MetricSeries:
    mean, sd = _BASE.get(name, (1.0, 0.1))
    values = rng.normal(mean, sd, math.ceil(until_h / bucket))
    if name == "throttled":  # sensor gaps: one per series, then about 1 %
        values[rng.integers(len(values))] = math.nan
        values[rng.random(len(values)) < 0.01] = math.nan
    return MetricSeries(scope, name, 0.0, bucket, until_h, tuple(values.tolist()))


def write_run(
    store: Store,
    run: SyntheticRun,
    *,
    batch: int = 1000,
    complete: bool = True,
    chunk_rows: int | None = None,
) -> int:
    """Write `run` as the engine does: events in batches of `batch`, then every
    series at once; complete it unless told not to (then flush). Returns its id."""
    extra = {} if chunk_rows is None else {"chunk_rows": chunk_rows}
    writer = store.begin_run(**run.header, **extra)  # type: ignore[arg-type]
    for start in range(0, len(run.events), batch):
        writer.write_events(run.events[start : start + batch])
    writer.write_series(run.series)
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
