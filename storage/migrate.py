"""Bring a store's schema to the revision this code expects, with Alembic from code.

No alembic.ini is needed: the Config is built here with the package's own
``migrations`` folder as script location and the caller's connection in
``config.attributes``. Migrations run in one transaction that holds the
write lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock), so two
processes opening a new store at once migrate it once. A store already at
head is recognised with one query, without importing Alembic, because every
`twin run` opens the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from twin.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["HEAD", "MIGRATIONS_DIR", "alembic_config", "current_revision", "upgrade"]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
HEAD = "0004"  # the newest revision; a test checks it against the scripts
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


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the store behind `engine` to `revision` (a no-op when already there)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        current = current_revision(conn)
        if current == (HEAD if revision == "head" else revision):
            return
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
