"""Invariants of any run: bounds, conservation, event grammar and determinism.

Hypothesis draws small halls (a few systems, a short horizon) with every
mechanism switched on and parameters anywhere in their valid ranges, and
checks what must hold whatever the parameters: fractions in [0, 1], energy
between zero and full power, downtime equal to the integral of being down,
units that fail and are repaired in turn, systems that go down and come up
in turn, events in time order inside the run, and the same seed giving the
same run.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twinkit import merge, run_logged, same_kpis

from twin.scenario import Scenario

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
# the nightly version: the same properties over many more halls
MANY = settings(SETTINGS, max_examples=1_000)


def hours(lo: float, hi: float):
    return st.floats(lo, hi).map(lambda h: f"{h!r} h")


def lifetimes(lo: float, hi: float):
    """Any distribution of times in about [lo, hi]; only a fixed time may be zero."""
    positive = max(lo, 1e-3)
    return st.one_of(
        st.fixed_dictionaries({"dist": st.just("exponential"), "mean": hours(positive, hi)}),
        st.fixed_dictionaries({"dist": st.just("weibull"), "shape": st.floats(0.5, 4.0),
                               "scale": hours(positive, hi)}),
        st.fixed_dictionaries({"dist": st.just("lognormal"), "median": hours(positive, hi),
                               "sigma": st.floats(0.1, 1.5)}),
        st.fixed_dictionaries({"dist": st.just("deterministic"), "value": hours(lo, hi)}),
    )


@st.composite
def component(draw, count: int, required: int):
    return {
        "count": count, "required": required,
        "failure": draw(lifetimes(5.0, 2_000.0)),
        "repair": draw(lifetimes(0.1, 20.0)),
        "escalate_probability": draw(st.floats(0.0, 1.0)),
        "bad_fraction": draw(st.floats(0.0, 0.5)),
        "bad_factor": draw(st.floats(1.0, 10.0)),
        "thermal_factor": draw(st.floats(1.0, 2.0)),
    }


@st.composite
def spares(draw):
    return {"stock": draw(st.integers(0, 10)), "reorder_point": draw(st.integers(0, 5)),
            "order_quantity": draw(st.integers(1, 10)), "lead_time": draw(hours(0.0, 100.0))}


@st.composite
def scenarios(draw, wrong_units: bool = True) -> Scenario:
    inlet = draw(st.floats(15.0, 40.0))
    restart = inlet + draw(st.floats(1.0, 20.0))
    throttle = restart + draw(st.floats(5.0, 40.0))
    trip = throttle + draw(st.floats(1.0, 20.0))
    power = draw(st.floats(5.0, 30.0))
    physical = draw(st.integers(100, 5_000))
    psu_count = draw(st.integers(1, 6))
    pump = draw(component(2, draw(st.integers(1, 2))))
    pump |= {"failover": draw(lifetimes(0.01, 2.0)), "failover_factor": draw(st.floats(1.0, 5.0))}
    data = {
        "name": "random",
        "hall": {"rows": 1, "racks_per_row": draw(st.integers(1, 2)),
                 "systems_per_rack": draw(st.integers(1, 3))},
        "system": {"power": f"{power!r} kW", "idle_power": f"{power * draw(st.floats(0, 1))!r} kW",
                   "boot_time": draw(hours(0.0, 2.0))},
        "components": {
            "psu": draw(component(psu_count, draw(st.integers(1, psu_count)))),
            "pump": pump,
            "fan": draw(component(4, draw(st.integers(1, 4)))),
        },
        "wafer": {
            "physical_cores": physical,
            "active_cores": int(physical * draw(st.floats(0.8, 1.0))) or 1,
            "area": f"{draw(st.floats(1.0, 500.0))!r} cm2",
            "defect_density": f"{draw(st.floats(0.0, 0.1))!r} /cm2",
            "core_failures": draw(lifetimes(5.0, 500.0)),
            "cores_per_failure": draw(st.floats(1.0, 20.0)),
            "min_active_fraction": draw(st.floats(0.5, 1.0)),
            "remap_time": draw(hours(0.0, 1.0)),
            "failure": draw(lifetimes(50.0, 5_000.0)),
            "bad_fraction": draw(st.floats(0.0, 0.5)),
            "bad_factor": draw(st.floats(1.0, 10.0)),
        },
        "thermal": {
            "inlet": f"{inlet!r} C", "restart": f"{restart!r} C",
            "throttle": f"{throttle!r} C", "trip": f"{trip!r} C",
            "resistance": f"{draw(st.floats(0.5, 3.0))!r} K/kW",
            "capacitance": f"{draw(st.floats(50.0, 500.0))!r} kJ/K",
            "min_power_fraction": draw(st.floats(0.1, 1.0)),
            "release_margin": f"{draw(st.floats(0.0, 5.0))!r} K",
        },
        "repair": {
            "crews": draw(st.integers(1, 4)),
            "shift_start": draw(hours(0.0, 23.0)),
            "shift_length": draw(hours(1.0, 24.0)),
            "diagnosis": draw(lifetimes(0.0, 1.0)),
            "auto_fix": draw(lifetimes(0.0, 1.0)),
            "wrong_unit_probability": draw(st.floats(0.0, 0.3)) if wrong_units else 0.0,
            "silent_failure_probability": draw(st.floats(0.0, 0.3)),
            "detection_delay": draw(lifetimes(0.1, 5.0)),
        },
        "spares": {name: draw(spares()) for name in ("psu", "pump", "fan")},
        # swaps of at least half an hour: a dead-on-arrival loop must take time
        "spare_systems": {"count": draw(st.integers(0, 3)),
                          "swap_time": draw(lifetimes(0.5, 10.0)),
                          "rma_time": draw(lifetimes(1.0, 200.0))},
        "run": {"until": draw(hours(10.0, 400.0)), "seed": draw(st.integers(0, 2**32))},
    }
    return Scenario.model_validate(data)


def check_bounds(scenario: Scenario, kpis: dict[str, float]) -> None:
    until, n = scenario.run.until, scenario.systems
    # integrals of jumps cancel only to rounding: a fully down hall may read -1e-16
    eps = 1e-12
    assert -eps <= kpis["capacity"] <= kpis["availability"] + eps <= 1.0 + 2 * eps
    full_mwh = scenario.system.power * n * until / 1000
    assert -eps * full_mwh <= kpis["energy.it_mwh"] <= full_mwh * (1 + eps)
    down_h = sum(v for k, v in kpis.items() if k.startswith("downtime_h."))
    # an outage lasts from system_down to system_up, boot included: exactly the time not up
    assert down_h == pytest.approx((1 - kpis["availability"]) * n * until, abs=1e-6)
    assert -eps * n * until <= kpis["thermal.trip_h"] <= n * until * (1 + eps)
    assert 0.0 <= kpis["repair.crew_utilization"]


def check_grammar(scenario: Scenario, events, kpis, units_alternate: bool) -> None:
    until = scenario.run.until
    times = [e.t for e in events]
    assert all(0.0 <= t <= until for t in times)
    assert times == sorted(times)  # emitted in time order
    by_scope = defaultdict(list)
    for e in events:
        by_scope[e.scope].append(e)
    for scope, evs in by_scope.items():
        kinds = [e.kind for e in evs if e.kind in ("system_down", "system_up")]
        assert kinds == ["system_down", "system_up"] * (len(kinds) // 2) + (
            ["system_down"] if len(kinds) % 2 else []), scope
        downs = [e.t for e in evs if e.kind == "system_down"]
        for down_t, up in zip(downs, [e for e in evs if e.kind == "system_up"], strict=False):
            assert up.value == pytest.approx(up.t - down_t, abs=1e-9)
    unit_failures = defaultdict(int)
    for e in events:
        if e.kind == "failure" and e.scope.count(".") == 4:  # hall.row.rack.sys.unit
            unit_failures[e.cause] += 1
    for name in scenario.components:
        assert unit_failures[name] == kpis[f"failures.{name}"]
    if not units_alternate:
        return
    down: set[str] = set()  # unit scopes now failed
    for e in events:
        if e.kind == "system_swap":  # new units, all up
            down = {u for u in down if not u.startswith(e.scope + ".")}
        elif e.scope.count(".") == 4 and e.kind == "failure":
            assert e.scope not in down, f"{e.scope} failed twice without a repair at {e.t}"
            down.add(e.scope)
        elif e.scope.count(".") == 4 and e.kind == "repaired":
            assert e.scope in down, f"{e.scope} repaired while up at {e.t}"
            down.remove(e.scope)


@SETTINGS
@given(scenarios(wrong_units=False))
def test_any_run_keeps_its_bounds_and_its_event_grammar(scenario):
    result, events = run_logged(scenario)
    check_bounds(scenario, result.kpis)
    check_grammar(scenario, events, result.kpis, units_alternate=True)


@SETTINGS
@given(scenarios())
def test_any_run_with_wrong_units_keeps_its_bounds_and_system_grammar(scenario):
    # unit grammar left out here: see test_a_unit_blamed_while_it_is_down_* in test_repair.py
    result, events = run_logged(scenario)
    check_bounds(scenario, result.kpis)
    check_grammar(scenario, events, result.kpis, units_alternate=False)


@settings(max_examples=15, deadline=None)
@given(scenarios())
def test_the_same_seed_gives_the_same_run(scenario):
    first, first_events = run_logged(scenario)
    again, again_events = run_logged(scenario)
    assert same_kpis(first.kpis, again.kpis)
    assert first_events == again_events


def test_different_seeds_give_different_runs():
    busy = {"components": {"psu": {"failure": {"dist": "exponential", "mean": "50 h"},
                                    "repair": {"dist": "exponential", "mean": "5 h"}}}}
    scenario = Scenario.model_validate(merge({"hall": {"rows": 1, "racks_per_row": 1}}, busy))
    a, a_events = run_logged(scenario, seed=1, until=200.0)
    b, b_events = run_logged(scenario, seed=2, until=200.0)
    assert a.kpis["failures.psu"] > 50
    assert a_events != b_events and not same_kpis(a.kpis, b.kpis)


@pytest.mark.slow
@MANY
@given(scenarios(wrong_units=False))
def test_many_runs_keep_their_bounds_and_their_event_grammar(scenario):
    result, events = run_logged(scenario)
    check_bounds(scenario, result.kpis)
    check_grammar(scenario, events, result.kpis, units_alternate=True)
