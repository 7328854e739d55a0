"""Statistical oracle: the engine against the fixed-step reference model.

`bench/reference.py` simulates the same scenario the obvious SimPy way (a
process per unit and per wafer, a per-minute thermal loop per system). Both
models are run over the same seeds (independent streams) on a small hall
whose failure clocks run fast, and each KPI's means must agree within
``K = 3`` standard errors of their difference,
``|mean_engine - mean_reference| <= 3 sqrt(se_engine^2 + se_reference^2)``,
the standard errors being those of the means over the seeds.

The fast scenario (`oracle_scenario`) is built so that this is a real check:
PSUs and fans have no redundancy (every failure takes a system down, so the
repair pipeline shows in availability), component lives are cut 300x,
crews are few enough to queue, and spares plentiful enough that a rare
stockout does not dominate the variance. Two tests run the engine with one
parameter wrong and assert that the oracle rejects it: a doubled PSU repair
time (availability) and a PSU life 20 % short (PSU failure counts).

The fast reference steps every 5 minutes. That is only sound because the
oracle scenario has no pump failover transient, so no system comes near a
thermal threshold (a test checks it) and the step only sets how finely the
time-averages are sampled. With the default 4x failover resistance a 5-minute
Euler step jumps straight past the throttle threshold to a trip: the
reference needs its 1-minute step for thermal transients, which the slow
tests use to compare throttles and trips.
"""

from __future__ import annotations

import math
from functools import partial

import pytest

from bench.compare import Agreement, compare, engine_kpis, reference_kpis, replicate
from bench.reference import run_reference
from bench.scenarios import accelerated, changed, default_hall, thermal_stress
from twin.scenario import Scenario

K = 3.0
SEEDS = range(1, 17)
CLASSES = ("psu", "pump", "fan")
COUNTS = tuple(f"failures.{c}" for c in CLASSES) + ("failures.cores",)
THERMAL = ("thermal.throttle_events", "thermal.trips")
KPIS = ("availability", "capacity", *COUNTS, *THERMAL)


def oracle_scenario() -> Scenario:
    """12 systems, 30 days; component lives / 300 (fans / 833: the default fan lives
    are long enough that / 300 left too few failures to compare), wafer and core
    lives / 20; no PSU or fan redundancy; no pump failover transient; two crews; a
    spare system per system; twelve times the part stock."""
    base = accelerated(12, 30.0, factor=300.0, lean=True, wafer_factor=20.0)
    spares = {
        name: {"stock": 12 * s.stock, "reorder_point": 12 * s.reorder_point,
               "order_quantity": 12 * s.order_quantity}
        for name, s in base.spares.items()
    }
    return changed(base, {
        "components": {"pump": {"failover_factor": 1.0},
                       "fan": {"failure": {"dist": "weibull", "shape": 1.3, "scale": "300 h"}}},
        "repair": {"crews": 2}, "spare_systems": {"count": 12}, "spares": spares,
    }, name="oracle")


def _by_kpi(rows: list[Agreement]) -> dict[str, Agreement]:
    return {row.kpi: row for row in rows}


def _explain(row: Agreement) -> str:
    return (f"{row.kpi}: engine {row.engine.mean:.6g} (se {row.engine.se:.3g}) vs reference "
            f"{row.reference.mean:.6g} (se {row.reference.se:.3g}), z = {row.z:.2f}")


@pytest.fixture(scope="module")
def oracle() -> Scenario:
    return oracle_scenario()


@pytest.fixture(scope="module")
def reference_runs(oracle: Scenario) -> dict[str, list[float]]:
    return replicate(partial(reference_kpis, step_min=5.0), oracle, SEEDS, KPIS)


@pytest.fixture(scope="module")
def engine_runs(oracle: Scenario) -> dict[str, list[float]]:
    return replicate(engine_kpis, oracle, SEEDS, KPIS)


@pytest.fixture(scope="module")
def agreement(reference_runs, engine_runs) -> dict[str, Agreement]:
    return _by_kpi(compare(reference_runs, engine_runs))


# -- the reference itself -------------------------------------------------------------

def test_the_reference_is_deterministic_per_seed():
    scenario = thermal_stress(6, 5.0)
    a = run_reference(scenario, seed=3).kpis
    b = run_reference(scenario, seed=3).kpis
    c = run_reference(scenario, seed=4).kpis
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)
    assert a != c


def test_a_hall_where_nothing_fails_runs_at_full_power_at_its_steady_temperature():
    never = {"dist": "deterministic", "value": "1e9 h"}
    base = default_hall()
    scenario = changed(base, {
        "run": {"until": "48 h"},
        "hall": {"rows": 1, "racks_per_row": 1},
        "components": {name: {"failure": never} for name in base.components},
        "wafer": {"defect_density": "0 /cm2", "core_failures": never, "failure": never},
    })
    kpis = run_reference(scenario, seed=1).kpis
    assert kpis["availability"] == pytest.approx(1.0, abs=1e-12)
    assert kpis["capacity"] == pytest.approx(1.0, abs=1e-12)
    assert kpis["energy.it_mwh"] == pytest.approx(3 * 23.0 * 48 / 1000, rel=1e-9)
    assert kpis["thermal.throttle_events"] == 0
    assert sum(kpis[f"failures.{c}"] for c in CLASSES) == 0


# -- the engine against the reference ---------------------------------------------------

def test_nothing_in_the_oracle_scenario_comes_near_a_thermal_threshold(
    reference_runs, engine_runs
):
    for kpi in THERMAL:
        assert sum(reference_runs[kpi]) == 0, kpi
        assert sum(engine_runs[kpi]) == 0, kpi


def test_engine_availability_agrees_with_the_reference(agreement):
    for kpi in ("availability", "capacity"):
        row = agreement[kpi]
        assert row.within(K), _explain(row)


@pytest.mark.parametrize("kpi", COUNTS)
def test_engine_failure_counts_agree_with_the_reference(agreement, kpi):
    row = agreement[kpi]
    assert row.reference.mean > 50  # enough failures for the check to mean something
    assert row.within(K), _explain(row)


# -- the oracle has the power to reject a wrong engine ----------------------------------

def test_the_oracle_rejects_an_engine_with_a_doubled_psu_repair_time(oracle, reference_runs):
    psu = oracle.components["psu"].repair
    slow = changed(oracle, {"components": {"psu": {"repair": {
        "dist": "lognormal", "median": f"{2 * psu.median!r} h", "sigma": psu.sigma}}}})
    wrong = replicate(engine_kpis, slow, SEEDS, ("availability",))
    row = _by_kpi(compare(reference_runs, wrong))["availability"]
    assert not row.within(K), _explain(row)


def test_the_oracle_rejects_an_engine_with_a_psu_life_20_percent_short(oracle, reference_runs):
    life = oracle.components["psu"].failure
    short = changed(oracle, {"components": {"psu": {"failure": {
        "dist": "exponential", "mean": f"{0.8 * life.mean()!r} h"}}}})
    wrong = replicate(engine_kpis, short, SEEDS, ("failures.psu",))
    row = _by_kpi(compare(reference_runs, wrong))["failures.psu"]
    assert not row.within(K), _explain(row)


# -- bigger versions (make test-all) ---------------------------------------------------------

SLOW_SEEDS = range(1, 21)


@pytest.mark.slow
def test_engine_agrees_with_the_reference_on_the_accelerated_default_hall():
    """The bench's scenario: default redundancy, lives / 30, 12 systems, 60 days, 1-min step."""
    kpis = ("availability", "capacity", "energy.it_mwh", *COUNTS, "failures.wafer")
    scenario = accelerated(12, 60.0, 30.0)
    rows = compare(replicate(reference_kpis, scenario, SLOW_SEEDS, kpis),
                   replicate(engine_kpis, scenario, SLOW_SEEDS, kpis))
    failed = [_explain(row) for row in rows if not row.within(K)]
    assert not failed, "\n".join(failed)


@pytest.mark.slow
def test_engine_throttles_and_trips_agree_with_the_reference():
    """Warm water, weak pumps and ~10-minute failovers: throttling and trips happen."""
    kpis = ("thermal.throttle_events", "thermal.trips", "thermal.throttle_h", "thermal.trip_h",
            "capacity")
    scenario = thermal_stress(12, 60.0, 30.0)
    rows = compare(replicate(reference_kpis, scenario, SLOW_SEEDS, kpis),
                   replicate(engine_kpis, scenario, SLOW_SEEDS, kpis))
    by = _by_kpi(rows)
    assert by["thermal.trips"].reference.mean >= 3  # the scenario does trip
    failed = [_explain(row) for row in rows if not row.within(K)]
    assert not failed, "\n".join(failed)
