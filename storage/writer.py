"""`RunWriter`: the sink one run's records flow into, and the run's final status.

The engine calls `write_events` / `write_series` with batches as it goes;
the writer turns records into rows at once (an event is one row, a metric
series one row with its values as JSON text) and commits them in chunks of
at most `chunk_rows` rows and `chunk_bytes` of series text, refreshing the
run's heartbeat with each chunk, so rows land while the run is going and a
crash loses at most one chunk. A series longer than a chunk's bytes is
committed alone, whole. A background thread refreshes the heartbeat every
`HEARTBEAT_S` while the run is open, so a live run that writes nothing for
hours (events off) is never taken for a dead one. The run ends with exactly
one of `complete` (KPIs and status in one transaction), `fail` or
`interrupt`; used as a context manager, an escaping exception marks the run
failed (interrupted for Ctrl-C and SIGTERM) and is re-raised.

A database error while writing becomes a `StoreError` carrying the database's
own one-line message: unlike SQLAlchemy's errors it can be rebuilt from its
arguments, which SimPy does when an exception leaves a process.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from storage import schema
from storage.bulk import insert_events, insert_rows
from storage.liveness import utcnow
from storage.query import db_message
from storage.urls import display_url
from twin.errors import StoreError
from twin.records import EventRow, MetricSeries, RunResult

__all__ = ["RunWriter", "CHUNK_ROWS", "CHUNK_BYTES", "HEARTBEAT_S"]

CHUNK_ROWS = 5000
CHUNK_BYTES = 4 << 20  # of metric series text: a hall-year's series are ~0.7 MB
HEARTBEAT_S = 60.0  # a live run beats (and a quiet one flushes) this often
SERIES_COLUMNS = ("run_id", "scope", "name", "t0", "bucket", "t_end", "n", "series")
_log = logging.getLogger(__name__)

Row = tuple[object, ...]
_ZERO = "0.0"  # the text of 0.0 (and, when its sign says so, -0.0) in a series


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
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        if chunk_rows < 1 or chunk_bytes < 1:
            raise ValueError("chunk_rows and chunk_bytes must be at least 1")
        self.engine = engine
        self.run_id = run_id
        self.scenario_hash = scenario_hash
        self.seed = seed
        self.chunk_rows = chunk_rows
        self.chunk_bytes = chunk_bytes
        self.status = "running"
        self.rows_written = 0  # rows committed: events plus metric series
        self._events: list[EventRow] = []
        self._series: list[Row] = []
        self._sizes: list[int] = []  # text length of each buffered series
        self._series_bytes = 0
        self._last_flush = time.monotonic()
        self._store_failed = False  # a write failed in the database: do not retry rows
        self._heartbeat = _Heartbeat(engine, run_id, HEARTBEAT_S)
        # a writer dropped unended stops beating too (without waiting: it may be the GC)
        weakref.finalize(self, self._heartbeat.stopping.set)

    def __repr__(self) -> str:
        return f"RunWriter(run_id={self.run_id}, status={self.status!r})"

    # -- the Sink protocol ---------------------------------------------------

    def write_events(self, events: Sequence[EventRow]) -> None:
        """Buffer events; commit full chunks."""
        self._check_open()
        try:
            shapes = set(map(len, events))
        except TypeError:
            shapes = {0}
        if shapes - {5}:
            raise StoreError("an event is a tuple of 5: t, scope, kind, cause, value")
        self._events.extend(events)  # the tuples go to the database as they are
        self._maybe_flush()

    def write_series(self, series: Sequence[MetricSeries]) -> None:
        """Buffer metric series, one row each; commit full chunks."""
        self._check_open()
        texts = {0.0: _ZERO}  # shared by the batch: series repeat values a lot
        rows = [_series_row(self.run_id, s, texts) for s in series]
        sizes = [len(row[-1]) for row in rows]  # type: ignore[arg-type]
        self._series.extend(rows)
        self._sizes.extend(sizes)
        self._series_bytes += sum(sizes)
        self._maybe_flush()

    # -- flushing ------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Rows buffered but not yet committed."""
        return len(self._events) + len(self._series)

    def flush(self) -> None:
        """Commit every buffered row now, in chunks."""
        self._check_open()
        while self.pending:
            self._commit_chunk()

    def _full(self) -> bool:
        return self.pending >= self.chunk_rows or self._series_bytes >= self.chunk_bytes

    def _maybe_flush(self) -> None:
        while self._full():
            self._commit_chunk()
        if self.pending and time.monotonic() - self._last_flush > HEARTBEAT_S:
            self.flush()

    def _commit_chunk(self) -> None:
        with self._writing("writing its records"), self._begin() as conn:
            _relax_durability(conn)
            taken = self._insert_pending(conn, self.chunk_rows, self.chunk_bytes)
            self._beat(conn)
        self._forget(*taken)

    @contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """Turn a database error into a `StoreError` that says what was being written."""
        try:
            yield
        except SQLAlchemyError as exc:
            self._store_failed = True
            url = display_url(self.engine.url)
            message = f"run {self.run_id}: {what} in {url} failed: {db_message(exc)}"
            raise StoreError(message) from exc

    def _insert_pending(self, conn: Connection, rows: int, size: int) -> tuple[int, int]:
        """Insert up to `rows` buffered rows and `size` series bytes, events first.

        The buffer is kept until commit. Series are taken whole while they
        fit; the first of a chunk always is, so a series longer than a chunk
        goes alone and every chunk makes progress.
        """
        events = self._events[:rows]
        room = rows - len(events)
        taken = used = 0
        for length in self._sizes[:room]:
            if used + length > size and (taken or events):
                break
            used += length
            taken += 1
        insert_events(conn, self.run_id, events)
        insert_rows(conn, "metric_series", SERIES_COLUMNS, self._series[:taken])
        return len(events), taken

    def _forget(self, events: int, series: int) -> None:
        """Drop rows from the buffer once their transaction has committed."""
        self._series_bytes -= sum(self._sizes[:series])
        del self._events[:events]
        del self._series[:series]
        del self._sizes[:series]
        self.rows_written += events + series

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
        while self.pending > self.chunk_rows or self._series_bytes > self.chunk_bytes:
            self._commit_chunk()
        with self._writing("completing it"), self._begin() as conn:
            taken = self._insert_pending(conn, self.pending, self._series_bytes)
            insert_rows(conn, "kpis", ("run_id", "name", "value"), kpi_rows)
            self._set_status(conn, "completed", wall_s=float(result.wall_s), error=None)
        self._forget(*taken)
        self.status = "completed"
        self._heartbeat.stop()

    def fail(self, message: str) -> None:
        """Keep what was written and mark the run failed with `message`."""
        self._end("failed", message)

    def interrupt(self, message: str = "interrupted by the user") -> None:
        """Keep what was written and mark the run interrupted."""
        self._end("interrupted", message)

    def _end(self, status: str, message: str) -> None:
        self._check_open()
        try:
            if self._store_failed:  # the store itself failed: write only the status
                raise StoreError("the store failed earlier in the run")
            self.flush()
        except StoreError as exc:
            if self.pending:
                lost = self.pending
                _log.info("run %s: dropping %s unwritten rows: %s", self.run_id, lost, exc)
            self._events.clear()
            self._series.clear()
            self._sizes.clear()
            self._series_bytes = 0
        try:
            with self._writing("recording its end"), self._begin() as conn:
                self._set_status(conn, status, wall_s=None, error=message)
        finally:
            self._heartbeat.stop()
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
                self.interrupt(f"interrupted: {_why(exc)}")
            else:
                self.fail(_why(exc))
        except StoreError as end:  # never hide the exception that ended the run
            _log.warning(
                "%s; the run stays 'running' until the store is opened after this process ends",
                end,
            )
        except Exception:
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


def _why(exc: BaseException) -> str:
    """How the run's end is recorded: a store error by its message, others by type too."""
    text = str(exc)
    if isinstance(exc, StoreError) or (isinstance(exc, KeyboardInterrupt) and text):
        return text  # a StoreError says it all; a KeyboardInterrupt may name its signal
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Heartbeat:
    """Refreshes a run's heartbeat every `every_s` seconds in a daemon thread.

    A beat that fails (the database is busy or away) is logged and tried
    again at the next one: the run itself finds out when it next writes.
    """

    def __init__(self, engine: Engine, run_id: int, every_s: float) -> None:
        self.stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(engine, run_id, every_s), name=f"heartbeat-run-{run_id}",
            daemon=True,
        )  # fmt: skip
        self._thread.start()

    def _beat(self, engine: Engine, run_id: int, every_s: float) -> None:
        runs = schema.runs
        while not self.stopping.wait(every_s):
            try:
                with engine.begin() as conn:
                    conn.execute(
                        sa.update(runs)
                        .where(runs.c.id == run_id, runs.c.status == "running")
                        .values(heartbeat=utcnow())
                    )
            except SQLAlchemyError as exc:
                _log.info("run %s: heartbeat failed: %s", run_id, exc)

    def stop(self) -> None:
        """Stop beating, and wait for a beat under way to end."""
        self.stopping.set()
        self._thread.join()


def _relax_durability(conn: Connection) -> None:
    # A chunk lost to a server crash costs nothing that matters: the run is
    # then interrupted anyway. Not waiting for the WAL flush at each chunk's
    # commit makes PostgreSQL writes several times faster. (SQLite runs with
    # synchronous=NORMAL in WAL mode, which already behaves so.) The final
    # transaction of `complete` keeps full durability.
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")


def _series_row(run_id: int, series: MetricSeries, texts: dict[float, str]) -> Row:
    """The `metric_series` row of `series`: values as a JSON array, NaN as null.

    Each float is written as its shortest exact repr, so both backends read
    back the very same doubles. Spelling a float is most of the cost of
    recording metrics, and a year of hourly means holds far fewer distinct
    values than buckets (a hall-year: ~10k in 80k), so `texts` remembers the
    spelling of each value seen in the batch.
    """
    t0, bucket, t_end = float(series.t0), float(series.bucket), float(series.t_end)
    if not (bucket > 0.0 and math.isfinite(bucket) and math.isfinite(t0) and math.isfinite(t_end)):
        raise StoreError(
            f"metric series {series.name!r} at {series.scope!r}: t0, t_end must be finite and "
            f"bucket positive, got t0={t0!r}, bucket={bucket!r}, t_end={t_end!r}"
        )
    parts = []
    for value in series.values:
        text = texts.get(value)
        if text is None:
            text = texts[value] = _json_number(float(value))
        elif text is _ZERO and math.copysign(1.0, value) < 0.0:  # -0.0 == 0.0 as a key
            text = "-0.0"
        parts.append(text)
    text = f"[{','.join(parts)}]"
    return (run_id, series.scope, series.name, t0, bucket, t_end, len(parts), text)


def _json_number(value: float) -> str:
    """`value` as a JSON number: NaN is null, an infinity the number 1e999 (storage.views
    turns it back on PostgreSQL; SQLite reads it as infinity itself)."""
    if math.isfinite(value):
        return repr(value)
    if math.isnan(value):
        return "null"
    return "1e999" if value > 0 else "-1e999"


def _kpi(name: str, value: object) -> float | None:
    if isinstance(value, Mapping):
        raise StoreError(f"KPI {name!r} is nested; flatten KPIs to dotted names")
    try:
        return _num(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise StoreError(f"KPI {name!r} is not a number: {value!r}") from exc
