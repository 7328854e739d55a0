"""Bring a store's schema to the revision this code expects, with Alembic from code.

No alembic.ini is needed: the Config is built here with the package's own
``migrations`` folder as script location and the caller's connection in
``config.attributes``. Migrations run in one transaction that holds the
write lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock), so two
processes opening a new store at once migrate it once. A store already at
head is recognised with one query, without importing Alembic and without
the lock (which any session can take: an ad-hoc query holding it must not
stall every `twin run`). A database with tables but no revision stamp is not
a store: it is refused, never written into. Readers do not migrate:
`check_readable` says what to do with a store they cannot read.
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
    "alembic_config",
    "current_revision",
    "other_relations",
    "check_not_foreign",
    "check_readable",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
HEAD = "0005"  # the newest revision; a test checks it against the scripts
_PG_LOCK_KEY = 0x7A1F_7781  # any constant shared by every wafertwin process


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
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        current = current_revision(conn)
        if current == target:
            return
        if current is None:
            check_not_foreign(conn, where)
        from alembic import command

        config = alembic_config(conn)
        _check_known(config, current)
        command.upgrade(config, revision)


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
