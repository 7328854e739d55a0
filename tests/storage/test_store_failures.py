"""A store that fails during a run, and a run that is alive but quiet.

A database error in the middle of a run (a SQLite write lock held by another
connection, the PostgreSQL connection killed) reaches the user as one line
with exit code 2 and is stored as the run's error, the run marked failed;
it used to surface as a `TypeError` because SimPy rebuilds an exception
from its arguments. A live run beats while it simulates, so it is never
declared interrupted however long it stays quiet.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from storage import Store, open_store, read_run, read_runs
from storage import engines as engines_module
from storage import writer as writer_module
from storage.testing import synthetic_run
from storage.writer import RunWriter

HALL = str(Path(__file__).resolve().parents[2] / "scenarios" / "hall.toml")
# hall.toml makes ~11.6k events in a year, so the engine hands the sink its first
# batch of 10k from inside a SimPy process: where a failure used to be rebuilt


def _run_hall(twin: click.Group, url: str) -> Any:
    return CliRunner().invoke(twin, ["run", HALL, "--db", url])


def _only_run(url: str) -> dict[str, Any]:
    [run] = read_runs(url).to_dict("records")
    return dict(run)


def test_a_sqlite_lock_held_during_a_run_fails_it_in_one_line(
    twin: click.Group, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "locked.db"
    monkeypatch.setattr(engines_module, "BUSY_TIMEOUT_S", 0.2)
    open_store(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    real_write, real_fail = RunWriter.write_events, RunWriter.fail

    def write_while_locked(self: RunWriter, events: Any) -> None:
        if not other.in_transaction:
            other.execute("BEGIN IMMEDIATE")  # another process takes the write lock
        real_write(self, events)

    def fail_once_released(self: RunWriter, message: str) -> None:
        other.execute("ROLLBACK")  # ... and lets go before the run records its end
        real_fail(self, message)

    monkeypatch.setattr(RunWriter, "write_events", write_while_locked)
    monkeypatch.setattr(RunWriter, "fail", fail_once_released)
    result = _run_hall(twin, str(path))
    other.close()
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert "database is locked" in line and "TypeError" not in line
    assert line.startswith(f"Error: run 1: writing its records in {path} failed: ")
    run = _only_run(str(path))
    assert run["status"] == "failed"
    assert "database is locked" in run["error"] and "TypeError" not in run["error"]


@pytest.mark.pg
def test_a_killed_postgresql_connection_fails_the_run_in_one_line(
    twin: click.Group, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    killer = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    real_insert = writer_module.insert_events
    killed: list[int] = []

    def insert_after_the_kill(conn: sa.Connection, run_id: int, events: Any) -> None:
        if not killed:  # a superuser ends the writer's backend in mid-transaction
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            with killer.connect() as admin:
                admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            killed.append(pid)
        real_insert(conn, run_id, events)

    monkeypatch.setattr(writer_module, "insert_events", insert_after_the_kill)
    result = _run_hall(twin, pg_url)
    killer.dispose()
    assert killed and result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: run 1: writing its records in postgresql")
    assert "TypeError" not in line
    run = _only_run(pg_url)
    assert run["status"] == "failed" and run["error"] == line.removeprefix("Error: ")


@pytest.fixture
def pg_url() -> Iterator[str]:
    import os

    from storage.testing import PG_URL_ENV, pg_test_schema

    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(f"{PG_URL_ENV} is not set")
    with pg_test_schema(base) as url:
        yield url


def _beating(run_id: int) -> bool:
    return any(t.name == f"heartbeat-run-{run_id}" for t in threading.enumerate())


def test_a_quiet_live_run_beats_and_is_never_taken_for_dead(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale_s = 1.0
    monkeypatch.setattr(writer_module, "HEARTBEAT_S", 0.02)
    run = synthetic_run(3, 0)
    writer = store.begin_run(**run.header)  # type: ignore[arg-type]
    started = read_run(store, writer.run_id)["started"]
    deadline = time.monotonic() + 60.0
    while (read_run(store, writer.run_id)["heartbeat"] - started).total_seconds() <= stale_s:
        assert time.monotonic() < deadline, "the heartbeat never moved while the run was quiet"
        time.sleep(0.05)
    # quiet for longer than the stale limit, yet its heartbeat is fresh: still running
    with open_store(store_url, stale_after_s=stale_s) as other:
        assert other.recover_interrupted() == []
    assert read_run(store, writer.run_id)["status"] == "running"
    writer.fail("done")
    assert not _beating(writer.run_id)
    assert read_run(store, writer.run_id)["status"] == "failed"


def test_every_way_of_ending_a_run_stops_its_heartbeat(store: Store) -> None:
    run = synthetic_run(3, 0)
    for end in ("complete", "fail", "interrupt"):
        writer = store.begin_run(**run.header)  # type: ignore[arg-type]
        assert _beating(writer.run_id)
        if end == "complete":
            writer.complete(run.result)
        else:
            getattr(writer, end)("stop")
        assert not _beating(writer.run_id)
