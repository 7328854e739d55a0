"""Runs in other processes: killed mid-run, or writing at the same time as another."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

import storage
from storage import Store, open_store, read_events, read_metrics, read_run, read_runs, schema
from storage.engines import _enter_wal
from storage.liveness import process_started, this_host, utcnow
from storage.testing import synthetic_run, write_run

WORKER = Path(__file__).with_name("writer_proc.py")
ROOT = Path(storage.__file__).resolve().parents[1]


def _spawn(*args: object) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, str(WORKER), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_a_killed_run_is_interrupted_and_never_counted(
    store_url: str, procs: list[subprocess.Popen[str]]
) -> None:
    with open_store(store_url) as store:
        done = write_run(store, synthetic_run(100, 100, seed=1))
    proc = _spawn(store_url, "hang", 2, 3000, 960, 1000)
    procs.append(proc)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    assert line.startswith("flushed"), proc.stderr.read()  # type: ignore[union-attr]
    victim = int(line.split()[1])
    with open_store(store_url) as store:  # its process is alive: left alone
        assert read_run(store, victim)["status"] == "running"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with open_store(store_url) as store:
        header = read_run(store, victim)
        assert header["status"] == "interrupted"
        assert "no longer exists" in header["error"]
        assert len(read_events(store, victim)) == 3000  # partial rows kept for a look
        assert len(read_metrics(store, victim)) == len(synthetic_run(0, 960).metrics)
        counted = store.query("SELECT DISTINCT run_id FROM v_failures_by_cause")["run_id"]
        assert counted.tolist() == [done]
        assert store.query("SELECT run_id FROM v_availability")["run_id"].tolist() == [done]


def test_two_writer_processes_lose_nothing(
    store_url: str, procs: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    go = tmp_path / "go"
    procs.extend(_spawn(store_url, "complete", seed, 4000, 1800, 500, go) for seed in (1, 2))
    go.touch()  # both open the (new) store and write at once
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.startswith("completed")
    with open_store(store_url) as store:
        runs = read_runs(store)
        assert runs["status"].tolist() == ["completed", "completed"]
        expected = synthetic_run(0, 1800)
        for run_id in runs["run_id"]:
            assert len(read_events(store, run_id)) == 4000
            assert len(read_metrics(store, run_id)) == len(expected.metrics) == 6300
        assert store.query("SELECT COUNT(*) AS n FROM metric_series")["n"][0] == 2 * 15
        assert store.query("SELECT COUNT(*) AS n FROM kpis")["n"][0] == 4


def _age(store: Store, run_id: int, *, host: str, pid: int | None, hours: float) -> None:
    runs = schema.runs
    beat = utcnow() - timedelta(hours=hours)
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(runs).where(runs.c.id == run_id).values(host=host, pid=pid, heartbeat=beat)
        )


def test_runs_of_other_hosts_are_interrupted_only_when_their_heartbeat_is_stale(
    store: Store,
) -> None:
    fresh = write_run(store, synthetic_run(5, 5, seed=1), complete=False)
    stale = write_run(store, synthetic_run(5, 5, seed=2), complete=False)
    _age(store, fresh, host="elsewhere", pid=1, hours=0.5)
    _age(store, stale, host="elsewhere", pid=1, hours=2)
    assert store.recover_interrupted() == [stale]
    assert read_run(store, fresh)["status"] == "running"
    assert "no heartbeat since" in read_run(store, stale)["error"]


def test_a_run_of_a_dead_local_process_is_interrupted(store: Store) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    run_id = write_run(store, synthetic_run(5, 5), complete=False)
    runs = schema.runs
    with store.engine.begin() as conn:
        conn.execute(sa.update(runs).where(runs.c.id == run_id).values(pid=int(gone.stdout)))
    assert store.recover_interrupted() == [run_id]
    assert store.recover_interrupted() == []


def test_opening_a_new_store_waits_for_another_that_holds_it(tmp_path: Path) -> None:
    # Two processes opening a new SQLite store race to switch it to WAL; the loser
    # can be told "database is locked" without the busy handler being asked, so
    # the switch is retried. Here a connection without a busy timeout meets a lock.
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    opener = sqlite3.connect(path, isolation_level=None, timeout=0)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        opener.execute("PRAGMA journal_mode=WAL")
    release = threading.Timer(0.3, holder.execute, ["COMMIT"])
    release.start()
    _enter_wal(opener)
    release.join()
    assert opener.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    holder.close()
    opener.close()


def test_a_process_start_time_comes_from_proc_to_within_the_slack() -> None:
    before = utcnow()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        began = process_started(child.pid)
        if began is None:
            pytest.skip("no /proc on this platform")
        assert before - timedelta(seconds=2) <= began <= utcnow() + timedelta(seconds=2)
    finally:
        child.kill()
        child.wait()


def test_a_run_whose_pid_now_belongs_to_a_later_process_is_interrupted(store: Store) -> None:
    if process_started(os.getpid()) is None:
        pytest.skip("no /proc on this platform")
    reused = write_run(store, synthetic_run(5, 5, seed=1), complete=False)
    ours = write_run(store, synthetic_run(5, 5, seed=2), complete=False)
    runs = schema.runs
    with store.engine.begin() as conn:  # this test process "took over" the first run's pid
        conn.execute(
            sa.update(runs).where(runs.c.id == reused).values(
                host=this_host(), pid=os.getpid(), started=utcnow() - timedelta(days=30)
            )
        )
    assert store.recover_interrupted() == [reused]
    assert "pid was reused" in read_run(store, reused)["error"]
    assert read_run(store, ours)["status"] == "running"  # our own, live and older than its run
