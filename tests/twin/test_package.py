"""Package fatigue: thermal cycles, Coffin-Manson damage by Miner's rule, cracked packages.

Closed form: a system taken down (powered off) and up at set times in a
quiet hall has a known RC temperature path (71.4 C at full power, settling
towards the 30 C inlet while off, tau = 0.1 h), so each cycle's amplitude
and the damage sum (dT / reference_delta)^n / cycles are known. Whole run:
pump failovers that trip the system (4x resistance for 10 min) give cycles
of exactly trip - restart = 50 K; with no scatter every package must crack
at its 4th such cycle and be swapped under the cause ``package``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from twinkit import INSTANT, of, quiet_scenario, run_logged, same_events

from twin.engine import build
from twin.errors import ScenarioError
from twin.mechanisms.package import cycle_damage
from twin.scenario import PackageSpec, Scenario, load_scenario, parse_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
PUMP_STRESS, HEAT_AGEING = SCENARIOS / "pump-stress.toml", SCENARIOS / "heat-ageing.toml"

INLET, T_ON, TAU = 30.0, 30.0 + 23.0 * 1.8, 0.1
PACKAGE = {"cycles": 1000.0, "reference_delta": "40 K", "exponent": 2.0, "scatter": 0.0}
# (down at, hours off, powered off?) for system 0: cold outages of several lengths,
# one right after another (it restarts before it is back at T_ON), and a remap
# (powered, idle) that is no power cycle
OUTAGES = [(10.0, 0.05, True), (20.0, 0.3, True), (30.0, 2.0, True), (40.0, 0.5, False),
           (50.0, 0.3, True), (50.4, 1.0, True)]


def test_one_cycle_costs_its_coffin_manson_share() -> None:
    spec = PackageSpec(**PACKAGE)
    assert cycle_damage(40.0, spec) == pytest.approx(1 / 1000)
    assert cycle_damage(80.0, spec) == pytest.approx(4 / 1000)  # n = 2: twice the swing, 4x
    assert 1.0 / cycle_damage(20.0, PackageSpec(**{**PACKAGE, "exponent": 2.5})) == (
        pytest.approx(1000 * 2 ** 2.5))


def expected_damage() -> tuple[float, int]:
    """Miner's sum over the cold outages of OUTAGES along the RC path, and their count."""
    damage, cycles, t, T = 0.0, 0, 0.0, T_ON
    for down, hours, cold in OUTAGES:
        hot = T_ON + (T - T_ON) * math.exp(-(down - t) / TAU)  # recovering since t
        off = 30.0 + 2.0 * 1.8 if not cold else INLET  # a remap idles at 2 kW
        T = off + (hot - off) * math.exp(-hours / TAU)  # coldest: at the restart
        t = down + hours
        if cold:
            cycles += 1
            damage += ((hot - T) / 40.0) ** 2 / 1000.0
    return damage, cycles


def test_miners_damage_of_a_known_cycle_history() -> None:
    model = build(quiet_scenario(package=PACKAGE), seed=1)
    env, fleet = model.env, model.fleet
    hard, soft = fleet.bit("test"), fleet.bit("remap")

    def outages():  # type: ignore[no-untyped-def]
        for down, hours, cold in OUTAGES:
            yield env.timeout(down - env.now)
            fleet.add_reason(0, hard if cold else soft, "test")
            yield env.timeout(hours)
            fleet.clear_reason(0, hard if cold else soft)

    env.process(outages())
    env.run(until=60.0)
    assert model.package is not None
    damage, cycles = expected_damage()
    assert model.package.cycles == cycles == 5
    assert model.package.damage[0] == pytest.approx(damage, rel=1e-9)
    assert model.package.damage[1:] == [0.0] * (fleet.n - 1)
    # the remap left it warm and counted nothing: without it the sum is the same
    assert damage > 0.0


def trip_scenario(**package: object) -> Scenario:
    """Pumps 1+1 failing every ~20 h, replaced at once; a failover (30 min at 4x the
    resistance: throttled at 85 C after ~3 min, past 95 C ~11 min later) trips the
    system; packages crack at 4 trip cycles."""
    pump = {
        "failure": {"dist": "exponential", "mean": "20 h"}, "repair": INSTANT,
        "failover": {"dist": "deterministic", "value": "30 min"}, "failover_factor": 4.0,
        "thermal_factor": 1.0,
    }
    spec = {"cycles": 3.9, "reference_delta": "50 K", "exponent": 2.0, "scatter": 0.0, **package}
    return quiet_scenario(hall={"systems_per_rack": 8}, components={"pump": pump}, package=spec)


def test_many_trips_accumulate_damage_and_crack_packages_as_the_law_says() -> None:
    result, events = run_logged(trip_scenario(), until=500.0)
    k = result.kpis
    cracked = [e for e in of(events, "failure") if e.cause == "package"]
    swaps = of(events, "system_swap")
    # every cycle is a trip, of 95 - 45 = 50 K: damage 1/3.9 each, so a package
    # survives 3 and cracks at its 4th (4/3.9 >= 1); a new package starts at 0
    assert k["thermal.trips"] > 40
    assert k["failures.package"] == len(cracked) == len(swaps) > 5
    assert k["failures.wafer"] == k["failures.package"]  # the swap path, nothing else
    per_cycle = 1.0 / 3.9
    model_damage = k["package.damage_max"]
    assert model_damage < 1.0
    left = round(k["package.damage_mean"] * 8 / per_cycle)  # cycles on the packages in place
    assert k["package.cycles"] == 4 * k["failures.package"] + left
    # a trip's cycle ends at its restart: only trips still cooling at the end are open
    assert 0 <= k["thermal.trips"] - k["package.cycles"] <= 8
    assert k["outages.package"] == k["failures.package"]
    assert k["downtime_h.package"] == 0.0  # swap_time and boot are instant here


def test_package_failures_follow_the_threshold_of_each_package() -> None:
    # with a huge threshold scatter some packages crack early and some never: the
    # count differs from the no-scatter run, and the damage left can exceed 1
    fixed = run_logged(trip_scenario(), until=500.0)[0].kpis
    spread = run_logged(trip_scenario(scatter=2.0), until=500.0)[0].kpis
    assert spread["failures.package"] != fixed["failures.package"]
    assert spread["package.damage_max"] > 1.0  # a package whose threshold is above 1


def test_fatigue_that_never_cracks_leaves_the_run_unchanged() -> None:
    # pump stress (worn pumps, slow failovers, warm water) on 204 systems: trips
    small = ["hall.rows=2", 'run.until="60 d"']
    base = load_scenario(PUMP_STRESS, small)
    tough = load_scenario(PUMP_STRESS, [*small, "package.cycles=1e12"])
    a, events_a = run_logged(base)
    b, events_b = run_logged(tough)
    assert same_events(events_a, events_b)
    assert b.kpis.keys() - a.kpis.keys() == {
        "failures.package", "package.cycles", "package.damage_mean", "package.damage_max",
        "downtime_h.package", "outages.package",
    }
    assert all(a.kpis[k] == b.kpis[k] or math.isnan(a.kpis[k]) for k in a.kpis)
    assert b.kpis["package.cycles"] > 0 and b.kpis["failures.package"] == 0


@pytest.mark.parametrize("key, value", [
    ("cycles", 0.0), ("exponent", -1.0), ("reference_delta", "0 K"), ("scatter", -0.1),
])
def test_a_bad_package_section_is_bad_input_naming_the_key(key: str, value: object) -> None:
    with pytest.raises(ScenarioError) as error:
        parse_scenario({"package": {key: value}}, "s.toml")
    assert f"package.{key}" in str(error.value)


def test_every_kpi_of_ageing_and_fatigue_is_documented() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "kpis.md").read_text()
    rows = set(re.findall(r"^\| `([^`]+)`", text, flags=re.MULTILINE))
    scenario = load_scenario(HEAT_AGEING, ["hall.rows=1", 'run.until="2 d"'])
    kpis = run_logged(scenario)[0].kpis
    new = {"failures.package", "package.cycles", "package.damage_mean", "package.damage_max",
           "ageing.af_mean.pump", "ageing.af_mean.fan", "downtime_h.package", "outages.package"}
    assert new <= kpis.keys()
    generic = {"ageing.af_mean.pump": "ageing.af_mean.<class>",
               "ageing.af_mean.fan": "ageing.af_mean.<class>",
               "downtime_h.package": "downtime_h.<cause>", "outages.package": "outages.<cause>"}
    for name in new:
        assert generic.get(name, name) in rows, name
    assert "`package`" in text  # named among the causes
