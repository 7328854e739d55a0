"""Stress-driven ageing: the Arrhenius virtual clock against closed forms.

The wafer's temperature history is made known by taking a system down and
up at set times (quiet hall, no boot time): at full power it sits at
T_on = 30 + 23 x 1.8 = 71.4 C, off it settles towards the inlet (30 C), with
tau = 0.1 h. The virtual age the engine keeps (AF at the settled temperature,
piecewise constant) is compared with a direct numerical integral of AF over
that exact RC path, within the bound `interval_error_bound` states; a unit's
failure time with the residual rescheduled at each change; a population at a
constant elevated temperature fails at AF x its base rate; and a table whose
factor is exactly 1 changes no draw and no event of a run.
"""

from __future__ import annotations

import math

import pytest
from scipy.integrate import quad
from twinkit import INSTANT, of, quiet_scenario, run_logged, same_events

from twin.engine import build
from twin.errors import ScenarioError
from twin.mechanisms.ageing import BOLTZMANN_EV, acceleration, interval_error_bound
from twin.records import ListSink
from twin.scenario import ArrheniusSpec, Scenario, parse_scenario

INLET, T_ON, TAU = 30.0, 30.0 + 23.0 * 1.8, 0.1
SPEC = ArrheniusSpec(activation_energy=0.7, reference_temperature="50 C")
# (down at, up at) for system 0: a short outage (2.5 tau) and a long one
OUTAGES = [(10.0, 10.25), (20.0, 23.0)]


def af(T: float) -> float:
    """AF written out independently of the engine, T in C."""
    return math.exp(0.7 / 8.617333262e-5 * (1.0 / 323.15 - 1.0 / (T + 273.15)))


def path(until: float) -> list[tuple[float, float, float, float]]:
    """The RC temperature path of system 0 as pieces (start, end, T0, T_ss)."""
    pieces, t, T = [], 0.0, T_ON
    for down, up in [*OUTAGES, (until, until)]:
        for end, target in ((min(down, until), T_ON), (min(up, until), INLET)):
            if end > t:
                pieces.append((t, end, T, target))
                T = target + (T - target) * math.exp(-(end - t) / TAU)
                t = end
    return pieces


def exact_virtual_age(until: float) -> float:
    """The integral of AF over the exact temperature path (adaptive quadrature)."""
    total = 0.0
    for start, end, T0, T_ss in path(until):
        value, _ = quad(
            lambda t, T0=T0, T_ss=T_ss, start=start: af(T_ss + (T0 - T_ss) * math.exp(
                -(t - start) / TAU)),
            start, end, epsabs=1e-12, epsrel=1e-12, limit=200,
        )
        total += value
    return total


def fan_scenario(**fan: object) -> Scenario:
    spec = {"arrhenius": {"activation_energy": 0.7, "reference_temperature": "50 C"},
            "thermal_factor": 1.0, **fan}
    return quiet_scenario(components={"fan": spec})


def drive_outages(model, system: int = 0) -> None:  # type: ignore[no-untyped-def]
    """Take `system` down and up at the OUTAGES times (a hard reason: powered off)."""
    env, fleet = model.env, model.fleet
    bit = fleet.bit("test")

    def outages():  # type: ignore[no-untyped-def]
        for down, up in OUTAGES:
            yield env.timeout(down - env.now)
            fleet.add_reason(system, bit, "test")
            yield env.timeout(up - down)
            fleet.clear_reason(system, bit)

    env.process(outages())


def test_the_factor_is_the_arrhenius_law_and_one_at_the_reference() -> None:
    assert acceleration(50.0, SPEC) == 1.0
    for T in (30.0, 71.4, 85.0):
        assert acceleration(T, SPEC) == pytest.approx(af(T), rel=1e-12)
    # the constant: Boltzmann's in eV/K (CODATA)
    assert BOLTZMANN_EV == pytest.approx(8.617333262e-5, rel=1e-12)


def test_the_virtual_age_matches_the_integral_of_af_within_the_stated_bound() -> None:
    until = 30.0
    model = build(fan_scenario(), seed=1)
    drive_outages(model)
    model.env.run(until=until)
    clock = model.classes[[c.name for c in model.classes].index("fan")].clock
    assert clock is not None
    exact = exact_virtual_age(until)
    bound = sum(interval_error_bound(T0, T_ss, TAU, SPEC) for _, _, T0, T_ss in path(until))
    virtual = clock.now(0)
    assert abs(virtual - exact) <= bound
    # the bound means something (under 5 % of the age: four transients of a 41 K
    # swing, at 4.8x), and the piecewise-constant clock is not trivially exact
    assert bound < 0.05 * exact
    assert virtual != exact
    # a system never taken down sat at T_ON all along
    assert clock.now(1) == pytest.approx(until * af(T_ON), rel=1e-12)
    assert clock.now(1) > 4 * until  # ~4.8x faster than at the 50 C reference


def test_a_unit_fails_when_its_virtual_life_is_used_up_through_temperature_changes() -> None:
    life = 50.0  # virtual hours, deterministic
    scenario = fan_scenario(count=1, required=1,
                            failure={"dist": "deterministic", "value": f"{life} h"},
                            repair={"dist": "deterministic", "value": "1000 h"})
    sink = ListSink()
    model = build(scenario, seed=1, sink=sink)
    drive_outages(model)
    model.env.run(until=15.0)
    model.recorder.flush()
    scopes = {f"{scope}.fan1": s for s, scope in enumerate(model.fleet.scopes)}
    failures = {scopes[e.scope]: e.t for e in of(sink.events, "failure") if e.cause == "fan"}
    # the other systems ran at T_ON from 0: their fan fails at life / AF(T_ON)
    on, off = af(T_ON), af(INLET)
    down0, up0 = OUTAGES[0]
    # system 0: 10 h at AF_on, the short outage at AF(inlet), the rest at AF_on again
    expected_0 = up0 + (life - down0 * on - (up0 - down0) * off) / on
    assert down0 * on < life  # the outage falls before the failure
    assert failures[0] == pytest.approx(expected_0, rel=1e-12)
    for s in range(1, model.fleet.n):
        assert failures[s] == pytest.approx(life / on, rel=1e-12)
    # and the true integral of AF up to the failure is the life, within the bound
    exact = exact_virtual_age(failures[0])
    bound = sum(interval_error_bound(T0, T_ss, TAU, SPEC) for *_, T0, T_ss in path(failures[0]))
    assert abs(exact - life) <= bound


def test_a_class_at_a_constant_elevated_temperature_fails_at_af_times_its_base_rate() -> None:
    # 50 systems x 4 fans (1 of 4 required: a failure never stops a system, so the
    # wafer stays at T_ON), exponential lives of mean 1000 h at 50 C, replaced at once
    mean, hours, systems = 1000.0, 500.0, 50
    scenario = quiet_scenario(
        hall={"systems_per_rack": systems},
        components={"fan": {
            "required": 1, "thermal_factor": 1.0,
            "failure": {"dist": "exponential", "mean": f"{mean} h"}, "repair": INSTANT,
            "arrhenius": {"activation_energy": 0.7, "reference_temperature": "50 C"},
        }},
    )
    result, events = run_logged(scenario, until=hours)
    expected = systems * 4 * hours / mean * af(T_ON)  # a Poisson count: ~477
    # tolerance: 4 Poisson standard deviations (~18 %); the base rate (100) is far outside
    assert abs(result.kpis["failures.fan"] - expected) <= 4 * math.sqrt(expected)
    assert abs(systems * 4 * hours / mean - expected) > 4 * math.sqrt(expected)
    assert len(of(events, "outage")) == 0  # the temperature never moved
    assert result.kpis["ageing.af_mean.fan"] == pytest.approx(af(T_ON), rel=1e-12)


def test_a_factor_of_exactly_one_changes_no_draw_and_no_event() -> None:
    # Ea = 1e-300 eV: AF = exp(~1e-300) = 1.0 exactly at every temperature, so the
    # virtual clock is the wall clock and the run must be the run without the table
    base = Scenario(hall={"rows": 2}, run={"until": "60 d"})
    tiny = {"arrhenius": {"activation_energy": 1e-300}}
    flat = Scenario(hall={"rows": 2}, run={"until": "60 d"},
                    components={"pump": tiny, "fan": tiny, "psu": tiny})
    a, events_a = run_logged(base)
    b, events_b = run_logged(flat)
    assert same_events(events_a, events_b)
    assert len(events_a) > 100
    extra = {f"ageing.af_mean.{c}" for c in ("pump", "fan", "psu")}
    assert b.kpis.keys() - a.kpis.keys() == extra
    assert all(b.kpis[k] == 1.0 for k in extra)
    assert all(a.kpis[k] == b.kpis[k] or math.isnan(a.kpis[k]) for k in a.kpis)


def test_without_the_table_the_document_and_its_digest_are_as_before() -> None:
    document = Scenario().document()
    assert all("arrhenius" not in c for c in document["components"].values())
    assert "package" not in document
    on = Scenario(components={"fan": {"arrhenius": {"activation_energy": 0.7}}})
    assert on.document()["components"]["fan"]["arrhenius"]["activation_energy"] == 0.7
    assert on.digest() != Scenario().digest()


@pytest.mark.parametrize("key, value", [
    ("activation_energy", 0.0), ("activation_energy", 50.0),
    ("reference_temperature", "-300 C"),
])
def test_a_bad_arrhenius_table_is_bad_input_naming_the_key(key: str, value: object) -> None:
    table = {"activation_energy": 0.7, key: value}
    with pytest.raises(ScenarioError) as error:
        parse_scenario({"components": {"fan": {"arrhenius": table}}}, "s.toml")
    assert f"components.fan.arrhenius.{key}" in str(error.value)
