"""The outdoor temperature, hour by hour, for the cooling chain and its energy.

Synthetic: ``mean + seasonal cos(2 pi (d - hottest_day) / 365) + diurnal
cos(2 pi (h - hottest_hour) / 24)`` at the middle of each hour (d the day of
the year as a real number, h the hour of the day), or the given hourly values
repeated; plus each heat wave's `rise` in the hours whose middle it covers.
Held constant within an hour, so the chillers' derating and COP change only
on the hour and energy integrals are exact sums.
"""

from __future__ import annotations

import math

import numpy as np

from twin.scenario import OutdoorSpec

__all__ = ["outdoor_hourly"]


def outdoor_hourly(spec: OutdoorSpec, horizon: float) -> np.ndarray:
    """Outdoor temperature (C) of each hour from 0 to past `horizon`."""
    hours = math.ceil(horizon) + 1
    middle = np.arange(hours, dtype=float) + 0.5
    if spec.hourly is not None:
        values = np.asarray(spec.hourly, dtype=float)
        out = values[np.arange(hours) % len(values)]
    else:
        day = middle / 24.0
        out = (
            spec.mean
            + spec.seasonal * np.cos(2 * math.pi * (day - spec.hottest_day) / 365.0)
            + spec.diurnal * np.cos(2 * math.pi * (middle % 24.0 - spec.hottest_hour) / 24.0)
        )
    for wave in spec.heat_waves:
        out = out + np.where((middle >= wave.start) & (middle < wave.start + wave.duration),
                             wave.rise, 0.0)
    return out
