"""The training job: recovery paths, time lost by cause, and Daly's wall time."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from twinkit import down, exponential_job, quiet_scenario, scripted, training_scenario, up

from twin import load_scenario
from twin.engine import simulate
from twin.errors import ScenarioError
from twin.scenario import Scenario
from twin.workloads.training import daly_interval, young_interval


def _script(scenario: Scenario, steps: list[tuple[float, int, bool]], until: float) -> Any:
    """Run `scenario`'s job with systems taken down (False) and brought back (True) at
    the given times; return the job."""
    return scripted(scenario, [(t, up(s) if back else down(s)) for t, s, back in steps],
                    until).training


def test_standby_host_selection_and_waiting_each_book_their_time() -> None:
    scenario = training_scenario(
        2, 4, standbys=1, work="10 h", checkpoint_interval="4 h", checkpoint_cost="1 h",
        restart_cost="30 min", host_selection="15 min",
    )
    job = _script(scenario, [
        (3, 0, False),  # system 2 (the standby) swaps in at once
        (5, 1, False),  # no standby: host selection picks system 3 of the pool
        (6, 0, True),  # back: refills the standbys
        (7, 2, False),  # system 0 swaps in
        (8, 3, False),  # nothing healthy left: wait
        (9, 1, True),  # the repaired system joins the gang at once
    ], until=100)
    k = job.kpis(100.0)
    assert k["training.wall_h"] == pytest.approx(22.5)
    assert k["training.lost_h.rework"] == pytest.approx(3 + 1.5 + 1.25 + 0.5)
    assert k["training.lost_h.checkpoint"] == pytest.approx(3.0)
    assert k["training.lost_h.restart"] == pytest.approx(4 * 0.5)
    assert k["training.lost_h.host_selection"] == pytest.approx(0.25)
    assert k["training.lost_h.waiting"] == pytest.approx(1.0)
    assert k["training.interruptions"] == 4
    assert k["training.standbys_used"] == 2
    assert k["training.goodput"] == pytest.approx(10 / 22.5)
    assert k["training.done_fraction"] == 1.0


def test_a_failure_during_a_checkpoint_write_loses_the_segment_and_the_write() -> None:
    scenario = training_scenario(1, 2, standbys=1, work="4 h", checkpoint_interval="2 h",
                    checkpoint_cost="1 h")
    job = _script(scenario, [(2.5, 0, False)], until=100)
    k = job.kpis(100.0)
    assert k["training.wall_h"] == pytest.approx(8.5)
    assert k["training.lost_h.rework"] == pytest.approx(2.0)
    assert k["training.lost_h.checkpoint"] == pytest.approx(0.5 + 1 + 1)


def test_an_unfinished_job_reports_its_committed_fraction() -> None:
    scenario = training_scenario(1, 1, work="10 h", checkpoint_interval="3 h")
    job = _script(scenario, [(4.0, 0, False)], until=20)
    k = job.kpis(20.0)
    assert math.isnan(k["training.wall_h"])
    assert k["training.done_fraction"] == pytest.approx(0.3)  # one checkpoint, then no system
    # the wait open at the horizon is time lost too: saved 3 + rework 1 + waiting 16 = 20
    assert k["training.lost_h.waiting"] == pytest.approx(16.0)
    assert k["training.lost_h.rework"] == pytest.approx(1.0)
    assert k["training.goodput"] == pytest.approx(3 / 20)
    assert job.kpis(20.0) == k  # reading the KPIs changes nothing


def test_a_scenario_without_training_has_no_training_key_or_kpi() -> None:
    scenario = quiet_scenario()
    assert "training" not in scenario.document()
    assert not any(name.startswith("training.") for name in simulate(scenario).kpis)


SHIPPED = Path(__file__).resolve().parents[2] / "scenarios" / "training.toml"


def test_training_needs_the_systems_it_asks_for() -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(SHIPPED, ["training.systems=1020"])
    assert caught.value.key == "training.systems"
    assert "1,020 + 4" in str(caught.value)


def test_training_and_serving_are_not_one_hall() -> None:
    serving = SHIPPED.parent / "serving.toml"
    with pytest.raises(ScenarioError) as caught:
        load_scenario(serving, ["training.systems=8", 'training.work="1 h"',
                                'training.checkpoint_interval="1 h"'])
    assert caught.value.key == "training"


def test_young_and_daly_intervals() -> None:
    assert young_interval(0.5, 100.0) == pytest.approx(10.0)
    # Daly's correction is small and negative for delta << M, M itself for delta >= 2M
    assert 9.0 < daly_interval(0.5, 100.0) < 10.0
    assert daly_interval(300.0, 100.0) == 100.0


def _daly_wall(m: float, restart: float, tau: float, delta: float, solve: float) -> float:
    """Daly (2006): expected wall time of `solve` hours of work under exponential
    interruptions of mean `m`, checkpoint every `tau` of compute at cost `delta`."""
    return m * math.exp(restart / m) * (math.exp((tau + delta) / m) - 1.0) * solve / tau


def _daly_check(replications: int) -> None:
    """8 systems, each down at exponential times of mean 80 h (M = 10 h for the job),
    repaired at once, a standby always there: the mean wall time over `replications`
    lies within 4 standard errors of Daly's expected wall time, 150.3 h (a false alarm
    ~1e-4); dropping the rollback of failures during restarts (e^{R/M} = 1.22: 27 h)
    would move it by ~20 standard errors at 100 replications (1 SE ~ 1.3 h)."""
    k, mtbf = 8, 80.0
    tau, delta, restart, solve = 2.0, 0.2, 2.0, 100.0
    scenario = exponential_job(
        k, mtbf, "5000 h", work=f"{solve} h", checkpoint_interval=f"{tau} h",
        checkpoint_cost=f"{delta} h", restart_cost=f"{restart} h",
    )
    walls = np.array([simulate(scenario, seed=seed).kpis["training.wall_h"]
                      for seed in range(replications)])
    expected = _daly_wall(mtbf / k, restart, tau, delta, solve)
    se = walls.std(ddof=1) / math.sqrt(len(walls))
    assert abs(walls.mean() - expected) < 4 * se, (walls.mean(), expected, se)


def test_wall_time_matches_dalys_formula_for_exponential_failures() -> None:
    _daly_check(100)


@pytest.mark.slow
def test_wall_time_matches_dalys_formula_over_many_replications() -> None:
    _daly_check(1000)  # 1 SE ~ 0.4 h: 4 SE is 1 % of the wall time


def test_every_training_kpi_has_a_row_in_the_kpi_table() -> None:
    table = (SHIPPED.parents[1] / "docs" / "kpis.md").read_text()
    kpis = simulate(training_scenario(1, 1, work="1 h", checkpoint_interval="1 h"), until=2.0).kpis
    names = [name for name in kpis if name.startswith("training.")]
    by_cause = "training.interrupted_by."
    # every cause a hall can have, zeros included
    assert {n.removeprefix(by_cause) for n in names if n.startswith(by_cause)} == {
        "psu", "pump", "fan", "wafer", "cores", "thermal"}
    for name in names:
        row = f"{by_cause}<cause>" if name.startswith(by_cause) else name
        assert f"| `{row}` |" in table, name
