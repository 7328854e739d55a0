"""Sweeps that can be resumed and compared: levels, seeds, one commit per replication.

Revision ID: 0006
Revises: 0005

Gives `sweeps` the entropy of its seed sequence (`seed`), what its
replications record (`record`), its settings (targets and limits, JSON), and
for a nightly sweep its `label` (the nightly entry) and `night`; adds
`sweep_levels` (each factor combination: its scenario and assignments),
`runs.level`, and a unique index on (`sweep_id`, `level`, `replication`)
that makes committing a replication idempotent; adds `t_quantiles` (the
97.5 % quantile of Student's t for 1 to 1000 degrees of freedom, computed
here once) and the views `v_sweep_kpis`, `v_sweep_differences`,
`v_nightly_changes` and `v_events`, granted to the reader role on PostgreSQL.
Runs that joined a sweep before this revision keep a NULL level.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.reader_role import grant_sql, revoke_sql
from storage.views import create_views_sql, drop_views_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_VIEWS = ("v_sweep_kpis", "v_sweep_differences", "v_nightly_changes", "v_events")
_SWEEP_COLUMNS = ("seed", "record", "settings", "label", "night")
_MAX_DF = 1000


def _dialect() -> str:
    return op.get_bind().dialect.name


def upgrade() -> None:
    op.add_column("sweeps", sa.Column("seed", sa.BigInteger))
    op.add_column("sweeps", sa.Column("record", sa.Text, nullable=False, server_default="kpis"))
    op.add_column("sweeps", sa.Column("settings", sa.Text, nullable=False, server_default="{}"))
    op.add_column("sweeps", sa.Column("label", sa.Text))
    op.add_column("sweeps", sa.Column("night", sa.Date))
    op.create_index("ix_sweeps_label_night", "sweeps", ["label", "night"])
    op.create_table(
        "sweep_levels",
        sa.Column("sweep_id", sa.Integer, nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("scenario_id", sa.Integer, nullable=False),
        sa.Column("assignments", sa.Text, nullable=False),
        sa.Column("overrides", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("sweep_id", "level", name="pk_sweep_levels"),
        sa.ForeignKeyConstraint(
            ["sweep_id"], ["sweeps.id"], name="fk_sweep_levels_sweep_id_sweeps",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["scenario_id"], ["scenarios.id"], name="fk_sweep_levels_scenario_id_scenarios"
        ),
    )
    op.add_column("runs", sa.Column("level", sa.Integer))
    op.create_index(
        "uq_runs_sweep_level_replication", "runs", ["sweep_id", "level", "replication"],
        unique=True,
    )
    _t_quantiles()
    for statement in create_views_sql(_dialect(), "0006", names=_VIEWS):
        op.execute(statement)
    if _dialect() == "postgresql":
        op.execute(grant_sql(("sweep_levels", "t_quantiles", *_VIEWS)))


def _t_quantiles() -> None:
    from scipy.special import stdtrit

    table = op.create_table(
        "t_quantiles",
        sa.Column("df", sa.Integer, autoincrement=False),
        sa.Column("t975", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("df", name="pk_t_quantiles"),
    )
    rows = [{"df": df, "t975": float(stdtrit(df, 0.975))} for df in range(1, _MAX_DF + 1)]
    op.bulk_insert(table, rows)


def downgrade() -> None:
    if _dialect() == "postgresql":
        op.execute(revoke_sql(("sweep_levels", "t_quantiles", *_VIEWS)))
    for statement in drop_views_sql("0006", names=_VIEWS):
        op.execute(statement)
    op.drop_table("t_quantiles")
    op.drop_index("uq_runs_sweep_level_replication", table_name="runs")
    op.drop_column("runs", "level")
    op.drop_table("sweep_levels")
    op.drop_index("ix_sweeps_label_night", table_name="sweeps")
    for name in reversed(_SWEEP_COLUMNS):
        op.drop_column("sweeps", name)
