"""A PostgreSQL role that can only read the store, for `twin query`.

Revision ID: 0005
Revises: 0004

Ad-hoc SQL runs as a role with no power beyond reading the store (see
`storage.query`). This revision creates ``wafertwin_reader`` (LOGIN,
NOINHERIT, no superuser, CREATEDB or CREATEROLE, no password: the operator
sets one or lets it in through pg_hba.conf) unless it exists, and grants it
USAGE on the store's schema and SELECT on each relation of the store. A user
that may not create roles migrates all the same, and an operator creates the
role later (docs/store.md, "Who may read what"). Nothing happens on SQLite,
whose query connection is read-only by itself.
"""

from __future__ import annotations

from alembic import op

from storage.reader_role import create_role_sql, grant_sql, revoke_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_RELATIONS = (
    "alembic_version", "scenarios", "sweeps", "runs", "events", "metric_series", "kpis",
    "metrics", "v_availability", "v_failures_by_cause", "v_capacity_lost_by_cause", "v_kpi_trend",
)  # fmt: skip


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if _postgresql():
        op.execute(create_role_sql())
        op.execute(grant_sql(_RELATIONS))


def downgrade() -> None:
    if _postgresql():
        op.execute(revoke_sql(_RELATIONS))
