"""First schema: scenarios, runs, events and KPIs.

Revision ID: 0001
Revises: (none)

The schema as the first stores were written. It stays exactly as it was, so
that a store created by the first release migrates through 0002 like any
other. Metrics, sweeps, the extra run columns and the views come in 0002.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_STATUS_CHECK = "status IN ('running', 'completed', 'failed', 'interrupted')"
_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "scenarios",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("hash", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scenarios"),
        sa.UniqueConstraint("hash", name="uq_scenarios_hash"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("scenario_id", sa.Integer, nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("code_version", sa.Text, nullable=False),
        sa.Column("started", sa.DateTime, nullable=False),
        sa.Column("finished", sa.DateTime),
        sa.Column("wall_s", sa.Double),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.ForeignKeyConstraint(
            ["scenario_id"], ["scenarios.id"], name="fk_runs_scenario_id_scenarios"
        ),
        sa.CheckConstraint(_STATUS_CHECK, name="ck_runs_status"),
    )
    op.create_table(
        "events",
        sa.Column("id", _ROW_ID, primary_key=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("t", sa.Double, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("value", sa.Double),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_events_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_events_run_id", "events", ["run_id"])
    op.create_table(
        "kpis",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("value", sa.Double),
        sa.PrimaryKeyConstraint("run_id", "name", name="pk_kpis"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_kpis_run_id_runs", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    op.drop_table("kpis")
    op.drop_index("ix_events_run_id", table_name="events")
    op.drop_table("events")
    op.drop_table("runs")
    op.drop_table("scenarios")
