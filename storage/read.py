"""Read helpers: runs, records and KPIs as pandas DataFrames, through the read-only engine.

Each helper takes an open `Store` or a store URL (opened for the call, never
created). An unknown run id (any whole number, however large) is a
`StoreError`, so a CLI typo gets a clear message rather than an empty table
or a driver's overflow. A run is listed under its `name` (its label, or its
scenario's name marked when ``--set`` changed it) and read with the
``[run]`` values it ran with, whichever run stored its scenario first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from storage import schema
from storage.store import Store, open_store
from twin.errors import StoreError
from twin.units import format_quantity

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "read_runs",
    "read_run",
    "read_events",
    "read_metrics",
    "read_kpis",
    "event_summary",
    "check_run_id",
    "StoreLike",
]

StoreLike = Store | str

_RUN_COLUMNS = (
    "status", "seed", "replication", "sweep_id", "started", "finished", "wall_s",
    "until_h", "systems", "code_version", "host", "pid", "heartbeat", "error", "label",
    "overrides",
)  # fmt: skip
_LARGEST_ID = 2**63 - 1  # no run id is larger (SQLite cannot even compare with one)


@contextmanager
def _opened(store: StoreLike) -> Iterator[Store]:
    if isinstance(store, Store):
        yield store
        return
    opened = open_store(store, create=False)
    try:
        yield opened
    finally:
        opened.close()


def _frame(
    conn: Connection, statement: sa.Select[Any], floats: tuple[str, ...] = ()
) -> pd.DataFrame:
    import pandas as pd  # here, not at the top: the write path never needs pandas

    result = conn.execute(statement)
    # Plain tuples: pandas probes each SQLAlchemy Row for attributes, which
    # costs ~10 us a row (a hall-year's 80k metrics took a second).
    rows = [tuple(row) for row in result.fetchall()]
    frame = pd.DataFrame(rows, columns=list(result.keys()))
    return frame.astype({name: "float64" for name in floats}) if floats else frame


def _runs_select() -> sa.Select[Any]:
    runs, scenarios = schema.runs, schema.scenarios
    return sa.select(
        runs.c.id.label("run_id"),
        runs.c.name.label("scenario"),
        scenarios.c.hash.label("scenario_hash"),
        *(runs.c[name] for name in _RUN_COLUMNS),
    ).join_from(runs, scenarios, runs.c.scenario_id == scenarios.c.id)


def _with_overrides_as_lists(frame: pd.DataFrame) -> pd.DataFrame:
    frame["overrides"] = [json.loads(text) for text in frame["overrides"]]
    return frame


def read_runs(
    store: StoreLike,
    scenario: str | None = None,
    status: str | None = None,
    since: date | datetime | str | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Runs, latest first, optionally under one name, of one status, since a date.

    `scenario` matches the name a run goes by (the ``scenario`` column); each
    run's ``overrides`` is the list of its ``--set`` assignments.
    """
    runs = schema.runs
    statement = _runs_select().order_by(runs.c.started.desc(), runs.c.id.desc())
    if scenario is not None:
        statement = statement.where(runs.c.name == scenario)
    if status is not None:
        statement = statement.where(runs.c.status == _status(status))
    if since is not None:
        statement = statement.where(runs.c.started >= _since(since))
    if limit is not None:
        statement = statement.limit(_limit(limit))
    with _opened(store) as opened, opened.reading() as conn:
        return _with_overrides_as_lists(_frame(conn, statement, floats=("wall_s", "until_h")))


def _status(status: str) -> str:
    if status not in schema.RUN_STATUSES:
        allowed = ", ".join(schema.RUN_STATUSES)
        raise StoreError(f"unknown run status {status!r}; expected one of {allowed}")
    return status


def _since(since: date | datetime | str) -> datetime:
    if isinstance(since, datetime):
        return since
    if isinstance(since, date):
        return datetime(since.year, since.month, since.day)
    try:
        return datetime.fromisoformat(since)
    except ValueError as exc:
        raise StoreError(f"since: expected a date YYYY-MM-DD, got {since!r}") from exc


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise StoreError(f"limit: expected a positive whole number, got {limit!r}")
    return limit


def check_run_id(store: Store, run_id: int) -> None:
    """Refuse a run id that no run can have (below 1, or too large for the database)."""
    if not 0 < run_id <= _LARGEST_ID:
        raise StoreError(f"no run {run_id} in {store.url}")


def _check_run(conn: Connection, store: Store, run_id: int) -> None:
    runs = schema.runs
    check_run_id(store, run_id)
    if conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first() is None:
        raise StoreError(f"no run {run_id} in {store.url}")


def read_run(store: StoreLike, run_id: int) -> dict[str, Any]:
    """One run's row: its name, scenario hash, label, overrides (a list) and the
    resolved scenario it ran (``scenario_document``, a dict, with this run's own
    ``[run]`` seed and horizon; ``scenario_name`` is the name written in it)."""
    runs, scenarios = schema.runs, schema.scenarios
    statement = (
        _runs_select()
        .add_columns(scenarios.c.name.label("scenario_name"), scenarios.c.document)
        .where(runs.c.id == run_id)
    )
    with _opened(store) as opened, opened.reading() as conn:
        check_run_id(opened, run_id)
        row = conn.execute(statement).mappings().first()
    if row is None:
        raise StoreError(f"no run {run_id} in {opened.url}")
    header = dict(row)
    header["overrides"] = json.loads(header["overrides"])
    document = json.loads(header.pop("document"))
    if "run" in document and header["until_h"] is not None:  # the [run] of the row's first run
        until = format_quantity(header["until_h"], "time")
        document["run"] = {"until": until, "seed": header["seed"]}
    header["scenario_document"] = document
    return header


def read_events(store: StoreLike, run_id: int, kind: str | None = None) -> pd.DataFrame:
    """A run's events in the order they were written (t, scope, kind, cause, value)."""
    events = schema.events
    statement = (
        sa.select(events.c.t, events.c.scope, events.c.kind, events.c.cause, events.c.value)
        .where(events.c.run_id == run_id)
        .order_by(events.c.id)
    )
    if kind is not None:
        statement = statement.where(events.c.kind == kind)
    with _opened(store) as opened, opened.reading() as conn:
        _check_run(conn, opened, run_id)
        return _frame(conn, statement, floats=("t", "value"))


def read_metrics(
    store: StoreLike, run_id: int, name: str | None = None, scope: str | None = None
) -> pd.DataFrame:
    """A run's metrics, one row per bucket (t, bucket, scope, name, value), by scope, name, t.

    Read from the `metrics` view, which unnests the stored series.
    """
    metrics = schema.metrics
    statement = (
        sa.select(metrics.c.t, metrics.c.bucket, metrics.c.scope, metrics.c.name, metrics.c.value)
        .where(metrics.c.run_id == run_id)
        .order_by(metrics.c.scope, metrics.c.name, metrics.c.t)
    )
    if name is not None:
        statement = statement.where(metrics.c.name == name)
    if scope is not None:
        statement = statement.where(metrics.c.scope == scope)
    with _opened(store) as opened, opened.reading() as conn:
        _check_run(conn, opened, run_id)
        return _frame(conn, statement, floats=("t", "bucket", "value"))


def read_kpis(store: StoreLike, run_id: int) -> pd.DataFrame:
    """A run's KPIs by name (name, value); empty unless the run completed."""
    kpis = schema.kpis
    statement = (
        sa.select(kpis.c.name, kpis.c.value).where(kpis.c.run_id == run_id).order_by(kpis.c.name)
    )
    with _opened(store) as opened, opened.reading() as conn:
        _check_run(conn, opened, run_id)
        return _frame(conn, statement, floats=("value",))


def event_summary(store: StoreLike, run_id: int) -> pd.DataFrame:
    """Events of a run counted by kind and cause, with the sum of their values."""
    events = schema.events
    statement = (
        sa.select(
            events.c.kind,
            events.c.cause,
            sa.func.count().label("events"),
            sa.func.sum(events.c.value).label("value_sum"),
        )
        .where(events.c.run_id == run_id)
        .group_by(events.c.kind, events.c.cause)
        .order_by(events.c.kind, events.c.cause)
    )
    with _opened(store) as opened, opened.reading() as conn:
        _check_run(conn, opened, run_id)
        return _frame(conn, statement, floats=("value_sum",))
