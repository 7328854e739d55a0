"""The wafer's first-order thermal model and its governor, against closed forms.

C dT/dt = P - (T - T_in)/R has the step response
T(t) = T_ss + (T0 - T_ss) exp(-t/tau), T_ss = T_in + P R, tau = R C, and a
level L between T0 and T_ss is crossed after tau ln((T_ss - T0)/(T_ss - L)).
The engine-level tests put a known resistance step on a few systems (a pump
that fails at 10 h and stays down) and check that throttle, trip and restart
happen at exactly those times. Defaults used below: 23 kW, 1.8 K/kW,
200 kJ/K (tau = 360 s = 0.1 h), inlet 30 C, throttle 85 C, trip 95 C,
restart 45 C.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from twinkit import NEVER, of, quiet_scenario, run_logged, run_model, same_events

from twin.engine import build, simulate
from twin.mechanisms.thermal import crossing_time, temperature_at
from twin.records import ListSink

P, R, C, INLET = 23.0, 1.8, 200.0, 30.0
THROTTLE, TRIP, RESTART = 85.0, 95.0, 45.0
TAU = R * C / 3600.0  # K/kW x kJ/K = s, in hours
FAILED_AT = 10.0

temps = st.floats(-50.0, 200.0, allow_nan=False)
taus = st.floats(1e-3, 10.0)


def tau_of(factor: float) -> float:
    return TAU * factor


def steady(power: float, factor: float) -> float:
    return INLET + power * R * factor


def cross(T0: float, T_ss: float, level: float, tau: float) -> float:
    """The analytic crossing time, written out independently of the engine."""
    return tau * math.log((T_ss - T0) / (T_ss - level))


def rk4(T0: float, power: float, resistance: float, hours: float, steps: int) -> float:
    """C dT/dt = P - (T - T_in)/R integrated explicitly (RK4), time in hours."""

    def dT(T: float) -> float:
        return 3600.0 * (power - (T - INLET) / resistance) / C

    h = hours / steps
    T = T0
    for _ in range(steps):
        k1 = dT(T)
        k2 = dT(T + h / 2 * k1)
        k3 = dT(T + h / 2 * k2)
        k4 = dT(T + h * k3)
        T += h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return T


# -- closed forms ----------------------------------------------------------------


@given(T0=temps, T_ss=temps, tau=taus, t=st.floats(0.0, 50.0))
def test_temperature_at_is_the_analytic_step_response(T0, T_ss, tau, t):
    expected = T_ss + (T0 - T_ss) * math.exp(-t / tau)
    assert temperature_at(7.0 + t, 7.0, T0, T_ss, tau) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("T0, power, factor", [
    (INLET, P, 1.0),      # cold start at full power
    (71.4, P, 2.0),       # a pump fails at steady state
    (THROTTLE, 0.0, 1.0),  # a trip: no heat, cooling to the inlet
    (60.0, 2.0, 1.5),     # booting at idle power
])
def test_temperature_at_agrees_with_a_fine_explicit_integration(T0, power, factor):
    resistance = R * factor
    for hours in (0.01, 0.1, 0.37, 2.0):
        numeric = rk4(T0, power, resistance, hours, steps=2_000)
        closed = temperature_at(hours, 0.0, T0, steady(power, factor), tau_of(factor))
        # RK4 with h = tau/200 or finer: global error far below 1e-6 K
        assert closed == pytest.approx(numeric, abs=1e-6)


@given(T0=temps, T_ss=temps, level=temps, tau=taus)
def test_crossing_time_solves_for_the_level_or_is_infinite(T0, T_ss, level, tau):
    dt = crossing_time(T0, T_ss, level, tau)
    strictly_between = min(T0, T_ss) < level < max(T0, T_ss)
    if strictly_between:
        assert 0.0 <= dt < math.inf
        # relative to the span: the log amplifies rounding near the asymptote
        span = abs(T_ss - T0)
        assert temperature_at(dt, 0.0, T0, T_ss, tau) == pytest.approx(level, abs=1e-9 * span)
    else:
        assert dt == math.inf


def test_crossing_time_never_reaches_the_asymptote_or_goes_backwards():
    assert crossing_time(30.0, 71.4, 71.4, 0.1) == math.inf  # reached only as t -> inf
    assert crossing_time(30.0, 71.4, 85.0, 0.1) == math.inf  # beyond the steady state
    assert crossing_time(90.0, 71.4, 95.0, 0.1) == math.inf  # cooling never reaches a higher level
    assert crossing_time(95.0, 30.0, 45.0, 0.1) == pytest.approx(0.1 * math.log(65.0 / 15.0))


# -- the governor in the engine ----------------------------------------------------

# Pumps are 1+1. A "bad" pump's clock runs 1e8 times faster, so with a
# deterministic life of 1e9 h the bad pumps, and only they, fail at exactly
# 10 h. Half the pumps are bad: some systems lose one pump (and keep
# running on the other), some lose both (down), some none. Repairs take
# longer than the run, so a lost pump stays lost.
def pump_scenario(systems: int = 16, boot_time: str = "0 h", thermal=None, **pump):
    spec = {
        "failure": NEVER, "bad_fraction": 0.5, "bad_factor": 1e8,
        "repair": {"dist": "deterministic", "value": "1000 h"},
        "thermal_factor": 1.0, "failover": None, **pump,
    }
    return quiet_scenario(
        hall={"systems_per_rack": systems},
        system={"boot_time": boot_time},
        components={"pump": spec},
        thermal=thermal or {},
    )


def one_pump_lost(events, scopes):
    """Systems that lost exactly one pump at 10 h (they keep running)."""
    lost = {}
    for e in of(events, "failure"):
        if e.cause == "pump":
            assert e.t == FAILED_AT
            system = e.scope.rsplit(".", 1)[0]
            lost[system] = lost.get(system, 0) + 1
    return [s for s, scope in enumerate(scopes) if lost.get(scope) == 1]


def times(events, kind, scope):
    return [e.t for e in events if e.kind == kind and e.scope == scope]


def test_a_failover_throttles_at_the_closed_form_time_and_releases_when_it_ends():
    # factor 2.5 for 1 h: full power would settle at 133.5 C; holding 85 C
    # needs 53 % power, above the 50 % floor, so no trip.
    factor, failover_h, until = 2.5, 1.0, 20.0
    scenario = pump_scenario(
        failover={"dist": "deterministic", "value": "1 h"}, failover_factor=factor)
    model, sink = run_model(scenario, until=until)
    singles = one_pump_lost(sink.events, model.fleet.scopes)
    throttles = of(sink.events, "throttle")
    throttled = {e.scope for e in throttles}
    # only a load-carrying pump (1 in 2 for 1+1) causes a failover: for this
    # seed both outcomes occur among the single losses
    assert throttled and throttled < {model.fleet.scopes[s] for s in singles}
    t_throttle = FAILED_AT + cross(steady(P, 1.0), steady(P, factor), THROTTLE, tau_of(factor))
    t_release = FAILED_AT + failover_h  # factor 1 again: full power settles at 71.4 < 85 - 2 C
    hold = (THROTTLE - INLET) / (R * factor * P)
    assert 0.5 < hold < 1.0
    for scope in throttled:
        # one event per episode, at its start, blamed on the pump's failover; its
        # value is the capacity lost: the hold fraction's shortfall until released
        [episode] = [e for e in throttles if e.scope == scope]
        assert (episode.t, episode.cause) == (pytest.approx(t_throttle, abs=1e-9), "pump")
        assert episode.value == pytest.approx((1 - hold) * (t_release - t_throttle), rel=1e-9)
    # released at 11 h: the episodes were written then, not at the end of the run
    assert not any(model.thermal.throttled) and all(f == 1.0 for f in model.fleet.fraction)
    kpis = simulate(scenario, seed=1, until=until).kpis
    assert kpis["thermal.throttle_h"] == pytest.approx(len(throttled) * (t_release - t_throttle))
    assert kpis["thermal.throttle_events"] == len(throttled)
    assert not of(sink.events, "trip")


def test_the_governor_holds_the_throttle_temperature_with_the_power_that_balances_it():
    factor, until = 1.5, 30.0  # full power would settle at 92.1 C > 85 C
    scenario = pump_scenario(thermal_factor=factor)
    model, sink = run_model(scenario, until=until)
    hold = (THROTTLE - INLET) / (R * factor * P)
    assert 0.5 < hold < 1.0
    singles = one_pump_lost(sink.events, model.fleet.scopes)
    assert singles
    t_throttle = FAILED_AT + cross(steady(P, 1.0), steady(P, factor), THROTTLE, tau_of(factor))
    assert not of(sink.events, "throttle")  # still throttled at 30 h: no episode has ended
    for s in singles:
        assert model.thermal.throttled[s]
        assert model.thermal.temperature(s) == pytest.approx(THROTTLE, abs=1e-9)
        assert model.fleet.fraction[s] == pytest.approx(hold, rel=1e-12)
    untouched = [s for s in range(model.fleet.n) if not model.classes[1].down[s]]
    for s in untouched:
        assert model.thermal.temperature(s) == pytest.approx(steady(P, 1.0), abs=1e-9)
        assert model.fleet.fraction[s] == 1.0
    # the run books the episodes still open at the end, up to the horizon
    _, events = run_logged(scenario, until=until)
    episodes = {e.scope: e for e in of(events, "throttle")}
    assert episodes.keys() == {model.fleet.scopes[s] for s in singles}
    for e in episodes.values():
        assert (e.t, e.cause) == (pytest.approx(t_throttle, abs=1e-9), "pump")
        assert e.value == pytest.approx((1 - hold) * (until - t_throttle), rel=1e-9)


def test_throttle_hours_and_capacity_follow_from_the_throttle_time():
    factor, until = 1.5, 30.0
    scenario = pump_scenario(thermal_factor=factor)
    model, sink = run_model(scenario, until=until)
    singles = one_pump_lost(sink.events, model.fleet.scopes)
    both = [s for s in range(model.fleet.n) if model.classes[1].down[s] == 2]
    result, events = run_logged(scenario, until=until)
    kpis = result.kpis
    t_throttle = FAILED_AT + cross(steady(P, 1.0), steady(P, factor), THROTTLE, tau_of(factor))
    hold = (THROTTLE - INLET) / (R * factor * P)
    n = model.fleet.n
    assert kpis["thermal.throttle_h"] == pytest.approx(len(singles) * (until - t_throttle))
    # capacity: full until throttled (or down at 10 h), then the hold fraction
    throttle_loss = len(singles) * (until - t_throttle) * (1 - hold)
    capacity_h = n * until - throttle_loss - len(both) * (until - FAILED_AT)
    assert kpis["capacity"] == pytest.approx(capacity_h / (n * until), rel=1e-12)
    # the throttle events' values add up to that loss: running, below full capacity
    assert sum(e.value for e in of(events, "throttle")) == pytest.approx(throttle_loss, rel=1e-9)
    assert (kpis["availability"] - kpis["capacity"]) * n * until == pytest.approx(throttle_loss)
    # both pumps lost: down from 10 h to the end, blamed on the pump
    assert both
    assert kpis["downtime_h.pump"] == pytest.approx(len(both) * (until - FAILED_AT))
    assert sorted((e.t, e.value, e.cause) for e in of(events, "outage")) == [
        (FAILED_AT, until - FAILED_AT, "pump")] * len(both)


def test_beyond_the_governor_a_system_trips_cools_to_restart_and_boots():
    # failover factor 4 for 5 h: even at the 50 % floor power settles at
    # 112.8 C > 95 C, so the system throttles, trips, cools below 45 C with
    # no heat, boots for 30 min at idle power, heats up again, throttles and
    # trips again (at 11.6 h), and is still cooling at the end (12 h).
    factor, boot, until = 4.0, 0.5, 12.0
    scenario = pump_scenario(
        boot_time="30 min", failover={"dist": "deterministic", "value": "5 h"},
        failover_factor=factor)
    tau = tau_of(factor)
    t_throttle = FAILED_AT + cross(steady(P, 1.0), steady(P, factor), THROTTLE, tau)
    t_trip = t_throttle + cross(THROTTLE, steady(0.5 * P, factor), TRIP, tau)
    t_cooled = t_trip + cross(TRIP, INLET, RESTART, tau)
    t_up = t_cooled + boot
    T_booted = temperature_at(t_up, t_cooled, RESTART, steady(2.0, factor), tau)  # 2 kW idle
    t_throttle2 = t_up + cross(T_booted, steady(P, factor), THROTTLE, tau)
    t_trip2 = t_throttle2 + cross(THROTTLE, steady(0.5 * P, factor), TRIP, tau)
    assert t_trip2 < until < t_trip2 + cross(TRIP, INLET, RESTART, tau)
    _, events = run_logged(scenario, until=until)
    tripped = {e.scope for e in of(events, "trip")}
    assert tripped
    for scope in tripped:
        mine = [e for e in events if e.scope == scope]
        # each episode at the 50 % floor from its start to its trip, blamed on the
        # pump whose failover raised the resistance (not on 'thermal')
        assert [(e.t, e.value, e.cause) for e in mine if e.kind == "throttle"] == [
            (pytest.approx(t_throttle, abs=1e-9),
             pytest.approx(0.5 * (t_trip - t_throttle), abs=1e-9), "pump"),
            (pytest.approx(t_throttle2, abs=1e-9),
             pytest.approx(0.5 * (t_trip2 - t_throttle2), abs=1e-9), "pump")]
        assert [(e.t, e.cause) for e in mine if e.kind == "trip"] == [
            (pytest.approx(t_trip, abs=1e-9), "pump"), (pytest.approx(t_trip2, abs=1e-9), "pump")]
        # the outages: from the trip until booted (cooling and boot included), and
        # the second one still open at the end, booked up to the horizon
        assert [(e.t, e.value, e.cause) for e in mine if e.kind == "outage"] == [
            (pytest.approx(t_trip, abs=1e-9), pytest.approx(t_up - t_trip, abs=1e-9), "pump"),
            (pytest.approx(t_trip2, abs=1e-9), pytest.approx(until - t_trip2, abs=1e-9), "pump")]


def test_a_trip_is_counted_and_its_hours_are_the_time_spent_tripped():
    factor, until = 4.0, 10.5  # one trip, still cooling at the end (no boot)
    scenario = pump_scenario(
        failover={"dist": "deterministic", "value": "5 h"}, failover_factor=factor)
    model, sink = run_model(scenario, until=until)
    kpis = simulate(scenario, seed=1, until=until).kpis
    tau = tau_of(factor)
    t_trip = FAILED_AT + cross(steady(P, 1.0), steady(P, factor), THROTTLE, tau)
    t_trip += cross(THROTTLE, steady(0.5 * P, factor), TRIP, tau)
    trips = len(of(sink.events, "trip"))
    assert trips > 0 and kpis["thermal.trips"] == trips
    assert kpis["thermal.trip_h"] == pytest.approx(trips * (until - t_trip))
    # a trip's downtime is the pump's (its failover raised the resistance), as is
    # that of the systems that lost both pumps at 10 h
    both = model.classes[1].down.count(2)
    assert kpis["downtime_h.thermal"] == 0.0
    assert kpis["downtime_h.pump"] == pytest.approx(
        trips * (until - t_trip) + both * (until - FAILED_AT))


def test_a_hall_too_hot_at_full_power_starts_throttled_and_held_at_the_threshold():
    # inlet 40 C, 2.5 K/kW: full power would settle at 97.5 C, above the trip; a hall
    # that has been running sits at the throttle threshold with the governor's fraction
    until = 5.0
    scenario = quiet_scenario(thermal={"inlet": "40 C", "resistance": "2.5 K/kW"})
    model, sink = run_model(scenario, until=until)
    hold = (THROTTLE - 40.0) / (2.5 * P)
    assert not of(sink.events, "trip")
    for s in range(model.fleet.n):
        assert model.thermal.throttled[s]
        assert model.thermal.temperature(s) == pytest.approx(THROTTLE, abs=1e-9)
        assert model.fleet.fraction[s] == pytest.approx(hold)
    # one episode per system from t = 0, open at the end; nothing raised the
    # resistance, so the heat is blamed on 'thermal'
    _, events = run_logged(scenario, until=until)
    assert sorted((e.scope, e.t, e.cause) for e in of(events, "throttle")) == [
        (scope, 0.0, "thermal") for scope in model.fleet.scopes]
    for e in of(events, "throttle"):
        assert e.value == pytest.approx((1 - hold) * until, rel=1e-12)


def test_a_trip_that_no_class_caused_is_blamed_on_thermal():
    # inlet 40 C, 4 K/kW and a 90 % floor: even throttled, power settles at 122.8 C.
    # Each system starts at 85 C (its steady state capped at the threshold), trips
    # at 95 C, cools to 45 C and boots at once: its trips and outages are 'thermal'.
    until, floor, R_hot = 1.0, 0.9, 4.0
    scenario = quiet_scenario(thermal={"inlet": "40 C", "resistance": f"{R_hot} K/kW",
                                       "min_power_fraction": floor})
    tau = R_hot * C / 3600.0
    t_trip = cross(THROTTLE, 40.0 + floor * P * R_hot, TRIP, tau)
    t_up = t_trip + cross(TRIP, 40.0, RESTART, tau)
    assert t_up < until
    result, events = run_logged(scenario, until=until)
    n = scenario.systems
    for scope in (f"hall.row1.rack1.sys{i}" for i in range(1, n + 1)):
        assert [(e.t, e.cause) for e in events if e.scope == scope and e.kind == "trip"][0] == (
            pytest.approx(t_trip, abs=1e-9), "thermal")
        first = next(e for e in events if e.scope == scope and e.kind == "outage")
        assert (first.t, first.value) == (
            pytest.approx(t_trip, abs=1e-9), pytest.approx(t_up - t_trip, abs=1e-9))
    assert {e.cause for e in of(events, "outage")} == {"thermal"}
    assert {e.cause for e in of(events, "throttle")} == {"thermal"}
    assert [k for k, v in result.kpis.items() if k.startswith("downtime_h.") and v] == [
        "downtime_h.thermal"]


def test_without_a_pump_loss_nothing_thermal_happens():
    model, sink = run_model(pump_scenario(bad_fraction=0.0, thermal_factor=2.0), until=30.0)
    assert not sink.events
    assert np.allclose([model.thermal.temperature(s) for s in range(model.fleet.n)], 71.4)


def test_a_systems_temperature_is_temperature_at_of_its_state_bit_for_bit():
    # `Thermal.temperature` writes `temperature_at` out for speed: the same arithmetic
    model, _ = run_model(pump_scenario(thermal_factor=1.5), until=10.05)  # mid-transient
    thermal = model.thermal
    for s in range(model.fleet.n):
        T = temperature_at(model.env.now, thermal.t0[s], thermal.T0[s], thermal.steady(s),
                           thermal._tau(s))
        assert thermal.temperature(s) == T
    assert len({thermal.temperature(s) for s in range(model.fleet.n)}) > 1  # not all alike


def thermal_state(scenario, until: float, general: bool):
    """Run `scenario` to `until`; `general`: with every re-solve taken by the general
    path (no system counts as cool: the most heat a system gives off is infinite).
    Returns the events and the state of every system's temperature and governor."""
    sink = ListSink()
    model = build(scenario, 1, sink)
    if general:
        model.thermal._hottest = math.inf
    model.env.run(until=until)
    model.recorder.flush()
    thermal, fleet = model.thermal, model.fleet
    state = [thermal.T0, thermal.t0, thermal.heat, thermal.throttled, fleet.fraction,
             [thermal._agenda._stamp.get(s, -1) >= 0 for s in range(fleet.n)]]
    return sink.events, state


@pytest.mark.parametrize("scenario, until", [
    (pump_scenario(thermal_factor=1.5), 30.0),  # throttled and held
    (pump_scenario(boot_time="30 min", failover={"dist": "deterministic", "value": "5 h"},
                   failover_factor=4.0), 12.0),  # throttles, trips, cools, boots
    # full power settles, to the last bit, above the threshold: 30 + (15 x 1.138) x 1.5
    # is 55.605000000000004 (the steady state's rounding), 30 + 15 x (1.138 x 1.5) 55.605
    (quiet_scenario(
        system={"power": "15 kW", "idle_power": "1 kW"},
        thermal={"resistance": "1.138 K/kW", "throttle": "55.605 C", "trip": "60 C",
                 "restart": "40 C"},
        components={"fan": {"failure": NEVER, "bad_fraction": 0.5, "bad_factor": 1e8,
                            "count": 2, "required": 1, "thermal_factor": 1.5,
                            "repair": {"dist": "deterministic", "value": "1000 h"}}}), 30.0),
], ids=["held", "trips", "steady-state-a-rounding-above"])
def test_a_cool_systems_short_re_solve_is_the_general_one_bit_for_bit(scenario, until):
    # `Thermal.update` skips the governor and the crossings for a system that can never
    # reach the throttle threshold: the run is the one the general path makes
    events, state = thermal_state(scenario, until, general=False)
    general_events, general_state = thermal_state(scenario, until, general=True)
    assert same_events(events, general_events)
    assert state == general_state


def test_heat_is_blamed_on_the_class_whose_factor_holds_now_not_the_last_to_rise():
    # Fans 3+1 raise the resistance 1.5x while one is down: enough to throttle
    # (full power would settle at 92.1 C), ~0.16 h after the loss. A pump lost a hair
    # later raises it 1.01x until its crew repair ends 0.001 h on. The throttle then
    # comes with only the fan's factor holding: it is the fan's.
    lot = {"failure": NEVER, "bad_fraction": 0.5, "bad_factor": 1e8}  # bad: fail at 10 h
    scenario = quiet_scenario(
        hall={"systems_per_rack": 40},
        components={
            "fan": {**lot, "thermal_factor": 1.5},
            "pump": {**lot, "bad_factor": 1e8 / 1.0001, "thermal_factor": 1.01,
                     "failover": None,
                     "repair": {"dist": "deterministic", "value": "0.001 h"}},
        },
    )
    _, events = run_logged(scenario, until=10.5)
    lost: dict[tuple[str, str], int] = {}
    for e in of(events, "failure"):
        system = e.scope.rsplit(".", 1)[0]
        lost[system, e.cause] = lost.get((system, e.cause), 0) + 1
    throttled = {e.scope: e for e in of(events, "throttle")}
    both = [s for (s, cause), n in lost.items()
            if cause == "fan" and n == 1 and lost.get((s, "pump")) == 1]
    assert both  # (for this seed) systems that lost one fan, then one pump
    for system in both:
        assert throttled[system].t > FAILED_AT + 0.002  # after the pump was back
        assert throttled[system].cause == "fan"


def test_systems_that_draw_no_power_run_without_a_division_by_zero():
    # 0 kW is a valid power: the governor's hold fraction (throttle - inlet) / (R P)
    # only exists for a throttled system, which one without heat never is
    scenario = quiet_scenario(
        system={"power": "0 kW", "idle_power": "0 kW"},
        components={"fan": {"failure": {"dist": "exponential", "mean": "20 h"},
                            "thermal_factor": 3.0}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kpis = simulate(scenario, seed=1, until=100.0).kpis
    assert kpis["failures.fan"] > 0
    assert kpis["energy.it_mwh"] == 0.0 and kpis["thermal.throttle_events"] == 0.0


def test_crossing_time_is_finite_a_subnormal_distance_from_the_asymptote():
    # 1 / 2.2e-311 overflows: the time is tau x ln(4.5e310) = 715.3 tau, not infinite
    assert crossing_time(1.0, -2.225073858507e-311, 0.0, 1.0) == pytest.approx(715.3, abs=0.1)
    assert crossing_time(1e-200, -1e-200, 0.0, 1.0) == pytest.approx(math.log(2.0))
