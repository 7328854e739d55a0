"""The wafer's bad lot, its swaps still open at the end, and its random streams.

A bad lot has two factors: `bad_factor` on the core-failure clock and
`bad_failure_factor` on the outright-failure clock. Every independent draw
of the wafer mechanism has its own stream, and the first wafers draw apart
from the replacements, so logistics (swap and RMA times, spare systems)
cannot change the history of a first wafer up to its failure.
"""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
from twinkit import of, quiet_scenario, run_logged

from twin.engine import simulate

DAYS_30 = {"dist": "deterministic", "value": "30 d"}


def lot_scenario(**wafer):
    # every wafer from the bad lot; core failures every 1000 h, outright failure at
    # 1000 h, both on the lot's clocks
    return quiet_scenario(
        hall={"systems_per_rack": 2},
        wafer={"core_failures": {"dist": "deterministic", "value": "1000 h"},
               "failure": {"dist": "deterministic", "value": "1000 h"},
               "bad_fraction": 1.0, **wafer},
        spare_systems={"count": 0})


def test_the_bad_lot_factor_speeds_up_core_loss_only():
    result, events = run_logged(lot_scenario(bad_factor=100.0), until=95.0)
    cores = [e.t for e in of(events, "failure") if e.cause == "cores"]
    assert cores == sorted([10.0 * j for j in range(1, 10)] * 2)
    assert result.kpis["failures.wafer"] == 0  # outright failure still at 1000 h


def test_the_bad_lot_failure_factor_speeds_up_outright_failure_only():
    result, events = run_logged(lot_scenario(bad_failure_factor=20.0), until=95.0)
    assert [(e.t, e.cause) for e in of(events, "failure")] == [(50.0, "wafer")] * 2
    assert result.kpis["failures.cores"] == 0


def test_a_swap_still_waiting_at_the_end_is_reported_as_open_not_in_the_mean():
    # two wafers fail at 10 h and 30 h; one spare system, 5 h swaps, RMA 30 d: the
    # first is swapped at 15 h, the second still waits at 100 h (aged 70 h)
    scenario = quiet_scenario(
        hall={"systems_per_rack": 2},
        wafer={"failure": {"dist": "deterministic", "value": "10 h"},
               "bad_fraction": 0.5, "bad_failure_factor": 1.0},
        spare_systems={"count": 1, "swap_time": {"dist": "deterministic", "value": "5 h"},
                       "rma_time": DAYS_30})
    result, events = run_logged(scenario, until=24.0)
    k = result.kpis
    # both wafers fail at 10 h: one swapped at 15 h, the other waits for the RMA
    assert [e.t for e in of(events, "system_swap")] == [15.0]
    assert k["mttr_h.wafer"] == 5.0
    assert k["open_restores.wafer"] == 1 and k["open_age_h.wafer"] == 14.0
    assert math.isnan(k["open_age_h.psu"]) and k["open_restores.psu"] == 0


def test_a_repair_still_under_way_at_the_end_is_reported_as_open():
    # every PSU fails at 10 h and its crew repair takes 100 h: open at 30 h, aged
    # 20 h; fans are fixed automatically in 0.5 h, so their MTTR is the automated one
    scenario = quiet_scenario(
        hall={"systems_per_rack": 3},
        components={
            "psu": {"failure": {"dist": "deterministic", "value": "10 h"},
                    "repair": {"dist": "deterministic", "value": "100 h"}},
            "fan": {"failure": {"dist": "deterministic", "value": "10 h"},
                    "escalate_probability": 0.0},
        },
        repair={"auto_fix": {"dist": "deterministic", "value": "0.5 h"}},
    )
    k = simulate(scenario, until=30.0).kpis
    psus = 3 * scenario.components["psu"].count
    assert k["open_restores.psu"] == psus and k["open_age_h.psu"] == 20.0
    assert math.isnan(k["mttr_h.psu"])  # none completed
    # fans: restored by the automated fix at 10.5 h; the same unit fails again
    # 10 h on at its age (minimal repair: a deterministic life reset runs a full one)
    assert k["mttr_auto_h.fan"] == 0.5 == k["mttr_h.fan"]
    assert math.isnan(k["mttr_manual_h.fan"])
    assert k["open_restores.fan"] == 0


def test_manual_and_automated_restores_have_their_own_means():
    # PSUs: half of the faults are fixed automatically (0.5 h), half by a crew
    # (0.5 h auto fix + 2 h repair)
    scenario = quiet_scenario(
        hall={"systems_per_rack": 50},
        components={"psu": {"failure": {"dist": "deterministic", "value": "10 h"},
                            "repair": {"dist": "deterministic", "value": "2 h"},
                            "escalate_probability": 0.5}},
        repair={"auto_fix": {"dist": "deterministic", "value": "0.5 h"}},
    )
    k = simulate(scenario, until=15.0).kpis
    assert k["mttr_auto_h.psu"] == 0.5
    assert k["mttr_manual_h.psu"] == 2.5
    auto = k["repair.auto_fixed"]
    assert 0 < auto < k["failures.psu"]
    assert k["mttr_h.psu"] == pytest.approx((0.5 * auto + 2.5 * (k["failures.psu"] - auto))
                                            / k["failures.psu"], rel=1e-12)


# -- common random numbers across logistics -------------------------------------------

WAFER_LIFE = {
    "hall": {"systems_per_rack": 60},
    "wafer": {
        # small wafers that lose their spares within the run: failures for cores, and
        # outright failures, both draw
        "physical_cores": 1000, "active_cores": 950, "min_active_fraction": 0.97,
        "defect_density": "0.02 /cm2", "area": "1000 mm2",
        "core_failures": {"dist": "exponential", "mean": "40 h"},
        "cores_per_failure": 3.0, "remap_time": "15 min",
        "failure": {"dist": "weibull", "shape": 1.5, "scale": "2000 h"},
        "bad_fraction": 0.2, "bad_factor": 3.0, "bad_failure_factor": 2.0,
    },
    "spare_systems": {"count": 3, "swap_time": {"dist": "lognormal", "median": "6 h",
                                                "sigma": 0.4},
                      "rma_time": DAYS_30},
    "repair": {"crews": 2},
}

LOGISTICS = {
    "swap_time fixed": {"swap_time": {"dist": "deterministic", "value": "6 h"}},
    "swap_time exponential": {"swap_time": {"dist": "exponential", "mean": "3 h"}},
    "rma_time lognormal, sigma 0.001": {"rma_time": {"dist": "lognormal", "median": "30 d",
                                                     "sigma": 0.001}},
    "rma_time exponential": {"rma_time": {"dist": "exponential", "mean": "100 h"}},
    "more spare systems": {"count": 20},
    "no spare systems": {"count": 0},
}


def first_wafer_histories(events) -> dict[str, list[tuple[float, str, float | None]]]:
    """Each system's failure events up to and including the failure of its first
    wafer (a swap puts in a wafer whose history depends on when it went in); a NaN
    value (an outright failure) as None, so that equal histories compare equal."""
    histories: dict[str, list[tuple[float, str, float | None]]] = defaultdict(list)
    ended: set[str] = set()
    for e in sorted(of(events, "failure"), key=lambda e: e.t):
        if e.scope in ended:
            continue
        histories[e.scope].append((e.t, e.cause, None if math.isnan(e.value) else e.value))
        if e.cause == "wafer":
            ended.add(e.scope)
    return histories


@pytest.mark.parametrize("change", sorted(LOGISTICS))
def test_logistics_leave_the_failure_history_of_the_first_wafers_unchanged(change):
    base = quiet_scenario(**WAFER_LIFE)
    changed = quiet_scenario(**{**WAFER_LIFE, "spare_systems": {
        **WAFER_LIFE["spare_systems"], **LOGISTICS[change]}})
    until = 1500.0
    base_result, base_events = run_logged(base, until=until)
    other_result, other_events = run_logged(changed, until=until)
    # the change did change the logistics, and replacements then failed differently
    assert [e.t for e in of(base_events, "system_swap")] != [
        e.t for e in of(other_events, "system_swap")]
    assert base_result.kpis["wafer.failed_for_cores"] > 0
    assert base_result.kpis["failures.wafer"] > base_result.kpis["wafer.failed_for_cores"]
    assert first_wafer_histories(base_events) == first_wafer_histories(other_events)
