"""SQLAlchemy engines for the store: one that writes, one that can only read.

Every PostgreSQL connection gives up after `CONNECT_TIMEOUT_S` (unless the URL
sets ``connect_timeout``), so a server that accepts but never answers is an
error, not a hang.

SQLite: the functions PostgreSQL has and the views use (`storage.sqlite_functions`)
on every connection, WAL journal (readers never block the writer), foreign keys on, a busy
timeout so that two writer processes wait for each other instead of failing,
and every write transaction opened with ``BEGIN IMMEDIATE`` so it takes the
write lock up front (a deferred transaction that later wants to write can
fail at once with "database is locked", whatever the timeout).

The read engine is read-only by construction, not by inspecting SQL: SQLite is
opened with ``mode=ro``, ``query_only`` and an authorizer that denies every
action but reading (a store in a folder this user cannot write, which
``mode=ro`` cannot open in WAL mode, is opened as immutable when no writer
has a WAL file open); PostgreSQL sessions default to read-only transactions.
Ad-hoc SQL on PostgreSQL needs more than that (see `storage.query`).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import NullPool

from storage.sqlite_functions import register as register_functions
from storage.urls import sqlite_path

__all__ = [
    "make_write_engine",
    "make_read_engine",
    "pg_connect_args",
    "BUSY_TIMEOUT_S",
    "CONNECT_TIMEOUT_S",
]

BUSY_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 10


def pg_connect_args(url: URL) -> dict[str, Any]:
    """Connection arguments for PostgreSQL: a connect timeout unless the URL has its own."""
    return {} if "connect_timeout" in url.query else {"connect_timeout": CONNECT_TIMEOUT_S}


def make_write_engine(url: URL) -> Engine:
    """The engine every write goes through."""
    path = sqlite_path(url)
    if path is not None:
        return _sqlite_write_engine(url)
    return sa.create_engine(url, pool_pre_ping=True, connect_args=pg_connect_args(url))


def make_read_engine(url: URL) -> Engine:
    """An engine that cannot change the database, whatever SQL it is given."""
    path = sqlite_path(url)
    if path is not None:
        return _sqlite_read_engine(path)
    return _pg_read_engine(url)


def _sqlite_write_engine(url: URL) -> Engine:
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN is ours (below).
        dbapi_conn.isolation_level = None
        register_functions(dbapi_conn)
        dbapi_conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        _enter_wal(dbapi_conn)
        for pragma in ("foreign_keys=ON", "synchronous=NORMAL"):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _enter_wal(dbapi_conn: sqlite3.Connection) -> None:
    """Put the database in WAL mode (a no-op once it is), waiting out other processes.

    Two processes that open a new store at once race to switch its journal
    mode, and SQLite can report the loser "database is locked" at once,
    without calling the busy handler; so the switch is retried here, for as
    long as the busy timeout would have waited.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


_SQLITE_READ_ACTIONS = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    sqlite3.SQLITE_RECURSIVE,
    sqlite3.SQLITE_TRANSACTION,
}
# Pragmas that only describe the schema; reachable as pragma_table_info('runs').
_SQLITE_READ_PRAGMAS = {
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
}


# SQLAlchemy asks for this one (without setting it) when it first connects.
_SQLITE_QUERIED_PRAGMAS = {"read_uncommitted"}
# SQLite asks leave to update the schema table when a query first uses a pragma
# as a table (pragma_table_info); on a read-only connection nothing can be written.
_SQLITE_SCHEMA_TABLES = {"sqlite_master", "sqlite_schema"}


def _sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, *_rest: object) -> int:
    if action in _SQLITE_READ_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_UPDATE and arg1 in _SQLITE_SCHEMA_TABLES:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and (
        arg1 in _SQLITE_READ_PRAGMAS or (arg1 in _SQLITE_QUERIED_PRAGMAS and arg2 is None)
    ):
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _sqlite_read_engine(path: Path) -> Engine:
    def connect() -> sqlite3.Connection:
        conn = _sqlite_open_read_only(path)
        register_functions(conn)
        conn.execute("PRAGMA query_only=ON")
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.set_authorizer(_sqlite_authorizer)
        return conn

    return sa.create_engine("sqlite+pysqlite://", creator=connect, poolclass=NullPool)


def _sqlite_open_read_only(path: Path) -> sqlite3.Connection:
    """Open `path` read-only; as immutable if that needs a WAL index this user cannot make."""
    uri = f"{path.as_uri()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        # A WAL store in a folder we cannot write: with no -wal file no writer
        # is at work (it would have one), so the file is as it will stay.
        conn.close()
        if "readonly" not in str(exc) or path.with_name(path.name + "-wal").exists():
            raise
        conn = sqlite3.connect(f"{uri}&immutable=1", uri=True, timeout=BUSY_TIMEOUT_S)
    return conn


def _pg_read_engine(url: URL) -> Engine:
    engine = sa.create_engine(
        url,
        poolclass=NullPool,
        connect_args=pg_connect_args(url),
        execution_options={"postgresql_readonly": True},
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.autocommit = True
        dbapi_conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        dbapi_conn.autocommit = False

    return engine
