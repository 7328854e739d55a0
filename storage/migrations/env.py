"""Alembic environment: migrate the connection handed over by `storage.migrate`.

There is no alembic.ini: `storage.migrate` builds the Config in code and puts
an open connection in ``config.attributes["connection"]``; this script only
runs the revisions on it, inside the caller's transaction.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run store migrations through storage.migrate, which supplies a connection")

context.configure(connection=connection, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
