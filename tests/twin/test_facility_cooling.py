"""The cooling chain and the facility's energy (twin.facility) against closed forms.

A quiet hall of 1 row x 2 racks x 3 systems (6 x 23 kW = 138 kW) whose
power parts never fail. A loop short of `s` kW with heat capacity C gains a
0.5 K step every C x 0.5 / s seconds, and each step reaches the inlet of
every system behind it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from twinkit import NEVER, quiet_scenario, run_logged, run_model

from twin.engine import build
from twin.facility import CP_WATER, loop_rise, time_to_gain
from twin.scenario import Scenario

HEAT = 6 * 23.0
STEP = 0.5
AT = 10.0  # the scheduled outage


def scenario(cooling: dict[str, Any], until: str = "100 h") -> Scenario:
    quiet_power = {
        "utility": {"outage_interval": "1e9 h"}, "pdu": {"failure": NEVER},
    }
    never = {"failure": NEVER}
    base: dict[str, Any] = {
        "chillers": {**never, "count": 2, "capacity": "100 kW"},
        "cdu": {**never, "pumps": 3, "required": 2, "pump_flow": "2 kg/s"},
        "water_heat_capacity": "10000 kJ/K",
        "step": f"{STEP} K",
    }
    for key, value in cooling.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) else value
    return quiet_scenario(
        run={"until": until},
        hall={"rows": 1, "racks_per_row": 2, "systems_per_rack": 3},
        facility={"power": quiet_power, "cooling": base},
    )


def test_the_steady_rise_of_a_loop_is_heat_over_mass_flow_times_cp():
    assert loop_rise(1173.0, 30.0) == pytest.approx(1173.0 / (30.0 * 4.186))
    assert time_to_gain(1.0, 138.0, 100.0, 10_000.0) == pytest.approx(10_000.0 / 38.0 / 3600.0)
    assert time_to_gain(1.0, 100.0, 138.0, 10_000.0) == math.inf


def test_a_cdu_carries_flow_times_cp_times_its_design_rise():
    model, _ = run_model(scenario({}), until=1.0)
    assert model.cooling is not None
    assert model.cooling.capacity(1) == pytest.approx(2 * 2.0 * CP_WATER * 10.0)
    assert loop_rise(model.cooling.capacity(1), 2 * 2.0) == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("cooling", "short", "mass"),
    [
        # a chiller lost: 138 kW in, 100 kW out of 10,000 kJ/K of facility water
        ({"chillers": {"outages": [{"start": f"{AT} h", "duration": "50 h"}]}},
         HEAT - 100.0, 10_000.0),
        # two of a row's three pumps out: one pump carries 2 x 4.186 x 10 = 83.7 kW
        ({"cdu": {"outages": [{"start": f"{AT} h", "duration": "50 h", "units": 2}]}},
         HEAT - 2.0 * CP_WATER * 10.0, 8000.0),
    ],
    ids=["chiller", "cdu-pumps"],
)
def test_the_inlet_rises_a_step_at_the_closed_form_times_after_a_loss(
    cooling: dict[str, Any], short: float, mass: float
):
    per_step = mass * STEP / short / 3600.0
    model, _ = run_model(scenario(cooling), until=AT + per_step * 2 - 1e-6)
    thermal = model.thermal
    assert thermal.inlet == [30.0 + STEP] * 6
    model.env.run(until=AT + per_step * 2 + 1e-6)
    assert thermal.inlet == [30.0 + 2 * STEP] * 6
    assert thermal.temperature(0) > 30.0 + 23.0 * 1.8 - 1e-6  # the wafers follow


@pytest.mark.parametrize(
    ("cooling", "cause"),
    [
        ({"chillers": {"count": 2, "outages": [{"start": f"{AT} h", "duration": "20 h"}]}},
         "chiller"),
        ({"cdu": {"outages": [{"start": f"{AT} h", "duration": "20 h", "units": 2}]}}, "cdu"),
    ],
    ids=["chiller", "cdu"],
)
def test_throttling_from_a_raised_inlet_is_blamed_on_the_cooling_part(
    cooling: dict[str, Any], cause: str
):
    result, events = run_logged(scenario(cooling))
    throttles = [e for e in events if e.kind == "throttle"]
    assert len(throttles) >= 6
    assert {e.cause for e in throttles} == {cause}
    assert result.kpis["downtime_h.chiller"] == result.kpis["downtime_h.cdu"] == 0.0  # listed


def test_a_loop_short_for_long_throttles_the_systems_and_recovers_after():
    """A row on one pump for 20 h: the inlet climbs until the governor cuts the heat
    to what one pump carries, then the loop cools back to nominal when both return."""
    outage = {"cdu": {"outages": [{"start": f"{AT} h", "duration": "20 h", "units": 2}]}}
    result, _ = run_logged(scenario(outage))
    k = result.kpis
    assert k["thermal.throttle_events"] >= 6
    assert k["facility.inlet_max_c"] > 40.0
    model, _ = run_model(scenario(outage), until=99.0)
    assert model.thermal.inlet == [30.0] * 6
    assert all(model.fleet.fraction[s] == 1.0 for s in range(6))


def test_energy_balances_and_the_chillers_follow_the_hourly_cop():
    """Facility = IT + chillers + pumps + losses; the chillers' energy is each hour's
    (IT + pump) energy over that hour's COP, from the outdoor formula."""
    result, _ = run_logged(scenario({}, until="48 h"))
    k = result.kpis
    it = k["energy.it_mwh"]
    assert it == pytest.approx(HEAT * 48.0 / 1000.0)
    pumps_kw = 2 * 15.0
    hours = np.arange(48) + 0.5
    outdoor = (15.0 + 10.0 * np.cos(2 * np.pi * (hours / 24.0 - 200) / 365.0)
               + 5.0 * np.cos(2 * np.pi * (hours % 24.0 - 15) / 24.0))
    chillers = ((HEAT + pumps_kw) * (1.0 + 0.03 * (outdoor - 15.0)) / 6.0).sum() / 1000.0
    losses = it * (0.02 + 0.03)
    assert k["energy.losses_mwh"] == pytest.approx(losses)
    assert k["energy.cooling_mwh"] == pytest.approx(chillers + pumps_kw * 48.0 / 1000.0)
    facility = it + k["energy.cooling_mwh"] + k["energy.losses_mwh"]
    assert k["energy.facility_mwh"] == pytest.approx(facility, rel=1e-12)
    assert k["facility.pue"] == pytest.approx(facility / it, rel=1e-12)


def test_hourly_pue_is_stored_and_averages_to_the_run_pue_weighted_by_it():
    from twinkit import ModelSink

    from twin.engine import simulate

    sink = ModelSink()
    result = simulate(scenario({}, until="48 h"), sink=sink)
    [pue] = [m for m in sink.series if m.name == "pue"]
    [power] = [m for m in sink.series if m.name == "facility_power_kw"]
    assert len(pue.values) == 48
    assert sum(power.values) / 1000.0 == pytest.approx(result.kpis["energy.facility_mwh"])
    assert sum(power.values) / (HEAT * 48.0) == pytest.approx(result.kpis["facility.pue"])


def test_outdoor_temperatures_come_from_a_csv_next_to_the_scenario(tmp_path):
    from twin.errors import ScenarioError
    from twin.facility.outdoor import outdoor_hourly
    from twin.scenario import load_scenario

    (tmp_path / "site.csv").write_text("hour,outdoor_c\n0,10.5\n1,12\n2,-3\n")
    (tmp_path / "s.toml").write_text(
        '[facility.cooling.outdoor]\nhourly_csv = "site.csv"\n'
        'heat_waves = [{ start = "1 h", duration = "1 h", rise = "20 K" }]\n'
    )
    spec = load_scenario(tmp_path / "s.toml").facility
    assert spec is not None
    assert spec.cooling.outdoor.hourly == [10.5, 12.0, -3.0]
    hours = outdoor_hourly(spec.cooling.outdoor, 5.0).tolist()
    assert hours == [10.5, 32.0, -3.0, 10.5, 12.0, -3.0]  # repeated; the wave in hour 1
    (tmp_path / "site.csv").write_text("hour,outdoor_c\n0,10.5\n1,99\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(tmp_path / "s.toml")
    assert err.value.key == "facility.cooling.outdoor.hourly_csv"
    assert err.value.source.endswith("site.csv:3")


def dry(outdoor: list[float], until: str = "100 h", **chillers: Any) -> Scenario:
    """The quiet cooling scenario with two 100 kW dry coolers: supply 32 C, approach 5 K,
    full capacity up to 17 C, none from 27 C; fans 2 kW a unit; hourly outdoor air."""
    spec = scenario({"chillers": {"kind": "dry_cooler", "design_outdoor": "17 C",
                                  "fan_power": "2 kW", **chillers}}, until=until)
    data = spec.model_dump(mode="json", by_alias=True)
    data["facility"]["cooling"]["outdoor"] = {"hourly": outdoor}
    return Scenario.model_validate(data)


def test_a_dry_cooler_loses_capacity_linearly_to_zero_at_supply_minus_approach():
    outdoor = [10.0, 17.0, 19.5, 22.0, 26.0, 27.0, 35.0]
    model, _ = run_model(dry(outdoor), until=0.25)
    assert model.cooling is not None
    share = [min(max((27.0 - t) / 10.0, 0.0), 1.0) for t in outdoor]
    assert model.cooling.derating[:7].tolist() == pytest.approx(share)
    assert share == pytest.approx([1.0, 1.0, 0.75, 0.5, 0.1, 0.0, 0.0])
    for hour in range(7):
        model.env.run(until=hour + 0.5)
        assert model.cooling.capacity(0) == pytest.approx(2 * 100.0 * share[hour])


def test_the_facility_water_warms_at_heat_over_mass_when_the_air_is_too_hot():
    """From hour AT the air is 30 C, above supply - approach: nothing leaves the
    facility water, which gains HEAT / C; the inlets step at the closed-form times."""
    per_step = time_to_gain(STEP, HEAT, 0.0, 10_000.0)
    spec = dry([15.0] * int(AT) + [30.0] * 100)
    model, _ = run_model(spec, until=AT + per_step * 2 - 1e-6)
    thermal = model.thermal
    assert thermal.inlet == [30.0 + STEP] * 6
    model.env.run(until=AT + per_step * 2 + 1e-6)
    assert thermal.inlet == [30.0 + 2 * STEP] * 6
    cool, _ = run_model(dry([15.0] * 200), until=AT + per_step * 2 + 1e-6)
    assert cool.thermal.inlet == [30.0] * 6


def test_dry_coolers_draw_fan_power_per_unit_of_heat_and_no_cop():
    """Each hour the fans draw 2 kW per unit-equivalent of (IT + pumps) heat at that
    hour's capacity, at most both units (from 26 C on one unit carries 10 kW)."""
    from twin.facility import facility_energy

    outdoor = np.array([10.0, 22.0, 26.0, 30.0, 15.0])
    spec = dry(outdoor.tolist()).facility
    assert spec is not None
    zero = np.zeros(1)
    energy = facility_energy(spec, outdoor, (zero, np.array([HEAT])),
                             (zero, np.array([2.0])), horizon=4.5)
    heat = HEAT + 2 * 15.0
    expected = []
    for t, hours in zip(outdoor, (1.0, 1.0, 1.0, 1.0, 0.5), strict=True):
        share = min(max((27.0 - t) / 10.0, 0.0), 1.0)
        units = heat / (100.0 * share) if share > 0 else math.inf
        expected.append(min(units, 2.0) * 2.0 * hours)
    assert energy.chillers.tolist() == pytest.approx(expected)
    assert expected[0] == pytest.approx(heat / 100.0 * 2.0)  # 1.68 units at full speed
    assert expected[2] == expected[3] == 4.0  # both units at full speed, short of air


def test_a_dry_cooler_needs_a_design_temperature_below_supply_minus_approach():
    from twin.errors import ScenarioError
    from twin.scenario import parse_scenario

    chillers = {"kind": "dry_cooler", "design_outdoor": "28 C"}
    with pytest.raises(ScenarioError) as err:
        parse_scenario({"facility": {"cooling": {"chillers": chillers}}}, source="f.toml")
    assert err.value.key == "facility.cooling.chillers.design_outdoor"


def test_chillers_keep_their_document_without_the_dry_cooler_keys():
    doc = scenario({}).document()["facility"]["cooling"]["chillers"]
    assert "kind" not in doc and "fan_power" not in doc and "cop" in doc
    assert dry([15.0]).document()["facility"]["cooling"]["chillers"]["kind"] == "dry_cooler"


def test_a_loop_idle_below_a_reduced_capacity_sees_systems_coming_back_at_once():
    """One 100 kW chiller for 138 kW of systems, three of six held down until AT: the
    water is idle at nominal (69 kW in); when they come back it warms at once, its
    first step at AT + C step / (138 - 100). (The heat used to be read only at the
    loop's own events: the water stayed at nominal.)"""
    spec = scenario({"chillers": {"count": 1}})
    model = build(spec, 1)

    def hold(env):
        yield env.timeout(0)
        for s in range(3):
            model.fleet.hold(s, model.fleet.bit("psu"), "psu", AT)

    model.env.process(hold(model.env))
    first = AT + time_to_gain(STEP, HEAT, 100.0, 10_000.0)
    model.env.run(until=first - 1e-6)
    assert model.thermal.inlet == [30.0] * 6
    model.env.run(until=first + 1e-6)
    assert model.thermal.inlet == [30.0 + STEP] * 6
