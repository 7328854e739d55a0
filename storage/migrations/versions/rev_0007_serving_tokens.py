"""A view of the tokens each tenant asked for, got and lost, by root cause.

Revision ID: 0007
Revises: 0006

`v_serving_tokens` splits the `serving.tokens.*` KPIs of completed runs into
(run, scenario, tenant, kind, cause, tokens), so "tokens lost by root cause"
is one GROUP BY (docs/store.md). It reads existing tables only: no data moves.
On PostgreSQL the reader role of revision 0005 is granted it here.
"""

from __future__ import annotations

from alembic import op

from storage.reader_role import grant_sql, revoke_sql
from storage.views import view_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_VIEW = "v_serving_tokens"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute(f"CREATE VIEW {_VIEW} AS\n{view_sql(dialect, '0007')[_VIEW]}")
    if dialect == "postgresql":
        op.execute(grant_sql((_VIEW,)))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(revoke_sql((_VIEW,)))
    op.execute(f"DROP VIEW IF EXISTS {_VIEW}")
