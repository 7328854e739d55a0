"""Outages: what a system's downtime is charged to, when it boots, and remaps.

Rules (docs/model.md "Outages"): downtime is charged, moment by moment, to
the most severe reason holding (wafer > component class > thermal trip >
remap); a boot to the last reason that powered the system off; an outage is
counted once, under its trigger (the reason that began it). A remap keeps
the system powered: an outage held only by remaps ends without a boot. Each
core failure stops the system for `remap_time` from that failure, extending
a remap in progress. Every case below is deterministic, so the expected
numbers are exact.
"""

from __future__ import annotations

import pytest
from twinkit import of, quiet_scenario, run_logged

EVERY_10_H = {"dist": "deterministic", "value": "10 h"}


def one_system(**overrides):
    return quiet_scenario(**{"hall": {"systems_per_rack": 1}, **overrides})


def stretches(events):
    return [(e.t, e.value, e.cause) for e in of(events, "outage")]


def test_a_wafer_failing_during_a_remap_charges_the_swap_wait_to_the_wafer():
    # a core failure at 10 h starts a 1 h remap; the wafer fails outright at 10.25 h
    # and the swap takes 50 h, then a 1 h boot: 0.25 h are the remap's, the rest the
    # wafer's; the outage's trigger is the core failure
    scenario = one_system(
        system={"boot_time": "1 h"},
        wafer={"core_failures": EVERY_10_H, "remap_time": "1 h",
               "failure": {"dist": "deterministic", "value": "10.25 h"}},
        spare_systems={"count": 1, "swap_time": {"dist": "deterministic", "value": "50 h"}},
    )
    result, events = run_logged(scenario, until=70.0)  # the new wafer's first remap: 70.25 h
    k = result.kpis
    assert stretches(events) == [(10.0, 0.25, "cores"), (10.25, 51.0, "wafer")]
    assert k["downtime_h.cores"] == 0.25
    assert k["downtime_h.wafer"] == 51.0  # 50 h swap + the boot it needs
    assert k["outages.cores"] == 1 and k["outages.wafer"] == 0  # one outage, its trigger
    assert k["mttr_h.wafer"] == 50.0
    assert k["availability"] == pytest.approx((70.0 - 51.25) / 70.0, rel=1e-12)


def test_a_remap_during_a_component_outage_is_charged_to_the_component_and_boots_after():
    # PSUs 1+1, both fail at 10 h (down for psu until the crew's 5 h repair ends at
    # 15 h); a core failure at 12 h remaps until 17 h. psu is the more severe reason
    # while both hold; then the remap alone holds (charged to cores); the system was
    # powered off, so it boots for 1 h after, and the boot is the psu's
    scenario = one_system(
        system={"boot_time": "1 h"},
        components={"psu": {"count": 2, "required": 2,
                            "failure": {"dist": "deterministic", "value": "10 h"},
                            "repair": {"dist": "deterministic", "value": "5 h"}}},
        wafer={"core_failures": {"dist": "deterministic", "value": "12 h"},
               "remap_time": "5 h"},
    )
    result, events = run_logged(scenario, until=20.0)
    k = result.kpis
    assert stretches(events) == [(10.0, 5.0, "psu"), (15.0, 2.0, "cores"), (17.0, 1.0, "psu")]
    assert (k["downtime_h.psu"], k["downtime_h.cores"]) == (6.0, 2.0)
    assert k["outages.psu"] == 1 and k["outages.cores"] == 0
    assert k["availability"] == pytest.approx((20.0 - 8.0) / 20.0, rel=1e-12)


def test_a_remap_keeps_the_system_powered_and_costs_no_boot():
    # a core failure every 10 h, a 15 min remap, a 1 h boot: each remap costs 15 min
    scenario = one_system(system={"boot_time": "1 h"},
                          wafer={"core_failures": EVERY_10_H, "remap_time": "15 min"})
    result, events = run_logged(scenario, until=95.0)
    assert stretches(events) == [(10.0 * j, 0.25, "cores") for j in range(1, 10)]
    assert result.kpis["availability"] == pytest.approx((95.0 - 9 * 0.25) / 95.0, rel=1e-12)
    assert result.kpis["energy.it_mwh"] == pytest.approx(
        (23.0 * (95.0 - 9 * 0.25) + 2.0 * 9 * 0.25) / 1000, rel=1e-12)  # idle while remapping


@pytest.mark.parametrize("remap", ["1 s", "0.001 s"])
def test_availability_tends_to_one_as_the_remap_time_tends_to_zero(remap):
    scenario = one_system(system={"boot_time": "1 h"},
                          wafer={"core_failures": EVERY_10_H, "remap_time": remap})
    none = one_system(system={"boot_time": "1 h"}, wafer={"core_failures": EVERY_10_H})
    until = 95.0
    lost = 1.0 - run_logged(scenario, until=until)[0].kpis["availability"]
    assert run_logged(none, until=until)[0].kpis["availability"] == 1.0
    seconds = float(remap.split()[0])
    assert lost == pytest.approx(9 * seconds / 3600 / until, rel=1e-9)


def test_a_core_failure_during_a_remap_extends_it():
    # a core failure every 10 h, each remap 15 h: each failure holds the system for
    # 15 h from itself, so from the first (10 h) it is never back before the end
    scenario = one_system(wafer={"core_failures": EVERY_10_H, "remap_time": "15 h"})
    result, events = run_logged(scenario, until=100.0)
    assert stretches(events) == [(10.0, 90.0, "cores")]
    assert result.kpis["availability"] == pytest.approx(0.1, rel=1e-12)
    # past the horizon too, each new failure extends the hold: the outage is still open
    result, events = run_logged(scenario, until=104.0)
    assert result.kpis["outages.cores"] == 0
    scenario = one_system(wafer={"core_failures": {"dist": "deterministic", "value": "10 h"},
                                 "remap_time": "15 h",
                                 "failure": {"dist": "deterministic", "value": "95 h"}},
                          spare_systems={"count": 0})
    _, events = run_logged(scenario, until=110.0)
    assert stretches(events) == [(10.0, 85.0, "cores"), (95.0, 15.0, "wafer")]


def test_every_cause_of_a_scenario_has_its_downtime_and_outage_kpis_zeros_included():
    result, _ = run_logged(quiet_scenario(), until=10.0)
    for cause in ("psu", "pump", "fan", "wafer", "cores", "thermal"):
        assert result.kpis[f"downtime_h.{cause}"] == 0.0
        assert result.kpis[f"outages.{cause}"] == 0.0
    for name in ("psu", "pump", "fan", "wafer"):
        assert result.kpis[f"open_restores.{name}"] == 0.0
