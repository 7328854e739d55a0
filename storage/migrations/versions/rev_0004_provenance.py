"""Run provenance: each run's label, `--set` overrides and the name it goes by.

Revision ID: 0004
Revises: 0003

Adds to `runs` the `label` given with `--label`, the `--set` `overrides`
(a JSON array of the assignments, in order) and `name`: the name a run is
listed and aggregated under, which is its label, else its scenario's name,
marked with the scenario's short hash when overrides changed it (so a
what-if run is never averaged as the scenario it was derived from). Existing
runs had neither label nor overrides: their name is their scenario's. The
views that name a run's scenario now show the run's `name`.

On PostgreSQL the views are replaced in place (their columns keep their
names and types), which keeps any privileges granted on them; SQLite has
none to keep and cannot replace a view, so there they are dropped and
created, around the column changes that SQLite checks views against.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.views import create_views_sql, drop_views_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _dialect() -> str:
    return op.get_bind().dialect.name


def _views(revision: str) -> None:
    """Create the views of `revision`, replacing them in place on PostgreSQL."""
    dialect = _dialect()
    for statement in create_views_sql(dialect, revision, replace=dialect == "postgresql"):
        op.execute(statement)


def upgrade() -> None:
    if _dialect() == "sqlite":
        for statement in drop_views_sql(revision="0002"):
            op.execute(statement)
    op.add_column("runs", sa.Column("label", sa.Text))
    op.add_column("runs", sa.Column("overrides", sa.Text, nullable=False, server_default="[]"))
    op.add_column("runs", sa.Column("name", sa.Text))
    op.execute("UPDATE runs SET name = (SELECT name FROM scenarios WHERE id = runs.scenario_id)")
    _views("0004")


def downgrade() -> None:
    if _dialect() == "sqlite":
        for statement in drop_views_sql(revision="0004"):
            op.execute(statement)
    else:
        _views("0002")  # off the columns about to go
    for name in ("name", "overrides", "label"):
        op.drop_column("runs", name)
    if _dialect() == "sqlite":
        _views("0002")
