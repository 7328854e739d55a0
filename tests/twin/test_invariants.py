"""Invariants of any run: bounds, conservation, event grammar and determinism.

Hypothesis draws small halls (a few systems, a short horizon) with every
mechanism switched on and parameters anywhere in their valid ranges, and
checks what must hold whatever the parameters: fractions in [0, 1], energy
between zero and full power, downtime equal to the integral of being down,
units that fail and are repaired in turn, outages of a system one after the
other and adding up to the downtime KPIs, throttling episodes only while
running, events written in time order inside the run (an outage or a
throttling episode when it ends: its event is dated at its start), and the
same seed giving the same run.
"""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, example, given, note, reject, settings
from hypothesis import strategies as st
from twinkit import (
    lone_failure_scenario,
    merge,
    of,
    quiet_scenario,
    run_logged,
    same_events,
    same_kpis,
)

from twin.engine import simulate
from twin.errors import ScenarioError
from twin.hall import Hall
from twin.records import Event, ListSink, RunResult
from twin.scenario import Scenario, parse_scenario

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
# the nightly version: the same properties over many more halls
MANY = settings(SETTINGS, max_examples=1_000)

# A random hall writes at most ~20k events (72 units failing every 5 h for 400 h).
# About one in a thousand writes millions: a lognormal class fixed only by the
# automated fix whose units age past the 1 - 1e-16 quantile, where
# Lognormal.residual returns 0 and the unit fails again after every diagnosis
# (the engine bug of test_an_instantly_reset_lognormal_unit_*, test_lifetimes:
# with an instant pipeline it never returns). One such hall took 80 s; those are
# set aside (rejected), so the suite keeps its time and cannot hang.
EVENT_BUDGET = 100_000


class _OverBudget(Exception):
    pass


class BudgetSink(ListSink):
    """A `ListSink` that stops the run once it holds more than `limit` events."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def write_events(self, events) -> None:
        super().write_events(events)
        if len(self.events) > self.limit:
            raise _OverBudget


def run_random(scenario: Scenario) -> tuple[RunResult, list[Event]]:
    """`run_logged` for a random hall (its own seed and horizon), within the event
    budget: a hall over it is rejected (Hypothesis draws another)."""
    sink = BudgetSink(EVENT_BUDGET)
    try:
        result = simulate(scenario, sink=sink)
    except _OverBudget:
        note(f"over the budget of {EVENT_BUDGET} events by {sink.events[-1].t} h")
        reject()
    return result, sink.events


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
    # integrals of jumps cancel only to rounding: a fully down hall may read -1e-16;
    # availability and capacity are clipped at zero, the other integrals are not
    eps = 1e-12
    assert 0.0 <= kpis["capacity"] <= kpis["availability"] + eps <= 1.0 + 2 * eps
    assert kpis["availability"] >= 0.0
    full_mwh = scenario.system.power * n * until / 1000
    assert -eps * full_mwh <= kpis["energy.it_mwh"] <= full_mwh * (1 + eps)
    down_h = sum(v for k, v in kpis.items() if k.startswith("downtime_h."))
    # an outage lasts from going down to being up again, boot included, and one
    # still open at the end counts to the horizon: exactly the time not up
    assert down_h == pytest.approx((1 - kpis["availability"]) * n * until, abs=1e-6)
    assert -eps * n * until <= kpis["thermal.trip_h"] <= n * until * (1 + eps)
    assert 0.0 <= kpis["repair.crew_utilization"]


def test_idle_power_above_full_power_is_refused():
    # energy lies between zero and full power only if idle is at most full power
    with pytest.raises(ScenarioError) as err:
        parse_scenario({"system": {"power": "10 kW", "idle_power": "10.5 kW"}}, "hall.toml")
    assert (err.value.source, err.value.key) == ("hall.toml", "system.idle_power")
    assert "at most power" in err.value.expected
    same = parse_scenario({"system": {"power": "10 kW", "idle_power": "10 kW"}}, "hall.toml")
    assert same.system.idle_power == same.system.power == 10.0


# every kind of event the engine writes; system_down/system_up, throttle_end and
# core_failure are gone (one outage, one throttle event, failure/cores instead)
KINDS = {"failure", "repaired", "wrong_unit", "silent_repair_failure", "silent_auto_fix",
         "outage", "throttle", "trip", "system_swap", "stockout", "restock"}


def check_grammar(scenario: Scenario, events, kpis, units_alternate: bool) -> None:
    until, min_fraction = scenario.run.until, scenario.thermal.min_power_fraction
    tol = 1e-9 * max(until, 1.0)  # start + duration vs the clock: rounding only
    assert {e.kind for e in events} <= KINDS
    assert all(0.0 <= e.t <= until for e in events)
    # plain Python types, as the store and JSON expect (a numpy scalar once leaked in)
    assert {tuple(type(x) for x in e) for e in events} <= {(float, str, str, str, float)}
    check_emission_order(events, until, min_fraction, tol)
    check_outages(scenario, events, kpis, tol)
    check_throttles(scenario, events, kpis, tol)
    check_failures(scenario, events, kpis)
    if units_alternate:
        check_units_alternate(events)


def check_emission_order(events, until: float, min_fraction: float, tol: float) -> None:
    """Events are written when they happen; an outage (a throttling episode) when it
    ends, at t + its duration (at t + at least value / (1 - min_fraction)): so those
    written times never go back, and a throttle event comes no later than the next
    event written after it."""
    written = [e.t + e.value if e.kind == "outage" else e.t for e in events]
    known = [(w, e.kind == "outage") for w, e in zip(written, events, strict=True)
             if e.kind != "throttle"]
    for (a, a_outage), (b, b_outage) in zip(known, known[1:], strict=False):
        # exact, but for the rounding of an outage's start + duration
        assert a <= b + (tol if a_outage or b_outage else 0.0)
    assert all(w <= until + tol for w, _ in known)
    next_known = until
    for w, e in zip(reversed(written), reversed(events), strict=True):  # last first
        if e.kind != "throttle":
            next_known = w
            continue
        assert e.value >= 0.0
        shortest = e.value / (1.0 - min_fraction) if min_fraction < 1.0 else 0.0
        assert min_fraction < 1.0 or e.value == 0.0  # at full power nothing is lost
        assert e.t + shortest <= next_known + tol, e


def check_outages(scenario: Scenario, events, kpis, tol: float) -> None:
    """Each system's outages are disjoint, in order, the last one maybe open at the
    end; an outage is one or more ``outage`` stretches back to back, each charged
    to one cause, and they add up to the downtime KPIs, which name every cause (the
    completed outages to the outage counts: test_any_run_counts_only_completed_outages)."""
    until = scenario.run.until
    systems = set(Hall.from_spec(scenario.hall).scopes("system"))
    stretches = of(events, "outage")
    for scope, outages in outages_of(stretches).items():
        assert scope in systems
        for before, after in zip(outages, outages[1:], strict=False):
            # disjoint; with no boot time a system can be up for as little as the
            # shortest residual life (1e-9 h) between two outages
            assert before[-1].t + before[-1].value <= after[0].t + tol, scope
            assert before[-1].t + before[-1].value < until - tol, scope  # only the last open
    causes = {*scenario.components, "cores", "wafer", "thermal"}
    downtime = by_kpi_suffix(kpis, "downtime_h.")
    assert downtime.keys() == causes == by_kpi_suffix(kpis, "outages.").keys()  # zeros too
    for cause, hours in downtime.items():
        mine = [e.value for e in stretches if e.cause == cause]
        assert hours == pytest.approx(sum(mine), rel=1e-12, abs=tol)
    # a trip takes a running system down: its outage starts then, with its cause
    starts = {(e.scope, e.t, e.cause) for e in stretches}
    for trip in of(events, "trip"):
        assert (trip.scope, trip.t, trip.cause) in starts, trip


def outages_of(stretches) -> dict[str, list[list]]:
    """The outages of each system: its ``outage`` stretches in time order, those that
    follow each other without a gap grouped (rounding aside) into one outage."""
    by_scope = defaultdict(list)
    for e in sorted(stretches, key=lambda e: (e.scope, e.t)):
        assert e.value >= 0.0, e
        outages = by_scope[e.scope]
        if outages and math.isclose(outages[-1][-1].t + outages[-1][-1].value, e.t,
                                    rel_tol=1e-12, abs_tol=1e-12):
            outages[-1].append(e)
        else:
            outages.append([e])
    return by_scope


def by_kpi_suffix(kpis, prefix: str) -> dict[str, float]:
    return {k.removeprefix(prefix): v for k, v in kpis.items() if k.startswith(prefix)}


def completed_outages(events, until: float) -> dict[str, int]:
    """Outages by trigger (the cause of their first stretch) that ended before the
    end of the run (the one at the horizon of a system down at the end is open)."""
    tol = 1e-9 * max(until, 1.0)
    counts: dict[str, int] = defaultdict(int)
    for outages in outages_of(of(events, "outage")).values():
        for outage in outages:
            if outage[-1].t + outage[-1].value < until - tol:
                counts[outage[0].cause] += 1
    return dict(counts)


def check_throttles(scenario: Scenario, events, kpis, tol: float) -> None:
    """One event per throttling episode, open ones included; an episode runs only while
    its system runs and costs at most (1 - min_fraction) of its throttled hours."""
    throttles = of(events, "throttle")
    assert kpis["thermal.throttle_events"] == len(throttles)
    assert kpis["thermal.trips"] == len(of(events, "trip"))
    causes = {*scenario.components, "thermal"}
    assert {e.cause for e in throttles} <= causes
    assert {e.cause for e in of(events, "trip")} <= causes
    lost = sum(e.value for e in throttles)
    assert lost <= (1.0 - scenario.thermal.min_power_fraction) * kpis["thermal.throttle_h"] + tol
    down = defaultdict(list)
    for e in of(events, "outage"):
        down[e.scope].append((e.t, e.t + e.value))
    for e in throttles:  # an episode never starts while its system is down
        assert not any(start + tol < e.t < end - tol for start, end in down[e.scope]), e


def check_failures(scenario: Scenario, events, kpis) -> None:
    """Unit failures by class; core losses and wafer failures at the system."""
    unit_failures = defaultdict(int)
    cores, wafers = [], []
    for e in of(events, "failure"):
        if e.scope.count(".") == 4:  # hall.row.rack.sys.unit
            assert e.scope.rsplit(".", 1)[1].rstrip("0123456789") == e.cause
            unit_failures[e.cause] += 1
        else:
            assert e.cause in ("cores", "wafer"), e
            (cores if e.cause == "cores" else wafers).append(e)
    for name in scenario.components:
        assert unit_failures[name] == kpis[f"failures.{name}"]
    assert set(unit_failures) <= set(scenario.components)
    assert kpis["failures.cores"] == len(cores)
    assert all(e.value >= 1.0 and e.value == int(e.value) for e in cores)  # cores lost
    assert kpis["failures.wafer"] == len(wafers)
    for_cores = [e for e in wafers if not math.isnan(e.value)]  # NaN: failed outright
    assert kpis["wafer.failed_for_cores"] == len(for_cores)
    # the usable-core share that failed it
    assert all(0.0 <= e.value < scenario.wafer.min_active_fraction for e in for_cores)


def check_units_alternate(events) -> None:
    """Every unit fails and is repaired in turn (a swap renews all units of a system)."""
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
    result, events = run_random(scenario)
    check_bounds(scenario, result.kpis)
    check_grammar(scenario, events, result.kpis, units_alternate=True)


# A unit blamed while up that fails before the crew gets to it (nothing is replaced):
# test_a_blamed_unit_that_fails_before_the_crew_gets_to_it_is_not_replaced (test_repair).
# Random halls with wrong units come to this in several percent of examples.
BLAMED_THEN_FAILED = lone_failure_scenario(
    systems=1, psu={"failure": {"dist": "deterministic", "value": "11 h"}, "bad_factor": 1.1,
                    "repair": {"dist": "deterministic", "value": "2 h"}},
    repair={"wrong_unit_probability": 1.0,
            "detection_delay": {"dist": "deterministic", "value": "3 h"}},
    spares={"psu": {"stock": 1, "reorder_point": 0, "order_quantity": 1, "lead_time": "100 h"}},
    run={"until": "30 h", "seed": 2})


@SETTINGS
@given(scenarios())
@example(BLAMED_THEN_FAILED)
def test_any_run_with_wrong_units_keeps_its_bounds_and_its_event_grammar(scenario):
    # a wrong diagnosis replaces only a unit that is up, so units still fail and are
    # repaired in turn: the unit grammar holds with wrong units too
    result, events = run_random(scenario)
    check_bounds(scenario, result.kpis)
    check_grammar(scenario, events, result.kpis, units_alternate=True)


# A wafer that fails at 10 h with no spare system: down from 10 h to the end.
DOWN_AT_THE_END = quiet_scenario(
    hall={"systems_per_rack": 1},
    wafer={"failure": {"dist": "deterministic", "value": "10 h"}},
    spare_systems={"count": 0}, run={"until": "100 h"})


@SETTINGS
@given(scenarios())
@example(DOWN_AT_THE_END)
def test_any_run_counts_only_completed_outages(scenario):
    result, events = run_random(scenario)
    completed = completed_outages(events, scenario.run.until)
    counted = by_kpi_suffix(result.kpis, "outages.")
    assert {c: n for c, n in counted.items() if n} == completed


@settings(max_examples=15, deadline=None)
@given(scenarios())
def test_the_same_seed_gives_the_same_run(scenario):
    first, first_events = run_random(scenario)
    again, again_events = run_random(scenario)
    assert same_kpis(first.kpis, again.kpis)
    assert same_events(first_events, again_events)


def test_different_seeds_give_different_runs():
    busy = {"components": {"psu": {"failure": {"dist": "exponential", "mean": "50 h"},
                                    "repair": {"dist": "exponential", "mean": "5 h"}}}}
    scenario = Scenario.model_validate(merge({"hall": {"rows": 1, "racks_per_row": 1}}, busy))
    a, a_events = run_logged(scenario, seed=1, until=200.0)
    b, b_events = run_logged(scenario, seed=2, until=200.0)
    assert a.kpis["failures.psu"] > 50
    assert not same_events(a_events, b_events) and not same_kpis(a.kpis, b.kpis)


@pytest.mark.slow
@MANY
@given(scenarios())
def test_many_runs_keep_their_bounds_and_their_event_grammar(scenario):
    result, events = run_random(scenario)
    check_bounds(scenario, result.kpis)
    check_grammar(scenario, events, result.kpis, units_alternate=True)
