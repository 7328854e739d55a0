"""The training job's recovery policies one by one (standbys, host selection, the
preemptible pool, waiting), continuous checkpointing, throttling, interruptions
by cause and the `on_active` hook, each against a closed form on a small hall
with scripted outages."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from twinkit import (
    NEVER,
    Step,
    cap,
    down,
    exponential_job,
    quiet_scenario,
    scripted,
    training_scenario,
    up,
)

from twin.engine import Model, build, simulate
from twin.errors import ScenarioError
from twin.scenario import Scenario, TrainingSpec, parse_scenario
from twin.workloads.training import SOURCES, TrainingJob
from twin.workloads.training.speed import Slowest

Kpis = dict[str, float]
LONG = 1000.0


def _kpis(model: Model, until: float = LONG) -> Kpis:
    assert model.training is not None
    return model.training.kpis(until)


def _identity(k: Kpis, work: float) -> None:
    """A finished job's wall time is its work plus every `lost_h`."""
    lost = sum(v for name, v in k.items() if name.startswith("training.lost_h."))
    assert k["training.wall_h"] == pytest.approx(work + lost, rel=1e-12)


def _member(model: Model) -> int:
    """The lowest-numbered system of the gang now."""
    assert model.training is not None
    return min(model.training.gang)


def down_member(cause: str = "test") -> Step:
    """Take down the gang's lowest-numbered system (whichever a pool handed over)."""
    return lambda model: down(_member(model), cause)(model)


# -- standbys, then host selection, then waiting -------------------------------------------

def test_once_the_standbys_are_used_each_failure_costs_a_host_selection() -> None:
    # 2 in the gang, 1 standby, 3 idle: the 1st failure takes the standby, the next 3
    # a host selection each, the 5th finds nothing and waits 10 h for a repair
    scenario = training_scenario(
        2, 6, standbys=1, work="100 h", checkpoint_interval="1 h",
        restart_cost="30 min", host_selection="15 min",
    )
    steps = [(t, down_member()) for t in (10.25, 20.25, 30.25, 40.25, 50.25)]
    model = scripted(scenario, [*steps, (60.25, up(0))], LONG)
    k = _kpis(model)
    assert k["training.swaps.standby"] == k["training.standbys_used"] == 1
    assert k["training.swaps.pool"] == 3
    assert k["training.lost_h.host_selection"] == pytest.approx(3 * 0.25)
    assert k["training.lost_h.waiting"] == pytest.approx(10.0)
    assert k["training.swaps.repair"] == 1
    assert k["training.lost_h.restart"] == pytest.approx(5 * 0.5)
    assert k["training.interruptions"] == 5
    _identity(k, 100.0)


def test_a_job_with_no_system_anywhere_waits_exactly_the_repair_time() -> None:
    scenario = training_scenario(1, 1, work="10 h", checkpoint_interval="10 h")
    k = _kpis(scripted(scenario, [(4.0, down(0)), (7.0, up(0))], LONG))
    assert k["training.lost_h.waiting"] == 3.0
    assert k["training.lost_h.rework"] == 4.0
    assert k["training.wall_h"] == 17.0
    assert k["training.swaps.repair"] == 1


# -- the preemptible pool --------------------------------------------------------------------

def _preemptible(reclaimed: str) -> Scenario:
    """Gang {0, 1}, preemptible {2, 3}, idle {4}; a reclaim costs 30 min and 3 h of
    preemptible work."""
    return training_scenario(
        2, 5, work="100 h", checkpoint_interval="1 h", host_selection="15 min",
        preemptible={"systems": 2, "reclaim_time": "30 min", "work_lost": "3 h",
                     "reclaimed": reclaimed},
    )


# 0 fails: the idle system after a host selection; 1 and 4 fail: a reclaim each (the
# pool is empty); 2 fails: nothing left, wait until 0 is back (5 h); then 1 and 2 are
# repaired, with the job no longer needing them
PREEMPTIBLE_STEPS = [
    (10.5, down(0)), (20.5, down(1)), (30.5, down(4)), (40.5, down(2)),
    (45.5, up(0)), (50.5, up(1)), (60.5, up(2)),
]


def test_reclaims_cost_their_time_and_the_preemptible_work_they_kill() -> None:
    k = _kpis(scripted(_preemptible("returned"), PREEMPTIBLE_STEPS, LONG))
    assert k["training.swaps.pool"] == 1
    assert k["training.swaps.preemptible"] == k["training.reclaimed"] == 2
    assert k["training.lost_h.host_selection"] == 0.25
    assert k["training.lost_h.reclaim"] == 2 * 0.5
    assert k["training.preemptible.work_lost_h"] == 2 * 3.0
    assert k["training.lost_h.waiting"] == 5.0
    assert k["training.swaps.repair"] == 1
    _identity(k, 100.0)


def test_returned_machines_go_back_once_a_repaired_one_can_take_their_place() -> None:
    model = scripted(_preemptible("returned"), PREEMPTIBLE_STEPS, LONG)
    k = _kpis(model)
    # held: one from 20.5, two from 30.5; 1 back at 50.5 repays one loan, 2 at 60.5
    # (a loaned machine: it goes home) the other
    assert k["training.preemptible.taken_h"] == pytest.approx(10 + 2 * 20 + 10)
    assert model.training is not None
    assert model.training.preemptible.running == {1, 2}  # the pool is whole again


def test_kept_machines_stay_with_the_working_side() -> None:
    model = scripted(_preemptible("kept"), PREEMPTIBLE_STEPS, LONG)
    k = _kpis(model)
    assert k["training.reclaimed"] == 2
    assert k["training.preemptible.taken_h"] == pytest.approx(10 + 2 * (LONG - 30.5))
    assert model.training is not None
    assert model.training.preemptible.running == set()
    assert {1, 2} <= model.training.pool.idle  # repaired: idle working systems


@pytest.mark.parametrize(("reclaimed", "taken_h"), [("returned", 14.5 - 4.0),
                                                    ("kept", LONG - 4.0)])
def test_at_the_end_of_the_job_a_loaned_machine_goes_back(reclaimed: str,
                                                        taken_h: float) -> None:
    scenario = training_scenario(
        1, 2, work="10 h", checkpoint_interval="10 h",
        preemptible={"systems": 1, "reclaim_time": "30 min", "reclaimed": reclaimed},
    )
    model = scripted(scenario, [(4.0, down(0))], LONG)
    k = _kpis(model)
    assert k["training.wall_h"] == 4.0 + 0.5 + 10.0
    assert k["training.preemptible.taken_h"] == pytest.approx(taken_h)
    assert model.training is not None
    assert model.training.preemptible.running == ({1} if reclaimed == "returned" else set())


def test_a_repaired_preemptible_machine_goes_home_and_a_waiting_job_reclaims_it() -> None:
    scenario = training_scenario(
        1, 2, work="10 h", checkpoint_interval="10 h",
        preemptible={"systems": 1, "reclaim_time": "30 min", "work_lost": "1 h"},
    )
    # 1 (preemptible) fails on its own: no interruption; 0 fails: nothing anywhere
    k = _kpis(scripted(scenario, [(2.0, down(1)), (4.0, down(0)), (6.0, up(1))], LONG))
    assert k["training.interruptions"] == 1
    assert k["training.lost_h.waiting"] == 2.0
    assert k["training.reclaimed"] == k["training.swaps.preemptible"] == 1
    assert k["training.swaps.repair"] == 0
    assert k["training.wall_h"] == 6.0 + 0.5 + 10.0


# -- continuous checkpointing ----------------------------------------------------------------

def test_continuous_checkpointing_loses_no_work_and_a_recovery_per_failure() -> None:
    scenario = training_scenario(1, 2, standbys=1, work="10 h", checkpointing="continuous",
                                 restart_cost="30 min")
    # three failures, the third 0.2 h into the second one's recovery (which starts over)
    steps = [(2.0, down(0)), (2.1, up(0)), (5.0, down(1)), (5.1, up(1)), (5.2, down(0))]
    k = _kpis(scripted(scenario, steps, LONG))
    assert k["training.interruptions"] == 3
    assert k["training.lost_h.rework"] == 0.0 and k["training.lost_h.checkpoint"] == 0.0
    assert k["training.lost_h.restart"] == pytest.approx(0.5 + 0.2 + 0.5)
    assert k["training.wall_h"] == pytest.approx(10.0 + 0.5 + 0.2 + 0.5)
    assert math.isnan(k["training.checkpoint_interval_h"])
    assert math.isnan(k["training.young_interval_h"])


def test_an_unfinished_continuous_job_has_saved_what_it_computed() -> None:
    scenario = training_scenario(1, 1, work="10 h", checkpointing="continuous")
    model = scripted(scenario, [(3.0, down(0)), (5.0, up(0))], 8.0)
    assert _kpis(model, 8.0)["training.done_fraction"] == pytest.approx((3 + 3) / 10)


@pytest.mark.parametrize(("until", "phase", "unsaved"), [
    (4.5, "compute", 2.0 + 2.5 * 0.5),  # 2 h at full speed, 2.5 h at half (1.25 h slow)
    (10.0, "checkpoint", 8.0),  # the first segment done at 9.5 h, its write half done
    (20.0, "restart", 0.0),  # down at 12 h, back at 19 h: 7 h waiting, 1 h of restart
])
def test_an_unfinished_job_books_the_phase_open_at_the_horizon(
    until: float, phase: str, unsaved: float,
) -> None:
    """Saved work + every `lost_h` + the work computed since the last save (not yet
    lost, not yet saved) is the horizon, whatever phase the horizon cuts."""
    scenario = training_scenario(1, 1, work="20 h", checkpoint_interval="8 h",
                                 checkpoint_cost="1 h", restart_cost="2 h")
    steps = [(2.0, cap(0, 0.5)), (5.0, cap(0, 1.0)), (9.0, cap(0, 0.5)),
             (9.0, cap(0, 1.0)), (12.0, down(0)), (19.0, up(0))]
    steps = [(t, step) for t, step in steps if t < until]
    model = scripted(scenario, steps, until)
    assert model.training is not None and model.training.phase == phase
    k = _kpis(model, until)
    lost = sum(v for name, v in k.items() if name.startswith("training.lost_h."))
    assert k["training.done_fraction"] * 20.0 + lost + unsaved == pytest.approx(until)


def _continuous_check(replications: int) -> None:
    """8 systems, each down at exponential times of mean 80 h (M = 10 h for the job),
    a standby always there, recovery R = 2 h started over by a failure during it:
    the wall time of W = 100 h of work has mean W e^{R/M} = 122.1 h (every failure
    costs a recovery of mean (e^{R/M} - 1) M, and W/M failures strike the compute).
    The mean over `replications` lies within 4 standard errors of it (measured:
    122.2 h over 1,000, SE 0.23 h); booking a plain R per failure (W + W R/M =
    120 h) would be ~3 SE away at 100 replications, ~9 at 1,000."""
    k, mtbf, restart, work = 8, 80.0, 2.0, 100.0
    scenario = exponential_job(k, mtbf, "400 h", work=f"{work} h", checkpointing="continuous",
                               restart_cost=f"{restart} h")
    runs = [simulate(scenario, seed=seed).kpis for seed in range(replications)]
    walls = np.array([r["training.wall_h"] for r in runs])
    expected = work * math.exp(restart * k / mtbf)
    se = walls.std(ddof=1) / math.sqrt(len(walls))
    assert abs(walls.mean() - expected) < 4 * se, (walls.mean(), expected, se)
    assert all(r["training.interrupted_by.psu"] == r["training.interruptions"] for r in runs)


def test_continuous_wall_time_matches_its_closed_form_for_exponential_failures() -> None:
    _continuous_check(100)


@pytest.mark.slow
def test_continuous_wall_time_matches_its_closed_form_over_many_replications() -> None:
    _continuous_check(1000)


# -- throttling --------------------------------------------------------------------------------

def test_the_gang_computes_at_the_speed_of_its_slowest_member() -> None:
    scenario = training_scenario(2, 2, work="10 h", checkpoint_interval="10 h")
    # speed 1 to 2 h, 0.5 to 4 h, 0.25 to 6 h, 0.5 to 8 h, then 1: 4.5 h of work by
    # 8 h, the last 5.5 h at full speed
    steps = [(2.0, cap(0, 0.5)), (4.0, cap(1, 0.25)), (6.0, cap(1, 1.0)), (8.0, cap(0, 1.0))]
    k = _kpis(scripted(scenario, steps, LONG))
    assert k["training.wall_h"] == pytest.approx(13.5, rel=1e-12)
    assert k["training.lost_h.throttled"] == pytest.approx(0 + 1 + 1.5 + 1, rel=1e-12)
    _identity(k, 10.0)


def test_a_failure_while_throttled_loses_the_work_done_and_books_the_slow_time() -> None:
    scenario = training_scenario(1, 2, standbys=1, work="10 h", checkpoint_interval="10 h")
    k = _kpis(scripted(scenario, [(1.0, cap(0, 0.5)), (3.0, down(0))], LONG))
    assert k["training.lost_h.rework"] == pytest.approx(1 + 2 * 0.5)  # work, not wall
    assert k["training.lost_h.throttled"] == pytest.approx(2 * 0.5)
    assert k["training.wall_h"] == pytest.approx(13.0)  # the standby is at full speed
    _identity(k, 10.0)


def test_a_facility_power_cap_stretches_the_compute_by_its_inverse() -> None:
    # uniform cap at 80 %: 10 h of work take 12.5 h, plus two 30-min checkpoints
    scenario = quiet_scenario(
        hall={"systems_per_rack": 6},
        facility={
            "power": {"utility": {"outage_interval": "1e9 h"}, "pdu": {"failure": NEVER}},
            "cooling": {"chillers": {"failure": NEVER}, "cdu": {"failure": NEVER}},
            "cap": {"budget": f"{0.8 * 6 * 23.0} kW", "policy": "uniform"},
        },
        training={"systems": 6, "work": "10 h", "checkpoint_interval": "5 h",
                  "checkpoint_cost": "30 min"},
    )
    k = simulate(scenario, until=50.0).kpis
    assert k["training.wall_h"] == pytest.approx(10 / 0.8 + 2 * 0.5, rel=1e-12)
    assert k["training.lost_h.throttled"] == pytest.approx(10 / 0.8 - 10, rel=1e-12)


def test_the_slowest_member_is_the_minimum_through_any_sequence_of_changes() -> None:
    rng = random.Random(5)
    slowest, members = Slowest(), []
    levels = [0.25, 0.5, 0.5, 0.75, 0.9, 1.0]
    for _ in range(5000):
        if members and rng.random() < 0.5:
            slowest.remove(members.pop(rng.randrange(len(members))))
        else:
            members.append(rng.choice(levels) if rng.random() < 0.8 else rng.random())
            slowest.add(members[-1])
        assert slowest.lowest() == min([1.0, *members])
    assert len(slowest._heap) <= 2 * len(slowest._count) + 17  # stale levels are dropped


# -- interruptions by cause, and the on_active hook ---------------------------------------------

def test_interruptions_are_counted_by_the_fleet_cause_of_the_outage() -> None:
    scenario = training_scenario(2, 4, standbys=2, work="100 h", checkpoint_interval="1 h")
    steps = [(1.5, down(0, "psu")), (2.5, down(2, "fan")),  # 2 is a standby: no interruption
             (3.5, down_member("wafer")), (4.5, down_member("psu"))]
    model = scripted(scenario, steps, 200.0)
    assert model.training is not None
    k = model.training.kpis(200.0, ["psu", "pump", "fan", "wafer", "cores", "thermal"])
    assert k["training.interruptions"] == 3
    assert {name.removeprefix("training.interrupted_by."): v for name, v in k.items()
            if name.startswith("training.interrupted_by.")} == {
        "psu": 2, "pump": 0, "fan": 0, "wafer": 1, "cores": 0, "thermal": 0}


def test_on_active_tells_who_joins_and_leaves_the_gang() -> None:
    base = quiet_scenario(hall={"systems_per_rack": 3})
    model = build(base, seed=1)
    spec = TrainingSpec(systems=2, standbys=1, work="10 h", checkpoint_interval="10 h")
    job = TrainingJob(model.env, spec, model.fleet)
    calls: list[tuple[float, int, bool]] = []
    job.on_active.append(lambda s, joined: calls.append((model.env.now, s, joined)))
    job.start()
    model.env.timeout(4.0).callbacks.append(lambda _: down(0)(model))
    model.env.run(until=50.0)
    # 0 and 1 join at 0; 0 fails at 4 and the standby 2 takes its place; the job ends
    # at 14 (4 h of rework) and lets both go
    assert calls == [(0.0, 0, True), (0.0, 1, True), (4.0, 0, False), (4.0, 2, True),
                     (14.0, 1, False), (14.0, 2, False)]
    assert job.gang == {}


# -- the scenario keys ---------------------------------------------------------------------------

def test_periodic_checkpointing_needs_an_interval_and_continuous_does_not() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario({"training": {"systems": 1, "work": "1 h"}}, source="t.toml")
    assert caught.value.key == "training.checkpoint_interval"
    continuous = {"systems": 1, "work": "1 h", "checkpointing": "continuous"}
    assert parse_scenario({"training": continuous}, source="t.toml").training is not None


def test_the_preemptible_pool_must_fit_in_the_hall_beside_the_job() -> None:
    training = {"systems": 1000, "standbys": 10, "work": "1 h", "checkpoint_interval": "1 h",
                "preemptible": {"systems": 11}}
    with pytest.raises(ScenarioError) as caught:
        parse_scenario({"training": training}, source="t.toml")
    assert caught.value.key == "training.systems"
    assert "1,000 + 10 + 11" in str(caught.value)
    training["preemptible"] = {"systems": 10, "reclaimed": "lent"}
    with pytest.raises(ScenarioError) as caught:
        parse_scenario({"training": training}, source="t.toml")
    assert caught.value.key == "training.preemptible.reclaimed"


def test_the_new_keys_at_their_defaults_leave_the_document_as_it_was() -> None:
    job = {"systems": 1, "work": "1 h", "checkpoint_interval": "1 h"}
    document = parse_scenario({"training": job}, source="t.toml").document()["training"]
    assert "checkpointing" not in document and "preemptible" not in document
    pool = {"systems": 2, "reclaim_time": "10 min"}
    with_pool = parse_scenario({"training": {**job, "preemptible": pool}}, source="t.toml")
    assert with_pool.document()["training"]["preemptible"]["reclaimed"] == "returned"
    assert with_pool.digest() != parse_scenario({"training": job}, source="t.toml").digest()


# -- every policy at once, under random outages ---------------------------------------------------

def _holders(job: TrainingJob) -> list[set[int]]:
    return [set(job.gang), set(job.standbys.held), job.pool.idle, job.preemptible.running]


@pytest.mark.parametrize("reclaimed", ["returned", "kept"])
def test_random_outages_keep_every_system_in_one_place_and_the_wall_time_whole(
    reclaimed: str,
) -> None:
    """Random outages, repairs and caps on 8 systems (a gang of 3, a standby, 2
    preemptible): at every step a healthy system is held by exactly one policy or the
    gang, the gang and its empty slots make K, `on_active` agrees with the gang, and
    the finished job's wall time is its work plus its lost time."""
    scenario = training_scenario(
        3, 8, standbys=1, work="40 h", checkpoint_interval="1 h", checkpoint_cost="5 min",
        restart_cost="20 min", host_selection="15 min",
        preemptible={"systems": 2, "reclaim_time": "30 min", "work_lost": "2 h",
                     "reclaimed": reclaimed},
    )
    rng = random.Random(7)
    model = build(scenario, seed=1)
    assert model.training is not None
    active = set(model.training.gang)  # formed in `build`, before the hook below
    model.training.on_active.append(
        lambda s, joined: active.add(s) if joined else active.discard(s))
    checks = 0

    def check(model: Model) -> None:
        nonlocal checks
        job = model.training
        assert job is not None
        if job.phase == "done":
            return
        held = _holders(job)
        healthy = {s for s in range(8) if job.up[s]}
        assert sorted(s for h in held for s in h) == sorted(healthy)
        assert len(job.gang) + job.vacant == 3
        assert active == set(job.gang)
        checks += 1

    def toggle(s: int) -> Step:
        def step(model: Model) -> None:
            check(model)
            (up if model.fleet.reasons[s] else down)(s)(model)
        return step

    steps: list[tuple[float, Step]] = []
    for i in range(300):
        t = 0.37 * (i + 1)
        s = rng.randrange(8)
        if rng.random() < 0.2:
            steps.append((t, cap(s, rng.choice([0.5, 0.8, 1.0]))))
        else:
            steps.append((t, toggle(s)))
    steps += [(120.0, step) for s in range(8) for step in (up(s), cap(s, 1.0))]  # all well
    for t, step in steps:
        model.env.timeout(t).callbacks.append(lambda _, step=step: step(model))
    model.env.run(until=400.0)
    k = model.training.kpis(400.0, [])
    assert checks > 100
    assert k["training.done_fraction"] == 1.0
    assert k["training.interruptions"] > 20
    assert all(k[f"training.swaps.{source}"] > 0 for source in SOURCES)  # every policy
    assert k["training.lost_h.throttled"] > 0
    assert active == set()  # the job's end released its gang
    _identity(k, 40.0)
