"""The store's tables at the newest schema revision, as SQLAlchemy Core objects.

Writers and readers build their statements from these tables. The migrations
in `storage/migrations/versions/` create the same tables step by step and do
not import this module (a revision must stay as it was written); a test
checks that a database migrated to head matches this metadata.

Times (`created`, `started`, `finished`, `heartbeat`) are naive UTC. JSON
documents (`scenarios.document`, `sweeps.factors`) are text with sorted keys;
`runs.overrides` is a JSON array of a run's ``--set`` assignments, in order.
A run's `name` is what it is listed and aggregated under (see `twin.records.run_name`).
A float that is NaN is stored as NULL, on both backends, so aggregates skip it.

Metrics are stored one row per series (`metric_series`, the values a JSON
array) and read in long form, one row per bucket, through the view
`metrics`; `metrics` here is a lightweight stand-in for that view, not part
of `metadata`, so the read helpers can build statements on it.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "metadata",
    "scenarios",
    "sweeps",
    "sweep_levels",
    "t_quantiles",
    "runs",
    "events",
    "metric_series",
    "metrics",
    "kpis",
    "RUN_STATUSES",
    "SWEEP_STATUSES",
    "RECORD_LEVELS",
    "NAMING_CONVENTION",
]

RUN_STATUSES = ("running", "completed", "failed", "interrupted")
SWEEP_STATUSES = RUN_STATUSES
RECORD_LEVELS = ("kpis", "metrics", "events")  # what a sweep's replications keep, cumulative

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# SQLite only auto-numbers an INTEGER PRIMARY KEY (the rowid alias), so the
# big record tables use BIGINT on PostgreSQL and INTEGER on SQLite.
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _status_check(name: str) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{s}'" for s in RUN_STATUSES)
    return sa.CheckConstraint(f"status IN ({allowed})", name=name)


scenarios = sa.Table(
    "scenarios",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("hash", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
)

sweeps = sa.Table(
    "sweeps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("scenario_id", sa.Integer, sa.ForeignKey("scenarios.id"), nullable=False),
    sa.Column("factors", sa.Text, nullable=False),
    sa.Column("replications", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("code_version", sa.Text, nullable=False),
    sa.Column("seed", sa.BigInteger),
    sa.Column("record", sa.Text, nullable=False, server_default="kpis"),
    sa.Column("settings", sa.Text, nullable=False, server_default="{}"),
    sa.Column("label", sa.Text),
    sa.Column("night", sa.Date),
    _status_check("status"),
    sa.Index("ix_sweeps_label_night", "label", "night"),
)

# One row per factor combination of a sweep: the scenario it resolves to and the
# `--set` assignments (base overrides, then the level's factor values) that made it.
sweep_levels = sa.Table(
    "sweep_levels",
    metadata,
    sa.Column(
        "sweep_id", sa.Integer, sa.ForeignKey("sweeps.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("scenario_id", sa.Integer, sa.ForeignKey("scenarios.id"), nullable=False),
    sa.Column("assignments", sa.Text, nullable=False),
    sa.Column("overrides", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("sweep_id", "level"),
)

# The 97.5 % quantile of Student's t with `df` degrees of freedom, for the
# views' 95 % intervals (SQL has no t quantile; see storage/views.py).
t_quantiles = sa.Table(
    "t_quantiles",
    metadata,
    sa.Column("df", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("t975", sa.Double, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("scenario_id", sa.Integer, sa.ForeignKey("scenarios.id"), nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("code_version", sa.Text, nullable=False),
    sa.Column("started", sa.DateTime, nullable=False),
    sa.Column("finished", sa.DateTime),
    sa.Column("wall_s", sa.Double),
    sa.Column("sweep_id", sa.Integer, sa.ForeignKey("sweeps.id", ondelete="SET NULL")),
    sa.Column("replication", sa.Integer, nullable=False, server_default="0"),
    sa.Column("until_h", sa.Double),
    sa.Column("systems", sa.Integer),
    sa.Column("host", sa.Text),
    sa.Column("pid", sa.Integer),
    sa.Column("heartbeat", sa.DateTime),
    sa.Column("error", sa.Text),
    sa.Column("label", sa.Text),
    sa.Column("overrides", sa.Text, nullable=False, server_default="[]"),
    sa.Column("name", sa.Text),
    sa.Column("level", sa.Integer),
    _status_check("status"),
    sa.Index("ix_runs_status", "status"),
    sa.Index("ix_runs_started", "started"),
    sa.Index("ix_runs_scenario_id", "scenario_id"),
    sa.Index("ix_runs_sweep_id", "sweep_id"),
    # a sweep's replication is committed once, however often it was run (runs
    # outside sweeps have a NULL sweep_id, and NULLs never collide)
    sa.Index("uq_runs_sweep_level_replication", "sweep_id", "level", "replication", unique=True),
)


def _run_fk() -> sa.Column[int]:
    return sa.Column(
        "run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
    )


events = sa.Table(
    "events",
    metadata,
    sa.Column("id", RowId, primary_key=True),
    _run_fk(),
    sa.Column("t", sa.Double, nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("cause", sa.Text, nullable=False),
    sa.Column("value", sa.Double),
    sa.Index("ix_events_run_id", "run_id"),  # one index: see migration 0003
)

metric_series = sa.Table(
    "metric_series",
    metadata,
    sa.Column("id", RowId, primary_key=True),
    _run_fk(),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("t0", sa.Double, nullable=False),
    sa.Column("bucket", sa.Double, nullable=False),
    sa.Column("t_end", sa.Double, nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("series", sa.Text, nullable=False),
    sa.Index("ix_metric_series_run_name_scope", "run_id", "name", "scope"),
)

# The view over `metric_series` (see storage/views.py), one row per bucket.
metrics = sa.table(
    "metrics",
    sa.column("run_id", sa.Integer),
    sa.column("t", sa.Double),
    sa.column("bucket", sa.Double),
    sa.column("scope", sa.Text),
    sa.column("name", sa.Text),
    sa.column("value", sa.Double),
)

kpis = sa.Table(
    "kpis",
    metadata,
    _run_fk(),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("value", sa.Double),
    sa.PrimaryKeyConstraint("run_id", "name"),
)
