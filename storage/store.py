"""The store: open a SQL database, keep its schema current, start runs, answer queries.

`open_store` is the entry. Opened for writing (the default), it normalizes
the URL, refuses a database that is not a store or that it cannot write,
creates or migrates the schema to head, and marks runs whose process died
without a word as interrupted. Opened for reading (``create=False``: `twin
runs`, `show`, `query`, `export`), it never creates, migrates or touches the
database: it reads through a connection that cannot write and needs the
store at head; the one write it may make is that same marking of dead runs,
and only where this user may write the store anyway.

A `Store` hands out a `RunWriter` per run (see `storage.writer`), simulates
a scenario straight into one (`record`: the path `twin run`, the bench and
sweeps take), and runs ad-hoc SQL through `storage.query`, as a session
that can only read.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from storage import schema
from storage.engines import make_read_engine, make_write_engine
from storage.liveness import this_host, utcnow, why_dead
from storage.migrate import check_not_foreign, check_readable, upgrade
from storage.query import DEFAULT_TIMEOUT_S, QueryRows, db_message, pg_query_engine, run_query
from storage.urls import display_url, normalize_url, sqlite_path
from storage.writer import CHUNK_BYTES, CHUNK_ROWS, RunWriter
from twin.errors import StoreError
from twin.records import run_name

if TYPE_CHECKING:
    import pandas as pd

    from twin.records import RunResult
    from twin.scenario import Scenario

__all__ = ["Store", "SweepLevel", "open_store", "code_version", "STALE_AFTER_S"]

STALE_AFTER_S = 3600.0
_log = logging.getLogger(__name__)


class SweepLevel(NamedTuple):
    """One level of a sweep as the store keeps it (see `sweep_levels`)."""

    scenario_name: str
    scenario_hash: str
    scenario: Mapping[str, Any]
    assignments: Sequence[str]
    overrides: Sequence[str]
    name: str


def code_version() -> str:
    """The installed wafertwin version, recorded with every run and sweep."""
    try:
        return version("wafertwin")
    except PackageNotFoundError:
        return "0+unknown"


def open_store(
    url: str | os.PathLike[str] | URL,
    *,
    create: bool = True,
    stale_after_s: float = STALE_AFTER_S,
    reader_url: str | os.PathLike[str] | URL | None = None,
) -> Store:
    """Open the store at `url`: for writing (`create`: made or migrated), or only to read.

    `reader_url`: the PostgreSQL session ad-hoc queries run as (see `storage.query`).
    """
    sa_url = normalize_url(url)
    path = sqlite_path(sa_url)
    if path is not None and path.exists() and create:
        _check_writable(path)
    if path is not None and not create and not path.exists():
        raise StoreError(f"no store at {str(path)!r} (a run creates it)")
    readers = None if reader_url is None else normalize_url(reader_url)
    store = Store(sa_url, stale_after_s=stale_after_s, writable=create, reader_url=readers)
    try:
        if create:
            if path is not None and path.exists():  # before the write engine makes it WAL
                with store.read_engine.connect() as conn:
                    check_not_foreign(conn, store.url)
            upgrade(store.engine, where=store.url)
        else:
            with store.read_engine.connect() as conn:
                check_readable(conn, store.url)
        store.recover_interrupted()
    except SQLAlchemyError as exc:
        store.close()
        raise StoreError(f"cannot open store {store.url}: {db_message(exc)}") from exc
    except BaseException:
        store.close()
        raise
    return store


def _read_only_part(path: Path) -> Path | None:
    """The store file or its folder if either cannot be written (SQLite needs both)."""
    return next((where for where in (path, path.parent) if not os.access(where, os.W_OK)), None)


def _check_writable(path: Path) -> None:
    where = _read_only_part(path)
    if where is not None:
        raise StoreError(
            f"cannot write to store {str(path)!r}: {str(where)!r} is read-only "
            "(a run needs to write the file and its folder; twin runs, show, query "
            "and export only read)"
        )


class Store:
    """An open store. Use `open_store`; close it (or use `with`) when done."""

    def __init__(
        self,
        url: URL,
        *,
        stale_after_s: float = STALE_AFTER_S,
        writable: bool = True,
        reader_url: URL | None = None,
    ) -> None:
        self.sa_url = url
        self.url = display_url(url)
        self.backend = url.get_backend_name()
        self.stale_after = timedelta(seconds=stale_after_s)
        self.writable = writable
        self.reader_url = reader_url
        self._engine: Engine | None = make_write_engine(url) if writable else None
        self._read_engine: Engine | None = None
        self._query_engine: Engine | None = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def close(self) -> None:
        """Release every connection (the store can be reopened with `open_store`)."""
        for engine in (self._engine, self._read_engine, self._query_engine):
            if engine is not None:
                engine.dispose()

    @property
    def engine(self) -> Engine:
        """The engine writes go through; a store opened for reading has none."""
        if self._engine is None:
            raise StoreError(f"{self.url} was opened for reading only; open it to write")
        return self._engine

    @property
    def read_engine(self) -> Engine:
        """The engine that cannot write (created on first use)."""
        if self._read_engine is None:
            self._read_engine = make_read_engine(self.sa_url)
        return self._read_engine

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only connection; database errors become `StoreError`."""
        try:
            with self.read_engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"reading {self.url} failed: {db_message(exc)}") from exc

    # -- writing ---------------------------------------------------------

    def begin_run(
        self,
        *,
        scenario_name: str,
        scenario_hash: str,
        scenario: Mapping[str, Any],
        seed: int,
        until_h: float,
        systems: int,
        replication: int = 0,
        sweep_id: int | None = None,
        label: str | None = None,
        overrides: Sequence[str] = (),
        chunk_rows: int = CHUNK_ROWS,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> RunWriter:
        """Record a new run as running and return the sink its records go to.

        `label` and `overrides` (the ``--set`` assignments that changed the
        scenario, and ``--scale N`` if it did) are kept with the run and decide the name it goes by
        (`twin.records.run_name`). `scenario` is stored once per hash; the run keeps
        its own `seed` and `until_h`.
        """
        row = _new_run_row(seed, until_h, systems, replication, sweep_id)
        row.update(
            label=_label(label),
            overrides=json.dumps(list(overrides)),
            name=run_name(scenario_name, scenario_hash, label, bool(overrides)),
        )
        try:
            with self.engine.begin() as conn:
                row["scenario_id"] = self._scenario_id(conn, scenario_name, scenario_hash, scenario)
                run_id = _new_id(conn.execute(sa.insert(schema.runs).values(row)))
        except IntegrityError as exc:
            raise StoreError(f"cannot start run: {db_message(exc)}") from exc
        return RunWriter(
            self.engine,
            int(run_id),
            scenario_hash=scenario_hash,
            seed=int(seed),
            chunk_rows=chunk_rows,
            chunk_bytes=chunk_bytes,
        )

    def record(
        self,
        scenario: Scenario,
        *,
        seed: int | None = None,
        until: float | None = None,
        replication: int = 0,
        sweep_id: int | None = None,
        label: str | None = None,
        overrides: Sequence[str] = (),
    ) -> tuple[RunResult, int]:
        """Simulate `scenario` into this store; returns its result and run id.

        The run's records are committed in chunks as it goes; it is marked
        completed at the end, or failed (interrupted, for Ctrl-C) if the
        simulation raises. `seed` and `until` default to the scenario's;
        `label` and `overrides` (the ``--set`` assignments `scenario` was
        loaded with, and ``--scale N``) are kept with the run (see `begin_run`).
        """
        from twin.engine import simulate  # the store's readers need no engine

        seed = scenario.run.seed if seed is None else seed
        until = scenario.run.until if until is None else until
        with self.begin_run(
            scenario_name=scenario.name,
            scenario_hash=scenario.digest(),
            scenario=scenario.document(),
            seed=seed,
            until_h=until,
            systems=scenario.systems,
            replication=replication,
            sweep_id=sweep_id,
            label=label,
            overrides=overrides,
        ) as writer:
            result = simulate(scenario, seed=seed, until=until, sink=writer)
            writer.complete(result)
        return result, writer.run_id

    def create_sweep(
        self,
        *,
        scenario_name: str,
        scenario_hash: str,
        scenario: Mapping[str, Any],
        factors: Mapping[str, Any],
        replications: int,
        seed: int | None = None,
        record: str = "kpis",
        settings: Mapping[str, Any] | None = None,
        label: str | None = None,
        night: date | None = None,
        levels: Sequence[SweepLevel] = (),
    ) -> int:
        """Record a sweep as running, with its levels; returns its id.

        `scenario` is the base (level 0); each of `levels` is stored with its own
        resolved scenario. `seed` is the entropy of the sweep's seed sequence,
        `record` what its replications keep, `settings` its targets and limits,
        `label` and `night` tag a nightly sweep (see `storage.sweeps`).
        """
        with self.engine.begin() as conn:
            scenario_id = self._scenario_id(conn, scenario_name, scenario_hash, scenario)
            values = {
                "scenario_id": scenario_id,
                "factors": to_json(factors),
                "replications": int(replications),
                "status": "running",
                "created": utcnow(),
                "code_version": code_version(),
                "seed": seed,
                "record": record,
                "settings": to_json(settings or {}),
                "label": _label(label),
                "night": night,
            }
            sweep_id = _new_id(conn.execute(sa.insert(schema.sweeps).values(values)))
            rows = [
                {
                    "sweep_id": sweep_id,
                    "level": index,
                    "scenario_id": self._scenario_id(
                        conn, level.scenario_name, level.scenario_hash, level.scenario
                    ),
                    "assignments": json.dumps(list(level.assignments)),
                    "overrides": json.dumps(list(level.overrides)),
                    "name": level.name,
                }
                for index, level in enumerate(levels)
            ]
            if rows:
                conn.execute(sa.insert(schema.sweep_levels), rows)
        return sweep_id

    def finish_sweep(self, sweep_id: int, status: str = "completed") -> None:
        """Set the status of a sweep (completed, failed or interrupted; running again
        when it is resumed)."""
        if status not in schema.SWEEP_STATUSES:
            raise StoreError(f"unknown sweep status {status!r}")
        with self.engine.begin() as conn:
            sweeps = schema.sweeps
            done = conn.execute(
                sa.update(sweeps).where(sweeps.c.id == sweep_id).values(status=status)
            )
        if done.rowcount == 0:
            raise StoreError(f"no sweep {sweep_id} in {self.url}")

    def _scenario_id(
        self, conn: Connection, name: str, digest: str, document: Mapping[str, Any]
    ) -> int:
        table = schema.scenarios
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        values = {"hash": digest, "name": name, "document": to_json(document), "created": utcnow()}
        conn.execute(insert(table).values(values).on_conflict_do_nothing(index_elements=["hash"]))
        return int(conn.execute(sa.select(table.c.id).where(table.c.hash == digest)).scalar_one())

    # -- upkeep ------------------------------------------------------------

    def recover_interrupted(self) -> list[int]:
        """Mark runs whose process is gone as interrupted; return their ids.

        A store opened for reading marks them only where this user may write
        the store anyway; otherwise it leaves them for the next writer.
        """
        runs = schema.runs
        now = utcnow()
        running = sa.select(
            runs.c.id, runs.c.host, runs.c.pid, runs.c.heartbeat, runs.c.started
        ).where(runs.c.status == "running")
        with self.reading() as conn:
            rows = conn.execute(running).all()
        gone = {}
        for r in rows:
            last_seen = r.heartbeat or r.started
            reason = why_dead(r.host, r.pid, last_seen, now, self.stale_after, r.started)
            if reason is not None:
                gone[r.id] = (reason, r.heartbeat)
        if not gone or not self._may_write():
            return []
        engine = self._engine or make_write_engine(self.sa_url)
        marked = []
        try:
            with engine.begin() as conn:
                for run_id, (reason, beat) in gone.items():
                    as_seen = runs.c.heartbeat.is_not_distinct_from(beat)  # no beat since
                    done = conn.execute(
                        sa.update(runs)
                        .where(runs.c.id == run_id, runs.c.status == "running", as_seen)
                        .values(status="interrupted", finished=now, error=f"interrupted: {reason}")
                    )
                    if done.rowcount:
                        marked.append(run_id)
        finally:
            if engine is not self._engine:
                engine.dispose()
        if marked:
            _log.info("marked runs %s of %s as interrupted", sorted(marked), self.url)
        return sorted(marked)

    def _may_write(self) -> bool:
        if self.writable:
            return True
        path = sqlite_path(self.sa_url)
        if path is not None:
            return _read_only_part(path) is None
        may_update = sa.text("SELECT has_table_privilege('runs', 'UPDATE')")
        with self.reading() as conn:
            return bool(conn.execute(may_update).scalar())

    # -- reading -----------------------------------------------------------

    def query(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> pd.DataFrame:
        """Run one read-only SQL statement (``:name`` parameters) and return all its rows."""
        import pandas as pd  # here, not at the top: a run that only writes skips pandas

        with self.query_rows(sql, params, timeout_s=timeout_s) as result:
            frame = pd.DataFrame(list(result.rows), columns=result.columns)
        return _plain_numbers(frame)

    @contextmanager
    def query_rows(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Iterator[QueryRows]:
        """Run one read-only statement; its rows stream from the database as they are read.

        Stopped after `timeout_s` seconds. Errors, refusals included, are `StoreError`.
        """
        with run_query(self.query_engine, sql, params, timeout_s) as result:
            yield result

    @property
    def query_engine(self) -> Engine:
        """The engine ad-hoc SQL runs on (see `storage.query`; chosen on first use)."""
        if self._query_engine is None:
            if self.backend == "sqlite":
                self._query_engine = self.read_engine
            else:
                self._query_engine = pg_query_engine(self.sa_url, self.reader_url)
        return self._query_engine


def _plain_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """PostgreSQL's SUM/AVG over integers give Decimal; make them numbers as on SQLite."""
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object and column.map(lambda v: isinstance(v, Decimal)).any():
            numbers = column.map(lambda v: float(v) if isinstance(v, Decimal) else v)
            whole = numbers.notna().all() and (numbers == numbers.round()).all()
            frame[name] = numbers.astype("int64" if whole else "float64")
    return frame


LABEL_CHARS = 200


def _label(label: str | None) -> str | None:
    """A run's label: printable text of 1 to `LABEL_CHARS` characters, or None."""
    if label is not None and not (0 < len(label) <= LABEL_CHARS and label.isprintable()):
        raise StoreError(
            f"--label: expected printable text of 1 to {LABEL_CHARS} characters, got {label!r}"
        )
    return label


def _new_run_row(
    seed: int, until_h: float, systems: int, replication: int, sweep_id: int | None
) -> dict[str, Any]:
    now = utcnow()
    return {
        "seed": int(seed),
        "status": "running",
        "code_version": code_version(),
        "started": now,
        "heartbeat": now,
        "sweep_id": sweep_id,
        "replication": int(replication),
        "until_h": float(until_h),
        "systems": int(systems),
        "host": this_host(),
        "pid": os.getpid(),
    }


def _new_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:
        raise StoreError("the database did not return the new row's id")
    return int(key[0])


def to_json(document: Mapping[str, Any]) -> str:
    """Deterministic JSON text for a scenario document or sweep factors."""
    return json.dumps(document, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    to_list = getattr(value, "tolist", None)  # numpy scalars and arrays
    return to_list() if callable(to_list) else str(value)
