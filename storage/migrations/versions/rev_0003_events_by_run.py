"""Events indexed by run alone, which makes recording a run cheaper.

Revision ID: 0003
Revises: 0002

0002 indexed events by (run, kind) and by (run, cause). Keeping both up to
date was over a third of the cost of inserting a run's events, the largest
part of recording one, while the questions asked of events are per run (or
over whole runs), where a run's ~10k events are read in a few milliseconds
once the index has found them. One index on `run_id` serves them all: a run's
entries go in at the end of it, which costs little.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_events_run_cause", table_name="events")
    op.drop_index("ix_events_run_kind", table_name="events")
    op.create_index("ix_events_run_id", "events", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_events_run_id", table_name="events")
    op.create_index("ix_events_run_kind", "events", ["run_id", "kind"])
    op.create_index("ix_events_run_cause", "events", ["run_id", "cause"])
