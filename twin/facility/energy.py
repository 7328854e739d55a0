"""Facility energy and PUE, integrated exactly after the run, hour by hour.

IT energy per hour comes from the fleet's change log (exact integrals of a
piecewise-constant power, `twin.metrics`), pump energy from the log of running
CDU pumps. The chillers reject the IT heat and the pumps' heat at the hour's
COP, 1 / COP = (1 / `cop`) (1 + `cop_slope` (T_out - `cop_reference`)), with
the outdoor temperature constant within the hour, so each hour's chiller
energy is (IT + pumps) / COP exactly. Dry coolers have no COP: their fans
draw `fan_power` per unit-equivalent of that heat at the hour's capacity
(heat / (`capacity` x the hour's share, `twin.facility.rejection_share`)),
at most `count` units at full speed (a fan's power grows faster than its
airflow, so this linear law is generous at part load and exact at full
load). Distribution and UPS losses are fixed
shares of IT power. Facility = IT + chillers + pumps + losses, hour by hour
and for the run; PUE = facility / IT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.facility.cooling import rejection_share
from twin.metrics import bucket_edges, bucket_integrals
from twin.records import MetricSeries
from twin.scenario import FacilitySpec

__all__ = ["FacilityEnergy", "facility_energy"]


@dataclass(frozen=True)
class FacilityEnergy:
    """kWh of each hour of the run (the last hour may be partial)."""

    it: np.ndarray
    chillers: np.ndarray
    pumps: np.ndarray
    losses: np.ndarray
    edges: np.ndarray

    @property
    def facility(self) -> np.ndarray:
        return self.it + self.chillers + self.pumps + self.losses

    def kpis(self) -> dict[str, float]:
        it = float(self.it.sum())
        facility = float(self.facility.sum())
        return {
            "energy.facility_mwh": facility / 1000.0,
            "energy.cooling_mwh": float(self.chillers.sum() + self.pumps.sum()) / 1000.0,
            "energy.losses_mwh": float(self.losses.sum()) / 1000.0,
            "facility.pue": facility / it if it > 0.0 else math.nan,
        }

    def series(self, horizon: float) -> list[MetricSeries]:
        """Hourly PUE and facility power of the hall."""
        lengths = np.diff(self.edges)
        with np.errstate(invalid="ignore", divide="ignore"):
            pue = np.where(self.it > 0.0, self.facility / self.it, math.nan)
        return [
            MetricSeries("hall", "pue", 0.0, 1.0, horizon, tuple(pue.tolist())),
            MetricSeries("hall", "facility_power_kw", 0.0, 1.0, horizon,
                         tuple((self.facility / lengths).tolist())),
        ]


def facility_energy(
    spec: FacilitySpec,
    outdoor: np.ndarray,
    it_log: tuple[np.ndarray, np.ndarray],
    pump_log: tuple[np.ndarray, np.ndarray],
    horizon: float,
) -> FacilityEnergy:
    """Hourly energy of a run from its IT power and running-pump logs, (t, delta) each."""
    edges = bucket_edges(horizon, 1.0)

    def hourly(log: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        t, delta = log
        return bucket_integrals(t, np.zeros(len(t), np.int64), delta, 1, edges)[0]

    it = hourly(it_log)
    pumps = hourly(pump_log) * spec.cooling.cdu.pump_power
    chillers_spec = spec.cooling.chillers
    temps = outdoor[: len(it)]
    if chillers_spec.kind == "dry_cooler":
        lengths = np.diff(edges)
        per_unit = chillers_spec.capacity * rejection_share(chillers_spec, temps) * lengths
        with np.errstate(divide="ignore", invalid="ignore"):
            units = np.where(per_unit > 0.0, (it + pumps) / per_unit, math.inf)
        chillers = np.minimum(units, chillers_spec.count) * chillers_spec.fan_power * lengths
    else:
        inverse_cop = (1.0 + chillers_spec.cop_slope * (temps - chillers_spec.cop_reference)) / (
            chillers_spec.cop
        )
        chillers = (it + pumps) * np.maximum(inverse_cop, 0.0)
    losses = it * (spec.distribution_loss + spec.ups_loss)
    return FacilityEnergy(it, chillers, pumps, losses, edges)
