"""The KPIs of one run, as a flat dict of dotted names (see docs/kpis.md).

Time-weighted quantities come from the exact integrals of the fleet's change
log; counts and repair times from the mechanisms' own tallies. Every KPI a
scenario can have is present in every run of it, zeros included (a cause
that never struck has `downtime_h` and `outages` 0; a mean with nothing to
average is NaN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from twin.engine import Model
    from twin.facility import FacilityEnergy
    from twin.workloads.serving.core import Outcome

__all__ = ["collect_kpis", "causes"]

# Causes of downtime besides the component classes: a failed wafer, a core remap
# (a wafer-scale hall's), a thermal trip that no class's factor explains. With
# package fatigue on, also a cracked package (`package`).
MECHANISM_CAUSES = ("wafer", "cores", "thermal")
WAFER_CAUSES = ("wafer", "cores")


def causes(classes: Sequence[str], package: bool = False, wafer: bool = True) -> list[str]:
    """Every cause an outage of a hall with component `classes` (and package fatigue,
    when `package`; a wafer, when `wafer`: not on GPU nodes) can have."""
    mechanisms = [c for c in MECHANISM_CAUSES if wafer or c not in WAFER_CAUSES]
    return [*classes, *mechanisms, *(("package",) if package else ())]


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def collect_kpis(
    model: Model,
    horizon: float,
    integrals: dict[str, float],
    serving: Outcome | None = None,
    energy: FacilityEnergy | None = None,
) -> dict[str, float]:
    """Every KPI of a finished run (``availability``, ``failures.psu``, ...; with
    serving, ``serving.*`` from its `Outcome`)."""
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
    names = [cls.name for cls in model.classes]
    package = model.package
    every_cause = causes(names, package is not None, wafers is not None)
    for cls in model.classes:
        k[f"failures.{cls.name}"] = float(cls.failures)
    if wafers is not None:
        k["failures.wafer"] = float(wafers.failures)
        k["failures.cores"] = float(wafers.core_events)
    if package is not None and wafers is not None:
        k["failures.package"] = float(wafers.failed_package)
        k["package.cycles"] = float(package.cycles)
        k["package.damage_mean"] = _mean(package.damage)
        k["package.damage_max"] = max(package.damage)
    for cls in model.classes:
        if cls.clock is not None and cls.spec.arrhenius is not None:
            k[f"ageing.af_mean.{cls.name}"] = cls.clock.mean_factor(horizon)
    # restores: completed means; those still open at the end, their count and mean age
    for name in names:
        k[f"mttr_h.{name}"] = shop.mttr(name)
        k[f"mttr_auto_h.{name}"] = shop.mttr(name, manual=False)
        k[f"mttr_manual_h.{name}"] = shop.mttr(name, manual=True)
    if wafers is not None:
        k["mttr_h.wafer"] = _mean(wafers.swap_hours)
    for name in names:
        ages = shop.open_ages(name)
        k[f"open_restores.{name}"] = float(len(ages))
        k[f"open_age_h.{name}"] = _mean(ages)
    if wafers is not None:
        swap_ages = [horizon - t for t in wafers.swap_started.values()]
        k["open_restores.wafer"] = float(len(swap_ages))
        k["open_age_h.wafer"] = _mean(swap_ages)
    facility = model.power.causes() if model.power is not None else []
    facility += model.cooling.causes() if model.cooling is not None else []
    every = sorted({*every_cause, *facility, *fleet.downtime_by_cause, *fleet.outages_by_cause})
    for cause in every:
        k[f"downtime_h.{cause}"] = fleet.downtime_by_cause.get(cause, 0.0)
    for cause in every:
        k[f"outages.{cause}"] = float(fleet.outages_by_cause.get(cause, 0))
    thermal = model.thermal
    k["thermal.throttle_events"] = float(thermal.throttle_events)
    k["thermal.throttle_h"] = integrals["throttled"]
    k["thermal.trips"] = float(thermal.trips)
    k["thermal.trip_h"] = integrals["tripped"]
    for name, stock in model.stock.items():
        k[f"spares.used.{name}"] = float(stock.used)
        k[f"spares.stockouts.{name}"] = float(stock.stockouts)
        k[f"spares.orders.{name}"] = float(stock.orders)
    if wafers is not None:
        k["spare_systems.used"] = float(wafers.swaps)
        k["spare_systems.stockouts"] = float(wafers.rma_waits)
        k["wafer.defect_cores"] = float(wafers.defect_cores)
        k["wafer.spare_cores_consumed"] = float(wafers.spare_cores_consumed)
        k["wafer.failed_for_cores"] = float(wafers.failed_for_cores)
        k["wafer.degraded_systems"] = float(sum(f < 1.0 for f in fleet.core_fraction))
    k["repair.auto_fixed"] = float(shop.auto_fixed)
    k["repair.escalated"] = float(shop.escalated)
    k["repair.wrong_unit"] = float(shop.wrong_unit)
    k["repair.silent_failures"] = float(shop.silent)
    k["repair.auto_silent_failures"] = float(shop.auto_silent)
    k["repair.crew_utilization"] = model.crews.utilization(horizon)
    if model.power is not None:
        k.update(model.power.kpis())
    if model.cooling is not None:
        k.update(model.cooling.kpis())
        k["facility.capped_systems"] = float(model.capped)
    if energy is not None:
        k.update(energy.kpis())
    if model.training is not None:
        k.update(model.training.kpis(horizon, every))
    if model.serving is not None and serving is not None:
        from twin.workloads.serving.core import outcome_kpis
        from twin.workloads.serving.replicas import CAP

        slowed = [CAP] if model.capped else []  # a cap slows systems, downs none
        k.update(outcome_kpis(model.serving, serving, [*every_cause, *facility, *slowed],
                              horizon, integrals["power_kw"]))
    return k
