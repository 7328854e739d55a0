"""`--scale N`: N copies of a hall with their support pooled, per-system KPIs kept.

Scaling multiplies rows, crews, spare systems and every part's stock, reorder
point and order quantity by N, and nothing else. A scaled hall's per-system
KPIs stay close to the base hall's (pooling N copies of the support can only
smooth it), while scaling the rows alone starves the hall.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_scenario import flat
from twin.engine import simulate
from twin.errors import ScenarioError
from twin.scenario import Scenario, scale_scenario

# A tenth of the default hall with a tenth of its support (rounded), so that its
# crews, shelves and spare systems are as busy as the default hall's.
BASE = Scenario.model_validate({
    "name": "tenth",
    "hall": {"rows": 2},
    "repair": {"crews": 1},
    "spare_systems": {"count": 1},
    "spares": {
        "psu": {"stock": 3, "reorder_point": 2, "order_quantity": 3},
        "pump": {"stock": 2, "reorder_point": 1, "order_quantity": 2},
        "fan": {"stock": 1, "reorder_point": 1, "order_quantity": 1},
    },
})
SCALED_KEYS = {"hall.rows", "repair.crews", "spare_systems.count"} | {
    f"spares.{part}.{key}" for part in ("psu", "pump", "fan")
    for key in ("stock", "reorder_point", "order_quantity")
}


def test_scaling_multiplies_the_hall_and_its_support_and_nothing_else() -> None:
    before, after = flat(BASE.document()), flat(scale_scenario(BASE, 3).document())
    changed = {key for key in before if before[key] != after[key]}
    assert changed == SCALED_KEYS
    assert all(after[key] == 3 * before[key] for key in SCALED_KEYS)
    assert scale_scenario(BASE, 3).systems == 3 * BASE.systems


def test_scale_one_is_the_scenario_itself() -> None:
    assert scale_scenario(BASE, 1) is BASE


def test_a_scaled_value_out_of_bounds_is_an_error_from_scale() -> None:
    with pytest.raises(ScenarioError) as caught:
        scale_scenario(Scenario(), 1000)
    assert str(caught.value).startswith("--scale: hall.rows: expected less than or equal to")


def _per_system(scenario: Scenario, years: float = 2.0) -> dict[str, float]:
    """KPIs per system, averaged over two seeds."""
    n = scenario.systems
    totals: dict[str, float] = {}
    for seed in (1, 2):
        k = simulate(scenario, seed=seed, until=years * 8760.0).kpis
        per: dict[str, Any] = {
            "availability": k["availability"],
            "crew_utilization": k["repair.crew_utilization"],
            "failures": (k["failures.psu"] + k["failures.pump"] + k["failures.fan"]
                         + k["failures.cores"] + k["failures.wafer"]) / n,
            "spare_system_stockouts": k["spare_systems.stockouts"] / n,
            "part_stockouts": sum(k[f"spares.stockouts.{p}"] for p in ("psu", "pump", "fan")) / n,
        }
        for name, value in per.items():
            totals[name] = totals.get(name, 0.0) + value / 2
    return totals


def _close(scaled: dict[str, float], base: dict[str, float]) -> list[str]:
    """What breaks the stated tolerance: availability within 0.002, crew utilization
    within 20 %, failures per system within 10 % (the same hazards, counted on 4x
    the systems), stockouts per system at most the base hall's plus 0.02 (pooled
    support only smooths them)."""
    problems = []
    if abs(scaled["availability"] - base["availability"]) > 0.002:
        problems.append("availability")
    if abs(scaled["crew_utilization"] / base["crew_utilization"] - 1) > 0.2:
        problems.append("crew_utilization")
    if abs(scaled["failures"] / base["failures"] - 1) > 0.1:
        problems.append("failures")
    for name in ("spare_system_stockouts", "part_stockouts"):
        if scaled[name] > base[name] + 0.02:
            problems.append(name)
    return problems


def test_a_scaled_hall_keeps_the_base_halls_per_system_kpis_and_rows_alone_do_not() -> None:
    base = _per_system(BASE)
    assert _close(_per_system(scale_scenario(BASE, 4)), base) == []
    rows_only = BASE.model_copy(update={"hall": BASE.hall.model_copy(update={"rows": 8})})
    starved = _close(_per_system(rows_only), base)
    assert {"availability", "crew_utilization", "part_stockouts"} <= set(starved)
