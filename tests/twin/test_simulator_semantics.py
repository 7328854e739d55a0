"""Semantics other simulators assume, as options, each against its closed form.

1. ``training.ageing = "while_running"``: a system's units and wafer age only
   while it works. With exponential lives a system that works a share f of
   the time fails at f x its rate; one that never works never fails; a
   fixed life is used up by working hours only (times the Arrhenius factor
   for a class with a table).
2. ``repair.crews = "unlimited"``: no fault waits for a crew, so the units of
   a k-of-n class are independent: A = sum_{i>=k} C(n,i) a^i (1-a)^(n-i)
   (sources.md, D7; that check is in test_availability.py).
3. Two stages that can each fail silently: an automated attempt escalates
   with p, holds with (1 - p)(1 - q_a), or only looks done with
   r = (1 - p) q_a, and the fault shows again after the detection delay; a
   manual repair fails silently with q_m and is redone. The attempts are
   geometric: E[automated attempts per fault] = 1 / (1 - r), P(escalated) =
   p / (1 - r), E[manual restore] = D + F + R + q_m / (1 - q_m) (delta + D + R),
   and a 1-of-1 class has the renewal-reward availability E[up] / E[cycle].
4. ``fix_bad_probability``: a replacement clears a bad position with
   probability c and a good one stays good, so with exponential lives (mean
   m, bad clock b) and escalation p each bad position is cleared at rate
   c p b / m: the bad share is f exp(-c p b t / m).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pytest
from twinkit import INSTANT, NEVER, lone_failures, merge, of, quiet_scenario, run_model

from twin.engine import Model, build, simulate
from twin.errors import ScenarioError
from twin.mechanisms.ageing import acceleration
from twin.records import Event, ListSink
from twin.scenario import Scenario, parse_scenario, scale_scenario

# a job of one system that checkpoints rarely: it only has to exist for the key
JOB = {"systems": 1, "work": "100000 h", "checkpoint_interval": "10000 h"}


def fixed(hours: float) -> dict:
    return {"dist": "deterministic", "value": f"{hours} h"}


def exponential(mean_h: float) -> dict:
    return {"dist": "exponential", "mean": f"{mean_h} h"}


# -- 1. only working systems age ---------------------------------------------------------


def working_hall(systems: int, **overrides: object) -> Scenario:
    return quiet_scenario(**merge({
        "hall": {"systems_per_rack": systems},
        "training": {**JOB, "ageing": "while_running"},
        "components": {"psu": {"repair": INSTANT}},
    }, overrides))


def build_driven(scenario: Scenario, seed: int = 1, sink: ListSink | None = None) -> Model:
    """Build a `working_hall` whose tests, not its job, say which systems work: the job's
    gang, told to `Working` by `build`, is unhooked and idled."""
    model = build(scenario, seed, sink)
    job, working = model.training, model.working
    assert job is not None and working is not None
    job.on_active.remove(working.set)
    for s in job.gang:
        working.set(s, False)
    return model


def duty(model: Model, systems: Iterable[int], share: float, period: float) -> None:
    """`systems` work the first `share` of every `period` hours (always for share 1)."""
    env, working, systems = model.env, model.working, list(systems)
    assert working is not None

    def cycle():  # type: ignore[no-untyped-def]
        while True:
            for s in systems:
                working.set(s, True)
            if share == 1.0:
                return
            yield env.timeout(share * period)
            for s in systems:
                working.set(s, False)
            yield env.timeout((1.0 - share) * period)

    if share > 0.0:
        env.process(cycle())


def run_driven(scenario: Scenario, shares: dict[float, range], until: float,
               period: float = 8.0, seed: int = 1) -> tuple[Model, list[Event]]:
    sink = ListSink()
    model = build_driven(scenario, seed, sink)
    for share, systems in shares.items():
        duty(model, systems, share, period)
    model.env.run(until=until)
    model.recorder.flush()
    return model, sink.events


def per_system(model: Model, events: list[Event], cause: str) -> list[int]:
    """Failure events of `cause` in each system (units or the system itself)."""
    index = {scope: s for s, scope in enumerate(model.fleet.scopes)}
    counts = [0] * model.fleet.n
    for e in events:
        if e.kind == "failure" and e.cause == cause:
            counts[index[e.scope.rsplit(".", 1)[0] if cause != "cores" else e.scope]] += 1
    return counts


def test_a_system_that_works_a_share_f_of_the_time_fails_at_f_times_the_rate():
    # PSUs (12 a system, mean 100 h, replaced at once) and core failures (mean 50 h):
    # Poisson in working hours. Groups of 10 systems work 0, 1/4, 1/2 and all the time.
    groups = {0.0: range(0, 10), 0.25: range(10, 20), 0.5: range(20, 30), 1.0: range(30, 40)}
    until = 2_000.0
    scenario = working_hall(
        40, components={"psu": {"failure": exponential(100)}},
        wafer={"core_failures": exponential(50)})
    model, events = run_driven(scenario, groups, until)
    psu, cores = per_system(model, events, "psu"), per_system(model, events, "cores")
    for share, systems in groups.items():
        for counts, rate in ((psu, 12 / 100), (cores, 1 / 50)):
            n = sum(counts[s] for s in systems)
            expected = len(systems) * rate * share * until
            assert abs(n - expected) <= 4 * math.sqrt(max(expected, 1.0)), (share, n, expected)
            if share < 1.0:  # and far from the rate of a system that always ages
                always = len(systems) * rate * until
                assert always - n > 8 * math.sqrt(always)
    # idle systems never fail
    assert sum(psu[s] for s in groups[0.0]) == sum(cores[s] for s in groups[0.0]) == 0


def test_a_fixed_life_is_used_up_by_working_hours_only():
    # a PSU lasts 10 working hours, a wafer 30: on 4 h of every 8 they fail at 18 h
    # (4 + 4 + 2 working hours) and 58 h (7 blocks of 4, then 2)
    scenario = working_hall(
        3, components={"psu": {"count": 1, "required": 1, "failure": fixed(10),
                                "repair": fixed(1000)}},
        wafer={"failure": fixed(30)})
    model, events = run_driven(scenario, {0.0: range(0, 1), 0.5: range(1, 2),
                                          1.0: range(2, 3)}, until=100.0)
    first = {(e.scope, e.cause): e.t for e in reversed(of(events, "failure"))}
    scopes = model.fleet.scopes
    assert first[(f"{scopes[1]}.psu1", "psu")] == pytest.approx(18.0)
    assert first[(f"{scopes[2]}.psu1", "psu")] == pytest.approx(10.0)
    assert first[(scopes[1], "wafer")] == pytest.approx(58.0)
    assert first[(scopes[2], "wafer")] == pytest.approx(30.0)
    assert not [e for e in events if e.scope.startswith(scopes[0])]


def test_a_unit_replaced_while_its_system_idles_ages_only_once_it_works_again():
    # life 10 h: fails at 10 h and is replaced at once; the system stops at 12 h
    # (2 h on the new unit) and works again from 20 h: the new unit fails at 28 h
    scenario = working_hall(1, components={"psu": {"count": 1, "required": 1,
                                                    "failure": fixed(10)}})
    sink = ListSink()
    model = build_driven(scenario, 1, sink)
    working = model.working
    assert working is not None
    for t, flag in ((0.0, True), (12.0, False), (20.0, True)):
        model.env.timeout(t).callbacks.append(lambda _e, flag=flag: working.set(0, flag))
    model.env.run(until=35.0)
    model.recorder.flush()
    assert [e.t for e in of(sink.events, "failure")] == pytest.approx([10.0, 28.0])


def test_the_arrhenius_factor_and_working_time_multiply():
    # a fan with a deterministic life of 40 virtual hours at 50 C, its system at
    # ~71.4 C (AF ~4.8) working 4 h of every 8: it fails after 40 / AF working hours
    arrhenius = {"activation_energy": 0.7, "reference_temperature": "50 C"}
    scenario = working_hall(1, components={"fan": {
        "count": 1, "required": 1, "failure": fixed(40), "repair": fixed(1000),
        "thermal_factor": 1.0, "arrhenius": arrhenius}})
    sink = ListSink()
    model = build_driven(scenario, 1, sink)
    duty(model, [0], 0.5, 8.0)
    spec = model.scenario.components["fan"].arrhenius
    assert spec is not None
    af = acceleration(model.thermal.steady(0), spec)
    assert af > 4.0
    clock = next(c for c in model.classes if c.name == "fan").clock
    assert clock is not None
    model.env.run(until=6.0)  # 4 working hours so far
    assert clock.now(0) == pytest.approx(4.0 * af, rel=1e-12)
    # the Arrhenius KPI is the factor, whether the system worked or not
    assert clock.mean_factor(6.0) == pytest.approx(af, rel=1e-12)
    model.env.run(until=40.0)
    model.recorder.flush()
    blocks, rest = divmod(40.0 / af, 4.0)  # working hours needed, ~8.3
    [fan] = [e.t for e in of(sink.events, "failure") if e.cause == "fan"]
    assert fan == pytest.approx(8.0 * blocks + rest, rel=1e-9)


def test_before_any_system_works_nothing_ages_and_always_is_the_default():
    scenario = working_hall(4, components={"psu": {"failure": exponential(10)}},
                            wafer={"core_failures": exponential(10), "failure": exponential(10)})
    model = build_driven(scenario)
    model.env.run(until=500.0)
    assert model.wafers is not None
    assert [cls.failures for cls in model.classes] == [0, 0, 0]
    assert model.wafers.failures == model.wafers.core_events == 0
    # without the key, every system ages in calendar time, on the wall clock
    always = quiet_scenario(training=JOB)
    assert always.training is not None and always.training.ageing == "always"
    model = build(always, 1)
    assert model.working is None
    assert all(cls.clock is None for cls in model.classes) and model.wafers.clock is None


def test_working_flags_start_idle_and_tell_each_mechanism_once_per_change():
    model = build_driven(working_hall(2))
    working = model.working
    assert working is not None and working.working == [False, False]
    psu = model.classes[0]
    assert psu.clock is not None and psu.clock.rate == [0.0, 0.0]
    working.set(1, True)
    working.set(1, True)
    assert working.working == [False, True]
    assert psu.clock.rate == [0.0, 1.0]
    assert model.wafers.clock is not None and model.wafers.clock.rate == [0.0, 1.0]


# -- 2. unlimited repair capacity ------------------------------------------------------------


def test_with_unlimited_crews_no_fault_waits_for_a_crew():
    # 48 PSUs fail at once at 10 h; each repair takes 2 h: all are back at 12 h
    def hall(crews: object) -> Scenario:
        return quiet_scenario(repair={"crews": crews}, components={"psu": {
            "failure": fixed(10), "repair": fixed(2)}})

    model, sink = run_model(hall("unlimited"), until=13.0)
    repaired = [e.t for e in of(sink.events, "repaired")]
    assert repaired == [12.0] * 48
    assert model.crews.waiting == 0
    assert model.crews.busy_h == 96.0 and model.crews.utilization(13.0) == 0.0
    # nothing to warn about: the crews are not among the resources watched
    assert "crews" not in [q.name for q in model.saturation.queues]
    # two crews would take 48 hours of repairs in 24 h pairs
    _, sink = run_model(hall(2), until=13.0)
    assert len(of(sink.events, "repaired")) == 2


def test_unlimited_crews_are_a_value_of_the_crews_key():
    scenario = quiet_scenario(repair={"crews": "unlimited"})
    assert scenario.repair.crew_count == math.inf
    document = scenario.document()
    assert document["repair"]["crews"] == "unlimited"
    assert parse_scenario(document, "stored") == scenario
    # pooled support: unlimited stays unlimited
    hall = parse_scenario({"repair": {"crews": "unlimited"}}, "s.toml")
    assert scale_scenario(hall, 4).repair.crews == "unlimited"
    assert scenario.digest() != quiet_scenario().digest()


@pytest.mark.parametrize("repair, key, expected", [
    ({"crews": "many"}, "repair.crews", 'a number of crews from 1 to 10,000, or "unlimited"'),
    ({"crews": 2.0}, "repair.crews", 'a number of crews from 1 to 10,000, or "unlimited"'),
    ({"crews": True}, "repair.crews", 'a number of crews from 1 to 10,000, or "unlimited"'),
    ({"crews": 0}, "repair.crews", 'greater than or equal to 1, or "unlimited"'),
    ({"crews": "unlimited", "shift_length": "8 h"}, "repair.shift_length",
     '24 h (always on shift) with crews = "unlimited"'),
    ({"auto_silent_failure_probability": 1.5}, "repair.auto_silent_failure_probability",
     "a probability"),
])
def test_bad_repair_options_name_their_key(repair: dict, key: str, expected: str):
    with pytest.raises(ScenarioError) as err:
        parse_scenario({"repair": repair}, "s.toml")
    assert err.value.key == key
    assert err.value.expected.startswith(expected)


# -- 3. two stages, either of which can fail silently ----------------------------------------

D, F, DELTA, R = 0.5, 0.5, 2.0, 3.0  # diagnosis, automated fix, detection delay, repair


def two_stage(escalate: float, auto_silent: float, silent: float, **overrides: object):
    return quiet_scenario(**merge({
        "components": {"psu": {"count": 1, "required": 1, "failure": exponential(50),
                               "repair": fixed(R), "escalate_probability": escalate}},
        "repair": {"crews": "unlimited", "diagnosis": fixed(D), "auto_fix": fixed(F),
                   "detection_delay": fixed(DELTA), "auto_silent_failure_probability":
                   auto_silent, "silent_failure_probability": silent},
    }, overrides))


def test_an_automated_fix_that_only_looked_done_fails_again_after_the_detection_delay():
    # lone failures at 10 h, never escalated, every fix silent: back at 11 h (0.5 h
    # diagnosis + 0.5 h fix), failing again 2 h later, and so on; the unit keeps its age
    scenario = quiet_scenario(**merge(
        {"hall": {"systems_per_rack": 8}, "components": {"psu": {
            "count": 2, "required": 1, "failure": NEVER, "bad_fraction": 0.5,
            "bad_factor": 1e8, "escalate_probability": 0.0}}},
        {"repair": {"diagnosis": fixed(D), "auto_fix": fixed(F), "detection_delay": fixed(DELTA),
                    "auto_silent_failure_probability": 1.0}}))
    model, sink = run_model(scenario, until=20.0)
    psu = model.classes[0]
    lone = lone_failures(sink)
    assert lone
    for s, failed, _ in lone:
        scope = psu.unit_scope(failed)
        fails = [e.t for e in sink.events if e.scope == scope and e.kind == "failure"]
        back = [e.t for e in sink.events if e.scope == scope and e.kind == "repaired"]
        assert fails == pytest.approx([10.0, 13.0, 16.0, 19.0])
        assert back == pytest.approx([11.0, 14.0, 17.0])
        system = model.fleet.scopes[s]
        silent = [e.t for e in of(sink.events, "silent_auto_fix") if e.scope == system]
        assert silent == pytest.approx(back)
        assert psu.installed[failed] == 0.0  # never replaced
    assert model.shop.auto_fixed == model.shop.escalated == 0
    assert model.shop.auto_silent == len(model.shop.restore_hours["psu"]) > 0


def cycle_law(p: float, q_a: float, q_m: float, mean_life: float, n: int, seed: int):
    """Up and down time of `n` cycles of a 1-of-1 unit, from one lasting restore to
    the next, drawn from the law the stages define (for the standard error)."""
    rng = np.random.default_rng(seed)
    r = (1.0 - p) * q_a
    attempts = rng.geometric(1.0 - r, n)  # automated attempts, the last one not silent
    escalated = rng.random(n) < p / (1.0 - r)
    redone = rng.geometric(1.0 - q_m, n) - 1  # silent manual repairs before one holds
    up = rng.exponential(mean_life, n) + (attempts - 1) * DELTA
    down = attempts * (D + F) + escalated * (R + redone * (DELTA + D + R))
    return up, down


def test_two_stage_attempts_restore_times_and_availability_follow_the_geometric_law():
    p, q_a, q_m, mean_life, systems, until = 0.3, 0.5, 0.25, 50.0, 40, 6_000.0
    kpis = simulate(two_stage(p, q_a, q_m, hall={"systems_per_rack": systems}),
                    seed=3, until=until).kpis
    fixed_, escalated, silent = (kpis[f"repair.{k}"] for k in
                                 ("auto_fixed", "escalated", "auto_silent_failures"))
    attempts = fixed_ + escalated + silent
    # each automated attempt: escalate p, only look done (1 - p) q_a
    for count, share in ((escalated, p), (silent, (1 - p) * q_a)):
        assert count / attempts == pytest.approx(share, abs=4 * math.sqrt(
            share * (1 - share) / attempts))
    # per fault (a recurrence is the same fault): 1 / (1 - r) automated attempts
    r = (1 - p) * q_a
    faults = kpis["failures.psu"] - silent
    assert attempts / faults == pytest.approx(1 / (1 - r), rel=4 * math.sqrt(r / faults))
    # a manual restore: the first diagnosis and fix, then R, redone after every silent
    # failure with delta + D + R: geometric, mean q_m / (1 - q_m) redos
    manual = D + F + R + q_m / (1 - q_m) * (DELTA + D + R)
    sd = math.sqrt(q_m) / (1 - q_m) * (DELTA + D + R)
    assert kpis["mttr_manual_h.psu"] == pytest.approx(manual, abs=4 * sd / math.sqrt(escalated))
    # renewal reward: A = E[up] / E[cycle] per lasting restore
    e_up = mean_life + r / (1 - r) * DELTA
    e_down = (D + F) / (1 - r) + p / (1 - r) * (R + q_m / (1 - q_m) * (DELTA + D + R))
    a = e_up / (e_up + e_down)
    up, down = cycle_law(p, q_a, q_m, mean_life, 1_000_000, seed=9)
    assert up.mean() / (up.mean() + down.mean()) == pytest.approx(a, rel=2e-3)
    cycles = systems * until / (e_up + e_down)
    se = math.sqrt(np.var(up - a * (up + down)) / cycles) / (e_up + e_down)
    assert kpis["availability"] == pytest.approx(a, abs=4 * se)
    # neither stage silent: clearly more available (~0.963 against ~0.931)
    plain = mean_life / (mean_life + D + F + p * R)
    assert plain - kpis["availability"] > 10 * se


def test_silent_automated_fixes_change_the_share_of_faults_that_replace_a_unit():
    # a steady start draws ages from S^p', p' = p / (1 - (1 - p) q_a): the share of
    # faults that end in a replacement once the automated attempts are geometric
    scenario = two_stage(0.4, 0.5, 0.0)
    psu = build(scenario, 1).classes[0]
    assert psu.replaced_share() == pytest.approx(0.4 / (1 - 0.6 * 0.5))
    assert build(two_stage(0.4, 0.0, 0.0), 1).classes[0].replaced_share() == 0.4


def test_a_class_never_escalated_is_never_replaced_even_when_every_fix_is_silent():
    # p = 0, q_a = 1: no fault ever ends in a replacement (p / (1 - (1 - p) q_a) is 0 / 0);
    # a steady start then starts the class new, as for any class with p = 0
    scenario = two_stage(0.0, 1.0, 0.0, hall={"start_age": "steady"})
    psu = build(scenario, 1).classes[0]
    assert psu.replaced_share() == 0.0
    assert np.all(psu.installed == 0.0)


# -- 4. a bad subpopulation that repairs clear ---------------------------------------------


def lemons(fix: float | None, escalate: float = 0.5, start_age: str = "new") -> Scenario:
    """100 systems of 12 PSUs (1 needed), half of them 10 times faster, replaced at once."""
    spec: dict[str, object] = {
        "failure": exponential(1000), "repair": INSTANT, "bad_fraction": 0.5,
        "bad_factor": 10.0, "escalate_probability": escalate, "required": 1}
    if fix is not None:
        spec["fix_bad_probability"] = fix
    return quiet_scenario(hall={"systems_per_rack": 100, "start_age": start_age},
                          components={"psu": spec})


def test_the_bad_share_decays_as_repairs_clear_bad_positions():
    c, p, b, m = 0.3, 0.5, 10.0, 1000.0
    sink = ListSink()
    model = build(lemons(c, p), 1, sink)
    psu = model.classes[0]
    start = psu.accel.copy()
    bad0 = int((start > 1.0).sum())
    assert bad0 == pytest.approx(0.5 * start.size, abs=4 * math.sqrt(start.size) / 2)
    for t in (250.0, 500.0, 1000.0, 2000.0):
        model.env.run(until=t)
        left = math.exp(-c * p * b * t / m)  # each bad position still bad
        bad = int((psu.accel > 1.0).sum())
        assert bad == pytest.approx(bad0 * left, abs=4 * math.sqrt(bad0 * left * (1 - left)))
        # a good position stays good through its replacements
        assert np.all(psu.accel[start == 1.0] == 1.0)
    # about half the faults were fixed without a replacement, which clears nothing
    assert model.shop.auto_fixed == pytest.approx(model.shop.escalated, rel=0.1)


def test_without_fix_bad_probability_a_replacement_draws_from_the_mix_as_before():
    # the same hall, the key left out: good positions turn bad on replacement
    model, sink = run_model(lemons(None, 1.0), until=300.0)
    start, now = sink.first_lots["psu"], model.classes[0].accel
    assert np.any(now[start == 1.0] > 1.0)
    # and a bad position that is never cleared stays bad through every replacement
    model, sink = run_model(lemons(0.0, 1.0), until=300.0)
    assert np.array_equal(model.classes[0].accel, sink.first_lots["psu"])
    assert model.classes[0].failures > 1000  # ~600 bad positions x 3 lives


def test_a_steady_start_with_fix_bad_has_the_given_bad_share():
    # bad positions that repairs clear are not length-biased: the share at t = 0 is f
    scenario = lemons(0.5, 1.0, start_age="steady")
    psu = build(scenario, 1).classes[0]
    share = float((psu.accel > 1.0).mean())
    assert share == pytest.approx(0.5, abs=4 * math.sqrt(0.25 / psu.accel.size))


def test_the_options_at_their_defaults_leave_the_document_and_its_digest_as_before():
    base = quiet_scenario(training=JOB)
    same = quiet_scenario(training={**JOB, "ageing": "always"},
                          repair={"auto_silent_failure_probability": 0.0})
    assert same.document() == base.document() and same.digest() == base.digest()
    document = base.document()
    assert "ageing" not in document["training"]
    assert "auto_silent_failure_probability" not in document["repair"]
    assert "fix_bad_probability" not in document["components"]["psu"]
    for changed in (
        quiet_scenario(training={**JOB, "ageing": "while_running"}),
        quiet_scenario(training=JOB, repair={"auto_silent_failure_probability": 0.1}),
        quiet_scenario(training=JOB, components={"psu": {"fix_bad_probability": 0.0}}),
    ):
        assert changed.digest() != base.digest()
        assert parse_scenario(changed.document(), "stored") == changed


@pytest.mark.parametrize("data, key, expected", [
    ({"training": {**JOB, "ageing": "idle"}}, "training.ageing", "'always' or 'while_running'"),
    ({"components": {"psu": {"fix_bad_probability": -0.1}}},
     "components.psu.fix_bad_probability", "a probability"),
])
def test_bad_options_name_their_key(data: dict, key: str, expected: str):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data, "s.toml")
    assert err.value.key == key
    assert expected in err.value.expected
