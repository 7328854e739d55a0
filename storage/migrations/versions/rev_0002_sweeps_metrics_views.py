"""Sweeps, metrics, run provenance and liveness, indexes for common questions, views.

Revision ID: 0002
Revises: 0001

Adds the `sweeps` and `metric_series` tables; gives `runs` its sweep,
replication, horizon, size, host/pid/heartbeat (to find runs killed mid-way)
and error text; replaces the single-column event index with (run, kind) and
(run, cause); indexes runs by status, start, scenario and sweep; creates the
views, among them `metrics`, which shows the series one row per bucket.

SQLite cannot add a foreign key with ALTER TABLE through Alembic without a
table rebuild, and a rebuild of `runs` would drop the table, which with
foreign keys on cascades into events and KPIs. So on SQLite the reference is
declared inline in ``ADD COLUMN``, which SQLite supports and keeps the rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.views import create_views_sql, drop_views_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_STATUS_CHECK = "status IN ('running', 'completed', 'failed', 'interrupted')"
_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_RUN_COLUMN_NAMES = ("replication", "until_h", "systems", "host", "pid", "heartbeat", "error")
_RUN_INDEXES = {
    "ix_runs_status": ["status"],
    "ix_runs_started": ["started"],
    "ix_runs_scenario_id": ["scenario_id"],
    "ix_runs_sweep_id": ["sweep_id"],
}


def _run_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("replication", sa.Integer, nullable=False, server_default="0"),
        sa.Column("until_h", sa.Double),
        sa.Column("systems", sa.Integer),
        sa.Column("host", sa.Text),
        sa.Column("pid", sa.Integer),
        sa.Column("heartbeat", sa.DateTime),
        sa.Column("error", sa.Text),
    ]


def _dialect() -> str:
    return op.get_bind().dialect.name


def upgrade() -> None:
    _create_sweeps()
    _extend_runs()
    _create_metric_series()
    op.drop_index("ix_events_run_id", table_name="events")
    op.create_index("ix_events_run_kind", "events", ["run_id", "kind"])
    op.create_index("ix_events_run_cause", "events", ["run_id", "cause"])
    for name, columns in _RUN_INDEXES.items():
        op.create_index(name, "runs", columns)
    for statement in create_views_sql(_dialect(), revision="0002"):
        op.execute(statement)


def _create_sweeps() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("scenario_id", sa.Integer, nullable=False),
        sa.Column("factors", sa.Text, nullable=False),
        sa.Column("replications", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("code_version", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sweeps"),
        sa.ForeignKeyConstraint(
            ["scenario_id"], ["scenarios.id"], name="fk_sweeps_scenario_id_scenarios"
        ),
        sa.CheckConstraint(_STATUS_CHECK, name="ck_sweeps_status"),
    )


def _extend_runs() -> None:
    if _dialect() == "sqlite":
        op.execute(
            "ALTER TABLE runs ADD COLUMN sweep_id INTEGER CONSTRAINT fk_runs_sweep_id_sweeps"
            " REFERENCES sweeps (id) ON DELETE SET NULL"
        )
    else:
        op.add_column("runs", sa.Column("sweep_id", sa.Integer))
        op.create_foreign_key(
            "fk_runs_sweep_id_sweeps", "runs", "sweeps", ["sweep_id"], ["id"], ondelete="SET NULL"
        )
    for column in _run_columns():
        op.add_column("runs", column)


def _create_metric_series() -> None:
    # One row per series; `series` is a JSON array of the values (NaN as null).
    op.create_table(
        "metric_series",
        sa.Column("id", _ROW_ID, primary_key=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("t0", sa.Double, nullable=False),
        sa.Column("bucket", sa.Double, nullable=False),
        sa.Column("t_end", sa.Double, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("series", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_metric_series"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_metric_series_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_metric_series_run_name_scope", "metric_series", ["run_id", "name", "scope"])


def downgrade() -> None:
    for statement in drop_views_sql(revision="0002"):
        op.execute(statement)
    for name in _RUN_INDEXES:
        op.drop_index(name, table_name="runs")
    op.drop_index("ix_events_run_cause", table_name="events")
    op.drop_index("ix_events_run_kind", table_name="events")
    op.create_index("ix_events_run_id", "events", ["run_id"])
    op.drop_index("ix_metric_series_run_name_scope", table_name="metric_series")
    op.drop_table("metric_series")
    for name in reversed(_RUN_COLUMN_NAMES):
        op.drop_column("runs", name)
    if _dialect() != "sqlite":
        op.drop_constraint("fk_runs_sweep_id_sweeps", "runs", type_="foreignkey")
    op.drop_column("runs", "sweep_id")
    op.drop_table("sweeps")
