"""The repair pipeline: diagnosis, automated fix, crews, wrong units, silent failures.

Deterministic cases use a "lone failure" (twinkit): a 1+1 PSU pair of
which one unit fails at exactly 10 h and the other never does, so every
step of the pipeline lands at a time that can be written down. Statistical
cases check that the pipeline's branch counts are binomial in their
probabilities.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from twinkit import (
    FAILS_AT,
    lone_failure_scenario,
    lone_failures,
    of,
    quiet_scenario,
    run_logged,
    run_model,
)

from twin.engine import simulate


def fixed(hours: float) -> dict:
    return {"dist": "deterministic", "value": f"{hours} h"}


def unit_events(model, sink, unit: int, kind: str) -> list[float]:
    scope = model.classes[0].unit_scope(unit)
    return [e.t for e in sink.events if e.scope == scope and e.kind == kind]


def system_events(model, sink, system: int, kind: str) -> list[float]:
    return [e.t for e in sink.events if e.scope == model.fleet.scopes[system] and e.kind == kind]


def test_an_automated_fix_takes_diagnosis_plus_fix_time_and_keeps_the_unit_age():
    scenario = lone_failure_scenario(
        psu={"escalate_probability": 0.0},
        repair={"diagnosis": fixed(0.5), "auto_fix": fixed(0.25)})
    model, sink = run_model(scenario, until=25.0)
    lone = lone_failures(sink)
    assert lone
    for _, failed, healthy in lone:
        # minimal repair: the unit keeps its age, so a fixed life of 10 h reset at
        # 10.75 h runs out at 20 h (its second life), not 10 h after the fix (20.75 h)
        # and not at once (a reset at or past a fixed life runs another life)
        assert unit_events(model, sink, failed, "failure") == [FAILS_AT, 2 * FAILS_AT]
        assert unit_events(model, sink, failed, "repaired") == [
            FAILS_AT + 0.75, 2 * FAILS_AT + 0.75]
        assert model.classes[0].installed[failed] == 0.0
        assert unit_events(model, sink, healthy, "failure") == []
    # lone or not, each bad unit is fixed twice (an automated fix keeps the unit)
    bad_units = int((sink.first_lots["psu"] > 1.0).sum())
    assert np.array_equal(model.classes[0].accel, sink.first_lots["psu"])
    assert model.shop.auto_fixed == len(model.shop.restore_hours["psu"]) == 2 * bad_units
    assert model.shop.restore_hours["psu"] == [0.75] * (2 * bad_units)
    assert model.stock["psu"].used == 0  # no part for an automated fix


def test_an_escalated_fault_adds_the_crew_repair_and_renews_the_unit():
    scenario = lone_failure_scenario(
        psu={"escalate_probability": 1.0, "repair": fixed(2.0)},
        repair={"diagnosis": fixed(0.5), "auto_fix": fixed(0.25)})
    until = 30.0
    model, sink = run_model(scenario, until=until)
    psu = model.classes[0]
    lone = lone_failures(sink)
    failed_again = 0
    for _, failed, _ in lone:
        failures = unit_events(model, sink, failed, "failure")
        repairs = unit_events(model, sink, failed, "repaired")
        # each fault: 0.5 h diagnosis, 0.25 h automated fix, 2 h crew repair
        assert failures[0] == FAILS_AT
        assert repairs == [f + 2.75 for f in failures]
        # a new unit, from a new lot: if bad, its clock runs out 10 h after it went in
        assert failures[1:] == [r + FAILS_AT for r in repairs[:-1]]
        assert psu.installed[failed] == repairs[-1]
        if psu.accel[failed] > 1.0:  # the unit in place now is bad: fails past the end
            assert repairs[-1] + FAILS_AT > until
        failed_again += len(failures) > 1
    assert 0 < failed_again < len(lone)  # (for this seed) new units from both lots
    assert model.shop.restore_hours["psu"] == [2.75] * len(model.shop.restore_hours["psu"])


def test_a_wrong_unit_is_replaced_while_the_fault_persists_and_is_found_again():
    # every diagnosis blames the healthy unit: 2 h of work, then the fault is
    # noticed 3 h later and the next attempt blames it again (the run ends before
    # a replacement from the bad lot could fail, 10 h after it went in)
    scenario = lone_failure_scenario(
        psu={"repair": fixed(2.0)},
        repair={"wrong_unit_probability": 1.0, "detection_delay": fixed(3.0)})
    model, sink = run_model(scenario, until=21.0)
    lone = lone_failures(sink)
    assert lone
    attempts_done = [12.0, 17.0]
    for s, failed, healthy in lone:
        assert system_events(model, sink, s, "wrong_unit") == attempts_done
        assert unit_events(model, sink, failed, "repaired") == []
        # the healthy unit was renewed by each mistaken replacement
        assert model.classes[0].installed[healthy] == attempts_done[-1]
        assert model.classes[0].up[healthy] and not model.classes[0].up[failed]
    assert model.classes[0].replaced == model.shop.wrong_unit


def test_a_silent_repair_failure_leaves_the_fault_in_place_until_found_again():
    scenario = lone_failure_scenario(
        systems=1, psu={"bad_fraction": 1.0, "count": 1, "required": 1, "repair": fixed(2.0)},
        repair={"silent_failure_probability": 1.0, "detection_delay": fixed(3.0)})
    until = 36.0
    model, sink = run_model(scenario, until=until)
    assert system_events(model, sink, 0, "silent_repair_failure") == [12.0, 17.0, 22.0, 27.0, 32.0]
    assert unit_events(model, sink, 0, "repaired") == []
    assert model.shop.silent == 5 and model.stock["psu"].used == 6
    # the system went down at 10 h and never came back: no outage has ended...
    assert system_events(model, sink, 0, "outage") == []
    # ...and the run books it at the end: from 10 h up to the horizon, blamed on the PSU
    result, events = run_logged(scenario, until=until)
    assert [(e.t, e.cause, e.value) for e in of(events, "outage")] == [
        (FAILS_AT, "psu", until - FAILS_AT)]
    assert result.kpis["downtime_h.psu"] == until - FAILS_AT
    assert result.kpis["availability"] == FAILS_AT / until


def test_branch_counts_are_binomial_in_their_probabilities():
    p_escalate, p_wrong, p_silent = 0.6, 0.2, 0.1
    scenario = quiet_scenario(
        hall={"systems_per_rack": 20},
        components={"psu": {"failure": {"dist": "exponential", "mean": "2000 h"},
                            "repair": fixed(1.0), "escalate_probability": p_escalate}},
        repair={"wrong_unit_probability": p_wrong, "silent_failure_probability": p_silent,
                "detection_delay": fixed(1.0)})
    until = 20_000.0
    model, _ = run_model(scenario, until=until)
    shop, psu = model.shop, model.classes[0]
    # instant diagnosis and fix: every failure has had its first attempt
    assert shop.auto_fixed + shop.escalated == psu.failures

    def within_4_sigma(successes: int, trials: int, p: float) -> bool:
        return abs(successes - trials * p) <= 4 * math.sqrt(trials * p * (1 - p))

    assert within_4_sigma(shop.auto_fixed, psu.failures, 1 - p_escalate)
    manual_restored = len(shop.restore_hours["psu"]) - shop.auto_fixed
    attempts_done = manual_restored + shop.wrong_unit + shop.silent
    assert attempts_done > 1_500
    assert within_4_sigma(shop.wrong_unit, attempts_done, p_wrong)
    assert within_4_sigma(shop.silent, attempts_done - shop.wrong_unit, p_silent)
    # a part for every manual attempt; those still in the crew's hands at the
    # end have taken one too (at most one per unit still down)
    in_hand = model.stock["psu"].used - attempts_done
    assert 0 <= in_hand <= psu.up.count(False)


def test_crews_work_only_on_shift_and_finish_a_job_past_its_end():
    # on shift 08:00-20:00; a fault found off shift waits for 08:00
    start, length, work = 8.0, 12.0, 2.0
    scenario = quiet_scenario(
        hall={"systems_per_rack": 10},
        components={"psu": {"failure": {"dist": "exponential", "mean": "500 h"},
                            "repair": fixed(work)}},
        repair={"shift_start": f"{start} h", "shift_length": f"{length} h"})
    model, sink = run_model(scenario, until=2_000.0)
    psu = model.classes[0]
    waited = overran = 0
    for unit in range(model.fleet.n * psu.count):
        failures = unit_events(model, sink, unit, "failure")
        repairs = unit_events(model, sink, unit, "repaired")
        for failed, repaired in zip(failures, repairs, strict=False):
            into = (failed - start) % 24.0
            begins = failed if into < length else failed + 24.0 - into
            assert repaired == pytest.approx(begins + work, abs=1e-9)
            assert (repaired - work - start) % 24.0 < length + 1e-9
            waited += begins > failed
            overran += (repaired - start) % 24.0 > length
    assert waited > 20 and overran > 0  # both cases happened


def test_a_single_crew_serves_faults_that_hold_a_system_down_first():
    # PSU faults at 10 h, 20 h of work each; a lone one leaves its system
    # running. A 1-of-1 "valve" fails in every system at 11 h (the system is
    # down), 5 h of work. With one crew, a lone PSU fault asked before every
    # valve fault, yet waits until all eight valves are done.
    scenario = lone_failure_scenario(
        systems=8, psu={"repair": fixed(20.0)},
        components={"valve": {"count": 1, "required": 1, "part": "valve",
                              "failure": fixed(11.0), "repair": fixed(5.0)}},
        spares={"valve": {"stock": 100, "reorder_point": 0, "order_quantity": 1,
                          "lead_time": "1 h"}},
        repair={"crews": 1})
    model, sink = run_model(scenario, until=200.0)
    psu = model.classes[0]
    first_served = int((sink.first_lots["psu"] > 1).argmax())  # the first to fail at 10 h
    waiting = [psu.unit_scope(u) for _, u, _ in lone_failures(sink) if u != first_served]
    assert waiting
    repaired = [e for e in of(sink.events, "repaired") if e.cause == "valve" or e.scope in waiting]
    last_valve = [e.t for e in repaired if e.cause == "valve"][7]
    for scope in waiting:  # (it may starve: the valves fail again 11 h after repair)
        assert min((e.t for e in repaired if e.scope == scope), default=math.inf) > last_valve


def test_restore_times_are_the_mttr_kpi():
    scenario = lone_failure_scenario(psu={"repair": fixed(2.0)},
                                     repair={"diagnosis": fixed(0.5)})
    kpis = simulate(scenario, seed=1, until=15.0).kpis
    assert kpis["mttr_h.psu"] == 2.5
    assert math.isnan(kpis["mttr_h.fan"])  # no fan ever failed


def test_a_wrong_diagnosis_blames_the_faulty_unit_when_no_other_unit_is_up():
    # both PSUs fail at 10 h; every diagnosis would blame another unit, but the
    # only other one is down too: each is blamed itself, replaced at 12 h (new,
    # bad: fails again 10 h later) and so on
    scenario = lone_failure_scenario(
        systems=1, psu={"bad_fraction": 1.0, "repair": fixed(2.0)},
        repair={"wrong_unit_probability": 1.0, "detection_delay": fixed(20.0)})
    model, sink = run_model(scenario, until=30.0)
    for unit in (0, 1):
        assert unit_events(model, sink, unit, "failure") == [FAILS_AT, 22.0]
        assert unit_events(model, sink, unit, "repaired") == [12.0, 24.0]
        assert model.classes[0].installed[unit] == 24.0
    assert system_events(model, sink, 0, "wrong_unit") == []
    assert model.shop.wrong_unit == 0 == model.classes[0].replaced
    assert model.classes[0].down[0] == 0 and all(model.classes[0].up)
    # the system was down from 10 h to 12 h and from 22 h to 24 h
    assert [(e.t, e.value) for e in of(sink.events, "outage")] == [(10.0, 2.0), (22.0, 2.0)]


def test_a_wrong_diagnosis_blames_only_a_unit_that_is_up():
    # PSUs 1+2 of 3: where two units fail at 10 h, each diagnosis must blame the
    # third, healthy unit (never the other failed one): it is replaced at 12 h and
    # 17 h (the run ends before a replacement from the bad lot could fail), and
    # the failed units are neither repaired nor fail again
    scenario = lone_failure_scenario(
        systems=16, psu={"count": 3, "required": 1, "repair": fixed(2.0)},
        repair={"wrong_unit_probability": 1.0, "detection_delay": fixed(3.0)})
    model, sink = run_model(scenario, until=21.0)
    psu = model.classes[0]
    bad = sink.first_lots["psu"].reshape(-1, 3) > 1.0
    pairs = [s for s, row in enumerate(bad) if row.sum() == 2]
    assert pairs  # (for this seed)
    for s in pairs:
        failed = [3 * s + u for u in range(3) if bad[s, u]]
        healthy = 3 * s + int(np.argmin(bad[s]))
        for unit in failed:
            assert unit_events(model, sink, unit, "failure") == [FAILS_AT]
            assert unit_events(model, sink, unit, "repaired") == []
            assert not psu.up[unit]
        # two pipelines, each replacing the healthy unit every 5 h
        assert system_events(model, sink, s, "wrong_unit") == [12.0, 12.0, 17.0, 17.0]
        assert psu.up[healthy] and psu.installed[healthy] == 17.0
        assert unit_events(model, sink, healthy, "failure") == []
        assert psu.down[s] == 2
    assert psu.replaced == model.shop.wrong_unit


def test_a_blamed_unit_that_fails_before_the_crew_gets_to_it_is_not_replaced():
    # One system, PSUs 1+1 with fixed lives: the bad unit fails at 10 h, the other
    # at 11 h. One part on the shelf, the next one 100 h away. The 10 h fault takes
    # the part and blames the other unit (up at 10 h); that unit fails at 11 h and
    # waits for a part. At 12 h the crew finds the blamed unit down: nothing is
    # replaced, the part goes back and the 11 h fault's own repair uses it (done at
    # 14 h, a new unit). The 10 h fault is found again at 15 h and waits for a part.
    scenario = lone_failure_scenario(
        systems=1, psu={"failure": fixed(11.0), "bad_factor": 1.1, "repair": fixed(2.0)},
        repair={"wrong_unit_probability": 1.0, "detection_delay": fixed(3.0)},
        spares={"psu": {"stock": 1, "reorder_point": 0, "order_quantity": 1,
                        "lead_time": "100 h"}})
    model, sink = run_model(scenario, until=30.0, seed=2)
    psu, stock = model.classes[0], model.stock["psu"]
    [(_, first, second)] = lone_failures(sink)  # (for this seed)
    assert system_events(model, sink, 0, "wrong_unit") == []
    assert model.shop.wrong_unit == 0 == psu.replaced
    assert unit_events(model, sink, first, "failure") == [FAILS_AT]
    assert unit_events(model, sink, first, "repaired") == []
    # the second unit failed once before its repair, and its replacement (from a
    # new lot) ran its own life: failures and repairs alternate
    assert unit_events(model, sink, second, "repaired") == [14.0]
    again = 14.0 + 11.0 / psu.accel[second]
    assert unit_events(model, sink, second, "failure") == [11.0, again]
    assert psu.down[0] == 2 and not any(psu.up)
    # one part used (taken, given back, taken again); both faults wait for the delivery
    assert stock.used == 1 and stock.on_hand == 0 and stock.backorders == 2
    assert [e.t for e in of(sink.events, "stockout")] == [11.0, 15.0, again]
