"""The KPIs of one run, as a flat dict of dotted names (see docs/kpis.md).

Time-weighted quantities come from the exact integrals of the fleet's change
log; counts and repair times from the mechanisms' own tallies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from twin.engine import Model

__all__ = ["collect_kpis"]


def collect_kpis(model: Model, horizon: float, integrals: dict[str, float]) -> dict[str, float]:
    """Every KPI of a finished run (``availability``, ``failures.psu``, ...)."""
    n = model.hall.n_systems
    system_hours = n * horizon
    availability = max(integrals["up"] / system_hours, 0.0)
    k: dict[str, float] = {
        # clipped: jumps that cancel can leave +-1e-17 in a hall down all run
        "availability": availability,
        "capacity": min(max(integrals["capacity"] / system_hours, 0.0), availability),
        "energy.it_mwh": integrals["power_kw"] / 1000.0,
        "power.it_mean_kw": integrals["power_kw"] / horizon,
    }
    shop, wafers, fleet = model.shop, model.wafers, model.fleet
    for cls in model.classes:
        k[f"failures.{cls.name}"] = float(cls.failures)
        k[f"mttr_h.{cls.name}"] = shop.mttr(cls.name)
    k["failures.wafer"] = float(wafers.failures)
    k["failures.cores"] = float(wafers.core_events)
    k["mttr_h.wafer"] = float(np.mean(wafers.swap_hours)) if wafers.swap_hours else float("nan")
    for cause, hours in sorted(fleet.downtime_by_cause.items()):
        k[f"downtime_h.{cause}"] = hours
    for cause, count in sorted(fleet.outages_by_cause.items()):
        k[f"outages.{cause}"] = float(count)
    thermal = model.thermal
    k["thermal.throttle_events"] = float(thermal.throttle_events)
    k["thermal.throttle_h"] = integrals["throttled"]
    k["thermal.trips"] = float(thermal.trips)
    k["thermal.trip_h"] = integrals["tripped"]
    for name, stock in model.stock.items():
        k[f"spares.used.{name}"] = float(stock.used)
        k[f"spares.stockouts.{name}"] = float(stock.stockouts)
        k[f"spares.orders.{name}"] = float(stock.orders)
    k["spare_systems.used"] = float(wafers.swaps)
    k["spare_systems.stockouts"] = float(wafers.rma_waits)
    k["wafer.defect_cores"] = float(wafers.defect_cores)
    k["wafer.spare_cores_consumed"] = float(wafers.spare_cores_consumed)
    k["wafer.failed_for_cores"] = float(wafers.failed_for_cores)
    k["wafer.degraded_systems"] = float(np.count_nonzero(fleet.core_fraction < 1.0))
    k["repair.auto_fixed"] = float(shop.auto_fixed)
    k["repair.escalated"] = float(shop.escalated)
    k["repair.wrong_unit"] = float(shop.wrong_unit)
    k["repair.silent_failures"] = float(shop.silent)
    k["repair.crew_utilization"] = model.crews.utilization(horizon)
    return k
