"""`RunWriter`: the sink one run's records flow into, and the run's final status.

The engine calls `write_events` / `write_series` with batches as it goes;
the writer turns records into tuples at once and commits them in chunks of
at most `chunk_rows` records, refreshing the run's heartbeat with each chunk,
so rows land while the run is going and a crash loses at most one chunk. An
event is one record; a metric series is one row (its values a JSON array)
but weighs as many records as it has values, so a chunk stays bounded in
size; a series longer than a chunk is committed alone, whole. The
run ends with exactly one of `complete` (KPIs and status in one transaction),
`fail` or `interrupt`; used as a context manager, an escaping exception marks
the run failed (interrupted for Ctrl-C) and is re-raised.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from storage import schema
from storage.bulk import insert_events, insert_rows
from storage.liveness import utcnow
from twin.errors import StoreError
from twin.records import Event, MetricSeries, RunResult

__all__ = ["RunWriter", "CHUNK_ROWS", "HEARTBEAT_S"]

CHUNK_ROWS = 5000
HEARTBEAT_S = 60.0  # a quiet run still flushes (and beats) this often
SERIES_COLUMNS = ("run_id", "scope", "name", "t0", "bucket", "t_end", "n", "series")
_log = logging.getLogger(__name__)

Row = tuple[object, ...]


def _num(value: float | None) -> float | None:
    """A float for SQL: NaN becomes NULL (SQLite cannot store NaN; PG then agrees)."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


class RunWriter:
    """Sink for one run; create with `Store.begin_run`."""

    def __init__(
        self,
        engine: Engine,
        run_id: int,
        *,
        scenario_hash: str,
        seed: int,
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        self.engine = engine
        self.run_id = run_id
        self.scenario_hash = scenario_hash
        self.seed = seed
        self.chunk_rows = chunk_rows
        self.status = "running"
        self.rows_written = 0  # records committed: events plus metric values
        self._events: list[Event] = []
        self._series: list[Row] = []
        self._weights: list[int] = []  # records each buffered series counts for
        self._series_weight = 0
        self._last_flush = time.monotonic()

    def __repr__(self) -> str:
        return f"RunWriter(run_id={self.run_id}, status={self.status!r})"

    # -- the Sink protocol ---------------------------------------------------

    def write_events(self, events: Sequence[Event]) -> None:
        """Buffer events; commit full chunks."""
        self._check_open()
        self._events.extend(events)  # Event tuples go to the database as they are
        self._maybe_flush()

    def write_series(self, series: Sequence[MetricSeries]) -> None:
        """Buffer metric series, one row each; commit full chunks."""
        self._check_open()
        rows = [_series_row(self.run_id, s) for s in series]
        self._series.extend(rows)
        weights = [max(1, len(s.values)) for s in series]
        self._weights.extend(weights)
        self._series_weight += sum(weights)
        self._maybe_flush()

    # -- flushing ------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Records buffered but not yet committed (a series counts its values)."""
        return len(self._events) + self._series_weight

    def flush(self) -> None:
        """Commit every buffered record now, in chunks of at most `chunk_rows`."""
        self._check_open()
        while self.pending:
            self._commit_chunk()

    def _maybe_flush(self) -> None:
        while self.pending >= self.chunk_rows:
            self._commit_chunk()
        if self.pending and time.monotonic() - self._last_flush > HEARTBEAT_S:
            self.flush()

    def _commit_chunk(self) -> None:
        with self._begin() as conn:
            _relax_durability(conn)
            taken = self._insert_pending(conn, self.chunk_rows)
            self._beat(conn)
        self._forget(*taken)

    def _insert_pending(self, conn: Connection, limit: int) -> tuple[int, int]:
        """Insert up to `limit` buffered records, events first; the buffer is kept until commit.

        Series are taken whole while they fit; the first of a chunk always is,
        so a series longer than a chunk goes alone and every chunk makes progress.
        """
        events = self._events[:limit]
        room = limit - len(events)
        taken = used = 0
        for weight in self._weights:
            if used + weight > room and (taken or events):
                break
            used += weight
            taken += 1
        insert_events(conn, self.run_id, events)
        insert_rows(conn, "metric_series", SERIES_COLUMNS, self._series[:taken])
        return len(events), taken

    def _forget(self, events: int, series: int) -> None:
        """Drop records from the buffer once their transaction has committed."""
        weight = sum(self._weights[:series])
        del self._events[:events]
        del self._series[:series]
        del self._weights[:series]
        self._series_weight -= weight
        self.rows_written += events + weight

    def _beat(self, conn: Connection) -> None:
        runs = schema.runs
        conn.execute(sa.update(runs).where(runs.c.id == self.run_id).values(heartbeat=utcnow()))
        self._last_flush = time.monotonic()

    # -- ending the run --------------------------------------------------------

    def complete(self, result: RunResult) -> None:
        """Write the remaining rows, the KPIs and status completed, atomically."""
        self._check_open()
        self._check_same_run(result)
        kpi_rows = [(self.run_id, name, _kpi(name, value)) for name, value in result.kpis.items()]
        while self.pending > self.chunk_rows:
            self._commit_chunk()
        with self._begin() as conn:
            taken = self._insert_pending(conn, self.pending)
            insert_rows(conn, "kpis", ("run_id", "name", "value"), kpi_rows)
            self._set_status(conn, "completed", wall_s=float(result.wall_s), error=None)
        self._forget(*taken)
        self.status = "completed"

    def fail(self, message: str) -> None:
        """Keep what was written and mark the run failed with `message`."""
        self._end("failed", message)

    def interrupt(self, message: str = "interrupted by the user") -> None:
        """Keep what was written and mark the run interrupted."""
        self._end("interrupted", message)

    def _end(self, status: str, message: str) -> None:
        self._check_open()
        try:
            self.flush()
        except SQLAlchemyError as exc:  # the store itself may be what failed
            _log.warning("run %s: dropping %s unwritten rows: %s", self.run_id, self.pending, exc)
            self._events.clear()
            self._series.clear()
            self._weights.clear()
            self._series_weight = 0
        with self._begin() as conn:
            self._set_status(conn, status, wall_s=None, error=message)
        self.status = status

    def _set_status(
        self, conn: Connection, status: str, *, wall_s: float | None, error: str | None
    ) -> None:
        runs = schema.runs
        values: dict[str, Any] = {"status": status, "finished": utcnow(), "error": error}
        if wall_s is not None:
            values["wall_s"] = wall_s
        conn.execute(sa.update(runs).where(runs.c.id == self.run_id).values(values))

    # -- context manager ---------------------------------------------------------

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if self.status != "running":
            return
        try:
            if exc is None:
                self.fail("the run ended without a result (complete() was not called)")
            elif isinstance(exc, KeyboardInterrupt | SystemExit):
                self.interrupt(f"interrupted: {type(exc).__name__}")
            else:
                self.fail(f"{type(exc).__name__}: {exc}")
        except Exception:  # never hide the exception that ended the run
            _log.exception("run %s: could not record its end", self.run_id)

    # -- checks --------------------------------------------------------------------

    def _begin(self) -> Any:
        return self.engine.begin()

    def _check_open(self) -> None:
        if self.status != "running":
            raise StoreError(
                f"run {self.run_id} is already {self.status}; it takes no more records"
            )

    def _check_same_run(self, result: RunResult) -> None:
        if result.scenario_hash != self.scenario_hash or int(result.seed) != self.seed:
            raise StoreError(
                f"run {self.run_id} was started for scenario {self.scenario_hash[:12]} seed "
                f"{self.seed}, not {result.scenario_hash[:12]} seed {result.seed}"
            )


def _relax_durability(conn: Connection) -> None:
    # A chunk lost to a server crash costs nothing that matters: the run is
    # then interrupted anyway. Not waiting for the WAL flush at each chunk's
    # commit makes PostgreSQL writes several times faster. (SQLite runs with
    # synchronous=NORMAL in WAL mode, which already behaves so.) The final
    # transaction of `complete` keeps full durability.
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")


def _series_row(run_id: int, series: MetricSeries) -> Row:
    """The `metric_series` row of `series`: values as a JSON array, NaN as null.

    ``json.dumps`` writes floats as their shortest exact repr, so both
    backends read back the very same doubles; it spells NaN and infinities
    outside JSON, so they become null and the JSON number 1e999 (infinity to
    any reader, storage.views turns it back on PostgreSQL).
    """
    t0, bucket, t_end = float(series.t0), float(series.bucket), float(series.t_end)
    if not (bucket > 0.0 and math.isfinite(bucket) and math.isfinite(t0) and math.isfinite(t_end)):
        raise StoreError(
            f"metric series {series.name!r} at {series.scope!r}: t0, t_end must be finite and "
            f"bucket positive, got t0={t0!r}, bucket={bucket!r}, t_end={t_end!r}"
        )
    values = list(map(float, series.values))
    text = json.dumps(values)
    if "N" in text or "I" in text:  # no finite float's repr has either letter
        text = text.replace("NaN", "null").replace("Infinity", "1e999")
    return (run_id, series.scope, series.name, t0, bucket, t_end, len(values), text)


def _kpi(name: str, value: object) -> float | None:
    if isinstance(value, Mapping):
        raise StoreError(f"KPI {name!r} is nested; flatten KPIs to dotted names")
    try:
        return _num(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise StoreError(f"KPI {name!r} is not a number: {value!r}") from exc
