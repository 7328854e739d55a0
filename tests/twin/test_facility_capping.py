"""Power capping (twin.facility.capping): the policies' caps in closed form, and a
capped hall whose IT power, capacity and heat follow the cap."""

from __future__ import annotations

import numpy as np
import pytest
from twinkit import NEVER, cap, quiet_scenario, run_logged, scripted

from twin.errors import ScenarioError
from twin.facility import caps
from twin.fleet import QUANTITIES
from twin.scenario import CapSpec, parse_scenario

FULL = 23.0


def test_uniform_gives_every_system_the_budget_share():
    assert caps(CapSpec(budget="80 kW", policy="uniform"), 5, 20.0).tolist() == [0.8] * 5


def test_ordered_lowers_the_last_systems_to_the_floor_first():
    # 5 x 20 kW = 100 kW, budget 75 kW: 25 kW off, 10 kW a system at floor 0.5
    got = caps(CapSpec(budget="75 kW", policy="ordered", floor=0.5), 5, 20.0)
    assert got.tolist() == pytest.approx([1.0, 1.0, 0.75, 0.5, 0.5])
    assert (got * 20.0).sum() == pytest.approx(75.0)


def test_no_budget_caps_nothing():
    assert caps(CapSpec(), 3, 20.0).tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("policy", ["uniform", "ordered"])
def test_a_capped_hall_draws_its_budget_and_does_that_share_of_the_work(policy: str):
    budget = 0.8 * 6 * FULL
    scenario = quiet_scenario(
        hall={"rows": 1, "racks_per_row": 2, "systems_per_rack": 3},
        facility={
            "power": {"utility": {"outage_interval": "1e9 h"}, "pdu": {"failure": NEVER}},
            "cooling": {"chillers": {"failure": NEVER}, "cdu": {"failure": NEVER}},
            "cap": {"budget": f"{budget} kW", "policy": policy},
        },
    )
    result, _ = run_logged(scenario)
    k = result.kpis
    assert k["power.it_mean_kw"] == pytest.approx(budget)
    assert k["capacity"] == pytest.approx(0.8)
    assert k["thermal.throttle_h"] == 0.0  # a cap is not a throttle
    assert k["facility.capped_systems"] == (6 if policy == "uniform" else 3)
    assert np.isclose(k["availability"], 1.0)


def test_a_budget_below_the_floor_is_named():
    with pytest.raises(ScenarioError) as err:
        parse_scenario({"facility": {"cap": {"budget": "1000 kW"}}}, source="c.toml")
    assert err.value.key == "facility.cap.budget"


def test_scaling_a_facility_scales_the_plant_that_serves_the_whole_hall():
    from twin.scenario import scale_scenario

    base = parse_scenario({"facility": {"cap": {"budget": "20000 kW"}}}, source="s.toml")
    scaled = scale_scenario(base, 3)
    assert base.facility is not None and scaled.facility is not None
    b, s = base.facility, scaled.facility
    assert s.power.generators.count == 3 * b.power.generators.count
    assert s.power.generators.required == 3 * b.power.generators.required
    assert s.power.ups.energy == 3 * b.power.ups.energy
    assert s.power.ups.recharge == 3 * b.power.ups.recharge
    assert s.cooling.chillers.count == 3 * b.cooling.chillers.count
    assert s.cooling.water_heat_capacity == 3 * b.cooling.water_heat_capacity
    assert s.cap.budget == 3 * 20000.0
    assert s.cooling.cdu == b.cooling.cdu  # one per row: the rows are scaled


def test_a_cap_lowered_onto_the_governors_fraction_ends_its_throttling_in_the_log():
    # "throttled" is the governor holding a system below its cap: once the cap comes
    # down to the governor's very fraction, the cap holds it, and the log says so then
    def governor(s: int, fraction: float):
        return lambda model: model.fleet.set_fraction(s, fraction)

    scenario = quiet_scenario(hall={"rows": 1, "racks_per_row": 1, "systems_per_rack": 2})
    model = scripted(scenario, [(1.0, governor(0, 0.8)), (2.0, cap(0, 0.8))], until=3.0)
    log, k = model.fleet.log, len(QUANTITIES)
    rows = [(t, log.values[k * i: k * (i + 1)])
            for i, (t, s) in enumerate(zip(log.t, log.system, strict=True)) if s == 0]
    throttled = QUANTITIES.index("throttled")
    assert [(t, v[throttled]) for t, v in rows] == [(0.0, 0.0), (1.0, 1.0), (2.0, 0.0)]
