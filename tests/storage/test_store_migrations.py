"""A store written by the first schema keeps working; head matches `storage.schema`."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from storage import (
    StoreError,
    open_store,
    read_events,
    read_kpis,
    read_metrics,
    read_runs,
    schema,
)
from storage.engines import make_write_engine
from storage.migrate import HEAD, alembic_config, current_revision, upgrade
from storage.testing import synthetic_run, write_run
from storage.urls import normalize_url

FIRST_SCHEMA_RUN = [
    "INSERT INTO scenarios (hash, name, document, created)"
    " VALUES ('abc', 'hall', '{\"hall\": {\"rows\": 2}}', :t)",
    "INSERT INTO runs (scenario_id, seed, status, code_version, started, finished, wall_s)"
    " VALUES (1, 42, 'completed', '0.0.1', :t, :t, 2.5)",
    "INSERT INTO events (run_id, t, scope, kind, cause, value)"
    " VALUES (1, 1.5, 'hall.row0.sys1', 'failure', 'psu', NULL)",
    "INSERT INTO events (run_id, t, scope, kind, cause, value)"
    " VALUES (1, 1.5, 'hall.row0.sys1', 'outage', 'psu', 2.5)",
    "INSERT INTO kpis (run_id, name, value) VALUES (1, 'availability', 0.995)",
]


def test_a_first_schema_store_migrates_and_keeps_its_runs(store_url: str) -> None:
    engine = make_write_engine(normalize_url(store_url))
    upgrade(engine, "0001")
    with engine.begin() as conn:
        assert current_revision(conn) == "0001"
        assert not sa.inspect(conn).has_table("metric_series")
        for statement in FIRST_SCHEMA_RUN:
            conn.execute(sa.text(statement), {"t": datetime(2025, 3, 1, 2, 0)})
    engine.dispose()

    with open_store(store_url) as store:
        with store.engine.connect() as conn:
            assert current_revision(conn) == HEAD
        old = read_runs(store).iloc[0]
        assert (old["run_id"], old["seed"], old["status"], old["replication"]) == (
            1,
            42,
            "completed",
            0,
        )
        assert read_events(store, 1)["kind"].tolist() == ["failure", "outage"]
        assert read_metrics(store, 1).empty
        assert read_kpis(store, 1)["value"].tolist() == [0.995]
        assert store.query("SELECT availability FROM v_availability")["availability"][0] == 0.995
        trend = store.query("SELECT night, runs FROM v_kpi_trend")
        assert str(trend["night"][0]) == "2025-03-01" and trend["runs"][0] == 1
        lost = store.query("SELECT cause, downtime_h FROM v_failures_by_cause")
        assert lost.values.tolist() == [["psu", 2.5]]
        new = write_run(store, synthetic_run(10, 10))
        assert read_runs(store)["run_id"].tolist() == [new, 1]
        assert len(read_metrics(store, new)) == len(synthetic_run(10, 10).metrics)


def test_head_constant_is_the_newest_script() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD


def test_the_migrated_schema_matches_the_metadata(store_url: str) -> None:
    with open_store(store_url) as store, store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, schema.metadata)
        if conn.dialect.name == "sqlite":
            # SQLAlchemy does not reflect the name or ON DELETE of a foreign key
            # declared on the column (how 0002 adds runs.sweep_id); SQLite knows them.
            diffs = [d for d in diffs if not _is_sweep_fk(d)]
            fks = conn.exec_driver_sql("PRAGMA foreign_key_list(runs)").all()
            assert ("sweeps", "sweep_id", "SET NULL") in [(r[2], r[3], r[6]) for r in fks]
        assert diffs == []


def _is_sweep_fk(diff: tuple[object, ...]) -> bool:
    kind, constraint = diff[0], diff[1]
    columns = getattr(constraint, "column_keys", [])
    return kind in ("add_fk", "remove_fk") and columns == ["sweep_id"]


def test_a_store_from_a_newer_wafertwin_is_refused(store_url: str) -> None:
    open_store(store_url).close()
    engine = make_write_engine(normalize_url(store_url))
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    engine.dispose()
    with pytest.raises(StoreError, match="newer than this wafertwin"):
        open_store(store_url)


def test_reopening_is_a_no_op_and_downgrade_round_trips(store_url: str) -> None:
    from alembic import command

    open_store(store_url).close()
    engine = make_write_engine(normalize_url(store_url))
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001")
        assert current_revision(conn) == "0001"
    upgrade(engine)
    upgrade(engine)
    with engine.connect() as conn:
        assert current_revision(conn) == HEAD
    engine.dispose()
