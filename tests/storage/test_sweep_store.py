"""Sweeps in the store, on SQLite and PostgreSQL: each replication committed once
whatever arrives, what each record level keeps, the views' intervals equal to the
sweep's own, and a `twin sweep` killed with SIGKILL resumed without loss or double count."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import storage
from cli.main import cli
from storage import Store, open_store
from storage.sweeps import (
    SweepLedger,
    committed_kpis,
    load_sweep,
    new_sweep,
    plan_of,
    previous_night,
    run_stored,
)
from twin.experiments.design import factorial, parse_factor, replication_seed
from twin.experiments.executors import InProcess
from twin.experiments.replication import Outcome, Task, run_replication
from twin.experiments.stats import summarize

ROOT = Path(storage.__file__).resolve().parents[1]
SMALL = ROOT / "scenarios" / "small.toml"
SETTINGS = {"replications": 3, "max_replications": 3, "targets": []}


def small_sweep(store: Store, record: str = "kpis", factors: tuple[str, ...] = ()) -> int:
    levels = factorial(SMALL, ["run.until=20d"], [parse_factor(f) for f in factors])
    return new_sweep(store, levels, seed=7, settings=SETTINGS, record=record)


def outcome(
    store: Store, sweep_id: int, level: int, replication: int, record: str = "kpis"
) -> Outcome:
    """What a worker sends back for that replication of a stored sweep."""
    plan = plan_of(load_sweep(store, sweep_id))
    task = Task(level, replication, replication_seed(plan.seed, replication),
                plan.levels[level].document, record)  # fmt: skip
    return run_replication(task)


def count(store: Store, sql: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def test_a_replication_arriving_twice_is_committed_once(store: Store) -> None:
    sweep_id = small_sweep(store)
    ledger = SweepLedger(store, load_sweep(store, sweep_id))
    first = outcome(store, sweep_id, 0, 1)
    assert ledger.commit(first) is True
    assert ledger.commit(first) is False  # a retried task, a late worker
    assert count(store, "SELECT count(*) FROM runs") == 1
    assert count(store, "SELECT count(*) FROM kpis") == len(first.result.kpis)
    run = store.query("SELECT sweep_id, level, replication, status, seed FROM runs").iloc[0]
    assert (run.sweep_id, run.level, run.replication, run.status) == (sweep_id, 0, 1, "completed")
    assert run.seed == replication_seed(7, 1)
    stored = committed_kpis(store, sweep_id)[(0, 1)]
    assert stored.keys() == first.result.kpis.keys()
    assert all(
        stored[k] == v or (math.isnan(v) and math.isnan(stored[k]))
        for k, v in first.result.kpis.items()
    )


@pytest.mark.parametrize("record, events", [("metrics", False), ("events", True)])
def test_record_levels_keep_metrics_then_events(store: Store, record: str, events: bool) -> None:
    sweep_id = small_sweep(store, record)
    ledger = SweepLedger(store, load_sweep(store, sweep_id))
    done = outcome(store, sweep_id, 0, 0, record)
    ledger.commit(done)
    assert count(store, "SELECT count(*) FROM metric_series") == len(done.series) > 0
    assert count(store, "SELECT count(*) FROM events") == len(done.events)
    assert (len(done.events) > 0) == events


def test_views_give_the_sweeps_own_intervals_and_paired_differences(store: Store) -> None:
    sweep_id = small_sweep(store, factors=("repair.crews=1,3",))
    results = run_stored(store, sweep_id, InProcess())
    assert load_sweep(store, sweep_id).status == "completed"
    rows = store.query(
        "SELECT level, n, mean, sd, half_width, scenario_hash, overrides FROM v_sweep_kpis "
        "WHERE sweep_id = :s AND kpi = 'failures.cores' ORDER BY level", {"s": sweep_id}
    )
    for row in rows.itertuples():
        own = results.summary(int(row.level), "failures.cores")
        assert row.n == own.n == 3
        assert row.mean == pytest.approx(own.mean, rel=1e-12)
        assert row.sd == pytest.approx(own.sd, rel=1e-9)
        assert row.half_width == pytest.approx(own.half_width, rel=1e-9)  # t(0.975, 2) = 4.303
    assert rows["scenario_hash"].nunique() == 2
    assert '"repair.crews=3"' in rows["overrides"].iloc[1]
    diff = store.query(
        "SELECT level_a, level_b, n, mean_difference, half_width FROM v_sweep_differences "
        "WHERE sweep_id = :s AND kpi = 'repair.crew_utilization'", {"s": sweep_id}
    ).iloc[0]
    mine = results.comparisons("repair.crew_utilization")[0].summary
    assert (diff.level_a, diff.level_b, diff.n) == (0, 1, 3)
    assert diff.mean_difference == pytest.approx(mine.mean, rel=1e-9)
    assert diff.half_width == pytest.approx(mine.half_width, rel=1e-9)


def test_events_have_their_row_and_rack(store: Store) -> None:
    sweep_id = small_sweep(store, "events")
    SweepLedger(store, load_sweep(store, sweep_id)).commit(outcome(store, sweep_id, 0, 0, "events"))
    rows = store.query("SELECT scope, row_scope, rack_scope FROM v_events")
    assert len(rows) > 0
    for row in rows.itertuples():
        parts = row.scope.split(".")
        if len(parts) >= 3 and parts[1].startswith("row") and parts[2].startswith("rack"):
            assert (row.row_scope, row.rack_scope) == (".".join(parts[:2]), ".".join(parts[:3]))
        else:
            assert row.rack_scope is None
    worst = store.query(
        "SELECT rack_scope, count(*) AS n FROM v_events WHERE rack_scope IS NOT NULL "
        "GROUP BY rack_scope ORDER BY n DESC, rack_scope"
    )
    assert worst["n"].sum() == rows["rack_scope"].notna().sum()


def test_sample_deviation_and_split_part_agree_on_both_backends(store: Store) -> None:
    got = store.query(
        "SELECT STDDEV_SAMP(x) AS sd, VAR_SAMP(x) AS var, STDDEV_POP(x) AS sdp, "
        "SPLIT_PART('hall.row2.rack7', '.', 3) AS third, SPLIT_PART('a.b', '.', 5) AS none "
        "FROM (SELECT 2.0 AS x UNION ALL SELECT 4.0 UNION ALL SELECT 9.0 UNION ALL "
        "SELECT NULL) v"
    ).iloc[0]
    values = [2.0, 4.0, 9.0]
    assert got.sd == pytest.approx(summarize(values).sd, rel=1e-12)
    assert got["var"] == pytest.approx(summarize(values).sd ** 2, rel=1e-12)
    assert got.sdp == pytest.approx(math.sqrt(sum((v - 5) ** 2 for v in values) / 3), rel=1e-12)
    assert (got.third, got["none"]) == ("rack7", "")
    single = store.query("SELECT STDDEV_SAMP(x) AS sd FROM (SELECT 1.0 AS x) v").iloc[0]
    assert single.sd is None or math.isnan(single.sd)


# -- killed and resumed ------------------------------------------------------------------

REPLICATIONS = 40


def _spawn_sweep(url: str, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TWIN_DB", None)
    return subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "sweep", *args,
         "--workers", "1", "--db", url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def test_a_night_run_late_is_compared_with_the_nights_before_it(store: Store) -> None:
    # nights run in the order 11-29, 11-30, then 11-28 (--night in the past): by id, the
    # 11-28 sweep was compared with 11-30's, a later night
    levels = factorial(SMALL, ["run.until=2d"], [])
    settings = {"replications": 2, "max_replications": 2, "targets": []}
    ids = {}
    for night in (date(2026, 11, 29), date(2026, 11, 30), date(2026, 11, 28)):
        ids[night] = new_sweep(store, levels, seed=3, settings=settings, label="hall",
                               night=night)  # fmt: skip
        run_stored(store, ids[night], InProcess())
    assert previous_night(store, "hall", date(2026, 11, 28)) is None
    assert previous_night(store, "hall", date(2026, 11, 30)) == ids[date(2026, 11, 29)]
    assert previous_night(store, "hall", date(2026, 12, 1)) == ids[date(2026, 11, 30)]
    rows = store.query(
        "SELECT sweep_id, previous_sweep_id FROM v_nightly_changes WHERE kpi = 'availability'"
    )
    previous = {int(r.sweep_id): r.previous_sweep_id for r in rows.itertuples()}
    assert pd.isna(previous[ids[date(2026, 11, 28)]])
    assert previous[ids[date(2026, 11, 29)]] == ids[date(2026, 11, 28)]  # now one before
    assert previous[ids[date(2026, 11, 30)]] == ids[date(2026, 11, 29)]


def _committed(url: str) -> int:
    engine = sa.create_engine(storage.urls.normalize_url(url))
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("runs"):
                return 0
            return int(conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one())
    except sa.exc.OperationalError:
        return 0
    finally:
        engine.dispose()


def _kill_after(proc: subprocess.Popen[str], url: str, runs: int) -> None:
    deadline = time.monotonic() + 120
    while _committed(url) < runs:
        assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_sweep_killed_twice_is_resumed_without_loss_or_double_count(
    store_url: str, procs: list[subprocess.Popen[str]]
) -> None:
    first = _spawn_sweep(store_url, str(SMALL), "--set", "run.until=365d",
                         "-n", str(REPLICATIONS), "--seed", "9")  # fmt: skip
    procs.append(first)
    _kill_after(first, store_url, 4)
    with open_store(store_url) as store:
        before = committed_kpis(store, 1)
        assert 4 <= len(before) < REPLICATIONS, "the sweep ended before it was killed"
        assert load_sweep(store, 1).status == "running"  # killed: no word from it
    again = _spawn_sweep(store_url, "--resume", "1")
    procs.append(again)
    _kill_after(again, store_url, len(before) + 3)
    result = CliRunner().invoke(
        cli, ["sweep", "--resume", "1", "--workers", "1", "--db", store_url, "--json"]
    )
    assert result.exit_code == 0, result.output
    with open_store(store_url) as store:
        after = committed_kpis(store, 1)
        assert sorted(after) == [(0, i) for i in range(REPLICATIONS)]  # none lost
        runs = store.query("SELECT replication, seed FROM runs WHERE sweep_id = 1")
        assert len(runs) == REPLICATIONS and runs["replication"].is_unique  # none twice
        assert load_sweep(store, 1).status == "completed"
        # what was committed before the kills is untouched, and every replication
        # is the one its seed makes
        for key, kpis in before.items():
            assert after[key]["failures.cores"] == kpis["failures.cores"]
        for i in (0, REPLICATIONS - 1):
            task_kpis = outcome(store, 1, 0, i).result.kpis
            assert after[(0, i)]["availability"] == task_kpis["availability"]


def _marked(marker: str) -> list[int]:
    """Processes whose environment holds `marker` (the sweep's pool, its fork server)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if marker.encode() in environ and state != "Z":
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_a_killed_sweep_leaves_no_worker_behind(
    tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    # a pool worker's parent is the fork server: with `twin sweep` SIGKILLed, the workers
    # waited for tasks forever (and kept the fork server alive)
    url = str(tmp_path / "store.db")
    marker = f"TWIN_TEST_SWEEP_MARK=killed-{os.getpid()}-{time.monotonic_ns()}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), **dict([marker.split("=")]))
    sweep = subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "sweep", str(SMALL),
         "--set", "run.until=365d", "-n", "200", "--workers", "2", "--db", url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    procs.append(sweep)
    _kill_after(sweep, url, 2)
    assert _marked(marker), "the pool was not running when its sweep was killed"
    deadline = time.monotonic() + 15  # workers look every second; a task may be under way
    while _marked(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _marked(marker)
    for pid in left:  # leave nothing behind, even when the check fails
        os.kill(pid, signal.SIGKILL)
    assert not left


def test_a_sweep_runs_its_own_horizon_when_its_scenario_is_stored_with_another(
    store: Store,
) -> None:
    # the store keeps one document per scenario hash, which leaves the horizon out: a
    # sweep (twin sweep/compare --until) of a scenario stored before with another
    # horizon must still run its own, per level
    new_sweep(store, factorial(SMALL, ["run.until=20d"], []), seed=7, settings=SETTINGS)
    levels = factorial(SMALL, [], [parse_factor("run.until=2d,3d")])
    assert len({level.scenario.digest() for level in levels}) == 1
    sweep_id = new_sweep(store, levels, seed=7, settings=SETTINGS)
    plan = plan_of(load_sweep(store, sweep_id))
    assert [level.scenario.run.until for level in plan.levels] == [48.0, 72.0]
    results = run_stored(store, sweep_id, InProcess())
    assert sorted(set(store.query("SELECT until_h FROM runs").until_h)) == [48.0, 72.0]
    assert [level.scenario.run.until for level in results.levels] == [48.0, 72.0]
