"""SQL store for runs, events, metrics and KPIs (SQLite by default, PostgreSQL by URL).

Where it sits: the engine (`twin`) hands records to a sink; `Store.begin_run`
returns a `RunWriter`, the sink that commits them in chunks and ends the run
with a status. The read helpers and `Store.query` serve the CLI and notebooks
as pandas DataFrames. The schema is migrated with Alembic when a store opens.

    store = open_store("runs.db")
    result, run_id = store.record(load_scenario("scenarios/hall.toml"), seed=7)
    read_runs(store, status="completed")

`record` is `begin_run`, `simulate(..., sink=writer)` and `writer.complete`.
"""

from __future__ import annotations

from storage.read import (
    event_summary,
    read_events,
    read_kpis,
    read_metrics,
    read_run,
    read_runs,
)
from storage.store import Store, code_version, open_store
from storage.writer import RunWriter
from twin.errors import StoreError

__all__ = [
    "open_store",
    "Store",
    "RunWriter",
    "StoreError",
    "read_runs",
    "read_run",
    "read_events",
    "read_metrics",
    "read_kpis",
    "event_summary",
    "code_version",
]
