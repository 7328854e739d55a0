"""Sweeps in the store: each replication committed once, read back for a resume.

The process that runs a sweep owns its store connection; workers (local
processes or Dask) only simulate and send their outcome back. `SweepLedger`
commits an outcome in one transaction: its run row, already `completed`,
then its KPIs and, at the ``metrics`` and ``events`` record levels, its
metric series and events. The run row is inserted with ON CONFLICT DO
NOTHING on the unique (`sweep_id`, `level`, `replication`): a replication
that arrives twice (a retried Dask task, a resume racing a late worker) is
skipped whole the second time, and a sweep killed at any moment has each
replication either entirely committed or not at all, so a resume
(`committed_kpis`, then run what is missing) loses none and counts none
twice. Runs of a sweep never pass through `running`, so no liveness
bookkeeping applies to them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from storage import schema
from storage.bulk import insert_events, insert_rows
from storage.liveness import utcnow
from storage.query import db_message
from storage.store import Store, SweepLevel, _new_run_row
from storage.writer import SERIES_COLUMNS, _kpi, _series_row
from twin.errors import StoreError
from twin.experiments.design import Level, level_of
from twin.experiments.executors import Executor
from twin.experiments.replication import Outcome
from twin.experiments.stats import parse_target
from twin.experiments.sweep import Plan, Progress, SweepResults, run_sweep
from twin.scenario import parse_scenario

__all__ = [
    "SweepLedger", "StoredSweep", "StoredLevel", "load_sweep", "committed_kpis",
    "new_sweep", "set_replications", "previous_night", "nightly_sweeps", "run_stored",
]  # fmt: skip


@dataclass(frozen=True)
class StoredLevel:
    """A level as stored: its factor assignments, every override, its run name and
    the resolved scenario document."""

    index: int
    assignments: tuple[str, ...]
    overrides: tuple[str, ...]
    name: str
    scenario_hash: str
    document: dict[str, Any]


@dataclass(frozen=True)
class StoredSweep:
    """A sweep's row and its levels: all a resume needs."""

    id: int
    status: str
    seed: int | None
    record: str
    replications: int
    settings: dict[str, Any]
    factors: dict[str, Any]
    label: str | None
    night: date | None
    code_version: str
    levels: tuple[StoredLevel, ...]


def new_sweep(
    store: Store,
    levels: Sequence[Level],
    *,
    seed: int,
    settings: Mapping[str, Any],
    record: str = "kpis",
    factors: Mapping[str, Any] | None = None,
    label: str | None = None,
    night: date | None = None,
) -> int:
    """Store a new sweep of `levels` (level 0 is its base scenario); returns its id.
    `settings`: what `twin.experiments.sweep.settings` makes."""
    rows = [
        SweepLevel(
            level.scenario.name, level.scenario.digest(), level.scenario.document(),
            level.assignments, level.overrides, level.name,
        )
        for level in levels
    ]  # fmt: skip
    base = rows[0]
    # a level's document is stored once per hash, which leaves the horizon out: the one
    # stored may be another run's, so the sweep keeps each level's own
    settings = {**settings, "horizons_h": [level.scenario.run.until for level in levels]}
    return store.create_sweep(
        scenario_name=base.scenario_name, scenario_hash=base.scenario_hash,
        scenario=base.scenario, factors=factors or {}, replications=settings["replications"],
        seed=seed, record=record, settings=settings, label=label, night=night, levels=rows,
    )  # fmt: skip


def load_sweep(store: Store, sweep_id: int) -> StoredSweep:
    """The stored sweep `sweep_id` (a `StoreError` if there is none)."""
    sweeps, levels, scenarios = schema.sweeps, schema.sweep_levels, schema.scenarios
    with store.reading() as conn:
        row = conn.execute(sa.select(sweeps).where(sweeps.c.id == sweep_id)).first()
        if row is None:
            raise StoreError(f"no sweep {sweep_id} in {store.url}")
        stored = conn.execute(
            sa.select(levels, scenarios.c.hash, scenarios.c.document)
            .join(scenarios, scenarios.c.id == levels.c.scenario_id)
            .where(levels.c.sweep_id == sweep_id)
            .order_by(levels.c.level)
        ).all()
    if not stored:
        raise StoreError(f"sweep {sweep_id} in {store.url} has no levels (made before 0006)")
    return StoredSweep(
        id=row.id, status=row.status, seed=row.seed, record=row.record,
        replications=row.replications, settings=json.loads(row.settings),
        factors=json.loads(row.factors), label=row.label, night=row.night,
        code_version=row.code_version,
        levels=tuple(
            StoredLevel(
                level.level, tuple(json.loads(level.assignments)),
                tuple(json.loads(level.overrides)), level.name, level.hash,
                json.loads(level.document),
            )
            for level in stored
        ),
    )  # fmt: skip


def committed_kpis(store: Store, sweep_id: int) -> dict[tuple[int, int], dict[str, float]]:
    """The KPIs of each committed replication of a sweep, by (level, replication);
    a NULL value (a NaN KPI) reads as NaN."""
    runs, kpis = schema.runs, schema.kpis
    query = (
        sa.select(runs.c.level, runs.c.replication, kpis.c.name, kpis.c.value)
        .join(kpis, kpis.c.run_id == runs.c.id)
        .where(runs.c.sweep_id == sweep_id, runs.c.status == "completed")
        .where(runs.c.level.is_not(None))
        .order_by(runs.c.level, runs.c.replication)
    )
    out: dict[tuple[int, int], dict[str, float]] = {}
    with store.reading() as conn:
        for level, replication, name, value in conn.execute(query):
            out.setdefault((level, replication), {})[name] = (
                float("nan") if value is None else float(value)
            )
    return out


class SweepLedger:
    """Commits a sweep's outcomes to the store, each (level, replication) once."""

    def __init__(self, store: Store, sweep: StoredSweep) -> None:
        self.store = store
        self.sweep = sweep
        with store.reading() as conn:
            levels = schema.sweep_levels
            ids = conn.execute(
                sa.select(levels.c.level, levels.c.scenario_id).where(
                    levels.c.sweep_id == sweep.id
                )
            ).all()
        self._scenario_ids = dict(ids)  # type: ignore[arg-type]

    def commit(self, outcome: Outcome) -> bool:
        """Store `outcome` with its records in one transaction; False if that
        replication was committed already (nothing is written then)."""
        level = self.sweep.levels[outcome.level]
        result = outcome.result
        if result.scenario_hash != level.scenario_hash:
            raise StoreError(
                f"sweep {self.sweep.id} level {level.index} ran scenario "
                f"{result.scenario_hash[:12]}, not its own {level.scenario_hash[:12]}"
            )
        row = _new_run_row(result.seed, result.until_h, result.systems, outcome.replication,
                           self.sweep.id)  # fmt: skip
        finished = utcnow()
        row.update(
            scenario_id=self._scenario_ids[level.index], level=level.index, status="completed",
            started=finished - timedelta(seconds=result.wall_s), finished=finished,
            heartbeat=finished, wall_s=float(result.wall_s),
            overrides=json.dumps(list(level.overrides)), name=level.name,
        )  # fmt: skip
        try:
            with self.store.engine.begin() as conn:
                return _insert(conn, row, result.kpis, outcome)
        except SQLAlchemyError as exc:
            raise StoreError(
                f"sweep {self.sweep.id}: committing level {level.index} replication "
                f"{outcome.replication} to {self.store.url} failed: {db_message(exc)}"
            ) from exc

    def extend(self, replications: int) -> None:
        """Record that the sweep now aims at `replications` per level."""
        set_replications(self.store, self.sweep.id, replications)


def _insert(
    conn: Connection, row: dict[str, Any], kpis: Mapping[str, float], outcome: Outcome
) -> bool:
    """Insert a replication's run row unless its key is there, then its records."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(schema.runs)
        .values(row)
        .on_conflict_do_nothing(index_elements=["sweep_id", "level", "replication"])
        .returning(schema.runs.c.id)
    )
    run_id = conn.execute(statement).scalar()
    if run_id is None:
        return False
    rows = [(run_id, name, _kpi(name, value)) for name, value in kpis.items()]
    insert_rows(conn, "kpis", ("run_id", "name", "value"), rows)
    texts: dict[float, str] = {}
    series = [_series_row(run_id, s, texts) for s in outcome.series]
    insert_rows(conn, "metric_series", SERIES_COLUMNS, series)
    insert_events(conn, run_id, outcome.events)
    return True


def set_replications(store: Store, sweep_id: int, replications: int) -> None:
    """Record that a sweep now aims at `replications` per level."""
    sweeps = schema.sweeps
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(sweeps).where(sweeps.c.id == sweep_id).values(replications=replications)
        )


def previous_night(store: Store, label: str, night: date) -> int | None:
    """The completed nightly sweep of `label` of the latest night before `night` (the
    latest of that night's): by night, so a night run late (backfilled) is compared
    with the nights before it, not with the last sweep stored."""
    sweeps = schema.sweeps
    query = (
        sa.select(sweeps.c.id)
        .where(sweeps.c.label == label, sweeps.c.night < night, sweeps.c.status == "completed")
        .order_by(sweeps.c.night.desc(), sweeps.c.id.desc())
        .limit(1)
    )
    with store.reading() as conn:
        found = conn.execute(query).scalar()
    return None if found is None else int(found)


def nightly_sweeps(store: Store, night: date) -> Mapping[str, int]:
    """The nightly sweeps of `night`, by label (the latest of each)."""
    sweeps = schema.sweeps
    query = (
        sa.select(sweeps.c.label, sa.func.max(sweeps.c.id))
        .where(sweeps.c.night == night, sweeps.c.label.is_not(None))
        .group_by(sweeps.c.label)
    )
    with store.reading() as conn:
        return {label: int(sweep_id) for label, sweep_id in conn.execute(query)}


def plan_of(sweep: StoredSweep) -> Plan:
    """The `Plan` a stored sweep was made with, its levels rebuilt from their documents
    and run over the sweep's own horizons (a sweep stored before them: the documents')."""
    if sweep.seed is None:
        raise StoreError(f"sweep {sweep.id} has no seed (made before 0006): it cannot be resumed")
    horizons = sweep.settings.get("horizons_h") or [None] * len(sweep.levels)
    levels = tuple(
        level_of(
            level.index, level.assignments, level.overrides,
            parse_scenario(level.document, f"sweep {sweep.id} level {level.index}"), until,
        )
        for level, until in zip(sweep.levels, horizons, strict=True)
    )  # fmt: skip
    settings = sweep.settings
    return Plan(
        levels=levels,
        seed=sweep.seed,
        replications=int(settings.get("replications", sweep.replications)),
        max_replications=int(settings.get("max_replications", sweep.replications)),
        targets=tuple(parse_target(text) for text in settings.get("targets", ())),
        record=sweep.record,
    )


def run_stored(
    store: Store,
    sweep_id: int,
    executor: Executor,
    *,
    progress: Progress | None = None,
    check_kpis: Callable[[Sequence[str]], None] | None = None,
) -> SweepResults:
    """Run whatever sweep `sweep_id` still lacks (all of it, for a new sweep), committing
    each replication as it arrives, and mark the sweep completed; a sweep stopped by
    an error or a signal is marked failed or interrupted and can be resumed."""
    sweep = load_sweep(store, sweep_id)
    plan = plan_of(sweep)
    ledger = SweepLedger(store, sweep)
    if sweep.status != "running":
        store.finish_sweep(sweep_id, "running")
    try:
        results = run_sweep(
            plan, executor, ledger=ledger, done=committed_kpis(store, sweep_id),
            replications=sweep.replications, progress=progress, check_kpis=check_kpis,
        )  # fmt: skip
    except (KeyboardInterrupt, SystemExit):
        store.finish_sweep(sweep_id, "interrupted")
        raise
    except BaseException:
        store.finish_sweep(sweep_id, "failed")
        raise
    store.finish_sweep(sweep_id, "completed")
    return results
