"""Each tenant's request rate: piecewise constant per hour of the run.

Profiles (`serving.tenants.NAME.profile`): ``flat`` (requests_per_s at every
hour), ``diurnal`` (requests_per_s x hourly[hour of day] x weekly[day of
week]; the run starts at 0:00 on the first day of the week) and ``rates``
(the hourly rates of a CSV file, repeated when the run is longer). The rate
changes only on the hour, so demand adds one change an hour at most.
"""

from __future__ import annotations

import math

import numpy as np

from twin.scenario import TenantSpec

__all__ = ["hourly_rates", "rate_at"]


def hourly_rates(spec: TenantSpec, hours: int) -> np.ndarray:
    """Requests per second in each of the first `hours` hours of the run."""
    h = np.arange(hours)
    if spec.profile == "flat":
        return np.full(hours, spec.requests_per_s)
    if spec.profile == "diurnal":
        daily = np.asarray(spec.hourly)[h % 24]
        weekly = np.asarray(spec.weekly)[(h // 24) % 7]
        return spec.requests_per_s * daily * weekly
    rates = np.asarray(spec.rates, dtype=float)
    return rates[h % len(rates)]


def rate_at(spec: TenantSpec, t: float) -> float:
    """Requests per second at time `t` (hours since the start of the run)."""
    hour = math.floor(t)
    if spec.profile == "flat":
        return spec.requests_per_s
    if spec.profile == "diurnal":
        return spec.requests_per_s * spec.hourly[hour % 24] * spec.weekly[(hour // 24) % 7]
    rates = spec.rates or [0.0]
    return rates[hour % len(rates)]
