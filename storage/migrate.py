"""Bring a store's schema to the revision this code expects, with Alembic from code.

No alembic.ini is needed: the Config is built here with the package's own
``migrations`` folder as script location and the caller's connection in
``config.attributes``. Migrations run in one transaction that holds the
write lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock), so two
processes opening a new store at once migrate it once. A store already at
head is recognised with one query, without importing Alembic and without
the lock. A database with tables but no revision stamp is not a store: it
is refused, never written into. Readers do not migrate: `check_readable`
says what to do with a store they cannot read.

PostgreSQL's advisory locks have no permissions: any session, a reader's
query included, can take any key. So the migration lock is the store's own
(the pair `PG_LOCK_CLASS`, a hash of the database and schema names that the
server computes in the migrating transaction): holding it delays only
migrations of that one store, never an open of a current store; and it is
waited for at most `LOCK_WAIT_S`, after which the migration fails with a
`StoreError` that says how to find the session holding it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from twin.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "HEAD",
    "MIGRATIONS_DIR",
    "LOCK_WAIT_S",
    "PG_LOCK_CLASS",
    "pg_lock_key",
    "alembic_config",
    "current_revision",
    "other_relations",
    "check_not_foreign",
    "check_readable",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
HEAD = "0006"  # the newest revision; a test checks it against the scripts
LOCK_WAIT_S = 60.0  # the longest a migration waits for another session's lock (PostgreSQL)
PG_LOCK_CLASS = 0x7A1F_7781  # first key of every wafertwin migration lock (pg_locks.classid)
# The second key: the store's identity, as the server names it, as a non-negative int4.
_PG_STORE_KEY = """
SELECT hashtext(format('%I.%I', current_database(), coalesce(current_schema(), '')))
       & 2147483647
"""
_PG_LOCK = sa.text("SELECT pg_advisory_xact_lock(CAST(:cls AS integer), CAST(:key AS integer))")


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config for the shipped migrations, bound to `connection`."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def current_revision(connection: Connection) -> str | None:
    """The revision stamped in the store, None for an empty database."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def other_relations(connection: Connection) -> list[str]:
    """Tables and views of the database's default schema (for one with no revision stamp)."""
    inspector = sa.inspect(connection)
    return sorted({*inspector.get_table_names(), *inspector.get_view_names()})


def _not_a_store(where: str, relations: list[str]) -> StoreError:
    shown = ", ".join(relations[:5]) + (", ..." if len(relations) > 5 else "")
    return StoreError(
        f"{where} is not a wafertwin store (it holds {shown}); "
        "use a new file, an empty database or schema, or an existing store"
    )


def check_not_foreign(connection: Connection, where: str) -> None:
    """Raise `StoreError` if the database has tables or views but no revision stamp."""
    if current_revision(connection) is None and (relations := other_relations(connection)):
        raise _not_a_store(where, relations)


def check_readable(connection: Connection, where: str) -> None:
    """Raise `StoreError` unless the database is a store at the current revision."""
    current = current_revision(connection)
    if current == HEAD:
        return
    if current is None:
        if relations := other_relations(connection):
            raise _not_a_store(where, relations)
        raise StoreError(f"no store at {where} (a run creates it)")
    _check_known(alembic_config(connection), current)
    raise StoreError(
        f"the store at {where} is at schema revision {current!r}, older than this wafertwin's "
        f"{HEAD!r}: run a writing command once (twin run) to migrate it, then read it"
    )


def upgrade(engine: Engine, revision: str = "head", *, where: str = "the database") -> None:
    """Migrate the store behind `engine` to `revision` (a no-op when already there).

    A database that has tables but no revision stamp is refused (`StoreError`).
    """
    target = HEAD if revision == "head" else revision
    with engine.connect() as conn:
        if current_revision(conn) == target:
            return
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            _pg_lock(conn, where)
        current = current_revision(conn)
        if current == target:
            return
        if current is None:
            check_not_foreign(conn, where)
        from alembic import command

        config = alembic_config(conn)
        _check_known(config, current)
        command.upgrade(config, revision)


def pg_lock_key(connection: Connection) -> int:
    """The second key of the migration lock of the PostgreSQL store `connection` is in (the
    first is `PG_LOCK_CLASS`): the same for every session of that database and schema."""
    return int(connection.execute(sa.text(_PG_STORE_KEY)).scalar_one())


def _pg_lock(conn: Connection, where: str) -> None:
    """Take the store's migration lock for the transaction, waiting at most `LOCK_WAIT_S`.

    The session's own ``lock_timeout`` is restored once the lock is held, so the
    migration's statements wait for table locks as they did before.
    """
    import psycopg.errors

    key = pg_lock_key(conn)
    before = conn.execute(sa.text("SELECT current_setting('lock_timeout')")).scalar_one()
    wait_ms = f"{max(1, round(LOCK_WAIT_S * 1000))}ms"
    conn.execute(sa.text("SELECT set_config('lock_timeout', :ms, true)"), {"ms": wait_ms})
    try:
        conn.execute(_PG_LOCK, {"cls": PG_LOCK_CLASS, "key": key})
    except sa.exc.OperationalError as exc:
        if not isinstance(exc.orig, psycopg.errors.LockNotAvailable):
            raise
        raise StoreError(
            f"cannot migrate the store at {where}: another session has held its migration lock "
            f"for over {LOCK_WAIT_S:g} s (find it: SELECT pid FROM pg_locks WHERE locktype = "
            f"'advisory' AND classid = {PG_LOCK_CLASS} AND objid = {key})"
        ) from exc
    conn.execute(sa.text("SELECT set_config('lock_timeout', :ms, true)"), {"ms": before})


def _check_known(config: Config, current: str | None) -> None:
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    if current is None:
        return
    try:
        ScriptDirectory.from_config(config).get_revision(current)
    except CommandError as exc:
        raise StoreError(
            f"the store is at schema revision {current!r}, newer than this wafertwin "
            f"knows (up to {HEAD!r}); upgrade wafertwin to use it"
        ) from exc
