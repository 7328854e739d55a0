"""Stress-driven ageing: Arrhenius temperature acceleration of a failure clock.

A component class with an ``arrhenius`` table ages on a virtual clock per
system that runs at the acceleration factor

    AF(T) = exp(Ea / k (1 / T_ref - 1 / T))      (T, T_ref in kelvin)

of the system's *wafer temperature* T as the thermal model gives it (the
temperature its pumps and fans work next to; a hotter inlet, a weaker pump or
a throttled system all show in it). The class's failure law holds at T_ref:
lives and residual lives are drawn in virtual hours, so a unit installed at
virtual time v fails when the clock reaches v + life, and per-unit renewal
stays exact. Its wall-clock failure time is now + (residual virtual life) / AF.

Nothing is polled: the thermal model re-solves a system on every change of
its heat, resistance or inlet (`Thermal.on_update`); the clock is then
advanced to now, AF set anew, and if it changed the class reschedules every
working unit of the system from its residual virtual life.

Approximation: between two re-solves the temperature follows the RC path
T(t) = T_ss + (T0 - T_ss) exp(-t / tau); the clock uses AF(T_ss), the
temperature the system settles to, for the whole interval (piecewise
constant). Over one interval the virtual age it gains is off by at most
``tau |T0 - T_ss| max AF'`` (`interval_error_bound`), AF' = AF Ea / (k T^2)
taken over [T0, T_ss]: the integrand differs from AF(T_ss) by at most that
slope times |T0 - T_ss| exp(-t / tau), whose integral is below tau |T0 - T_ss|.
In the default hall (tau = 6 min) a cold outage (71 C to 30 C) with
Ea = 0.7 eV is off by under 0.3 virtual hours, against lives of 1e5 hours.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import simpy

from twin.mechanisms.thermal import Thermal
from twin.scenario import ArrheniusSpec

__all__ = ["BOLTZMANN_EV", "KELVIN", "acceleration", "interval_error_bound", "VirtualClock"]

BOLTZMANN_EV = 8.617333262e-5  # eV/K (CODATA 2018, exact in the 2019 SI)
KELVIN = 273.15  # 0 C in kelvin


def acceleration(T: float, spec: ArrheniusSpec) -> float:
    """AF at wafer temperature `T` (C) for a class with activation energy and
    reference temperature `spec`."""
    c = spec.activation_energy / BOLTZMANN_EV
    return math.exp(c * (1.0 / (spec.reference_temperature + KELVIN) - 1.0 / (T + KELVIN)))


def interval_error_bound(T0: float, T_ss: float, tau: float, spec: ArrheniusSpec) -> float:
    """Bound on |virtual hours gained - integral of AF| over one interval of any
    length that starts at `T0` and settles towards `T_ss` with time constant `tau` (h)."""
    c = spec.activation_energy / BOLTZMANN_EV

    def slope(T: float) -> float:  # AF' = AF c / T^2, T in kelvin
        return acceleration(T, spec) * c / (T + KELVIN) ** 2

    # AF' rises up to T = c / 2 (kelvin) and falls after: its largest value on the
    # interval is at an end, or at c / 2 when that lies inside
    lo, hi = sorted((T0, T_ss))
    peak = c / 2.0 - KELVIN
    largest = slope(peak) if lo < peak < hi else max(slope(lo), slope(hi))
    return tau * abs(T0 - T_ss) * largest


class VirtualClock:
    """Virtual hours of one accelerated class in every system:
    V_s(now) = v[s] + (now - t[s]) af[s], af[s] = AF at the temperature `s` settles to."""

    def __init__(
        self,
        env: simpy.Environment,
        thermal: Thermal,
        spec: ArrheniusSpec,
        on_change: Callable[[int], None],
    ) -> None:
        self.env, self.thermal, self.spec = env, thermal, spec
        self._on_change = on_change
        n = thermal.fleet.n
        self.v: list[float] = [0.0] * n
        self.t: list[float] = [0.0] * n
        self.af: list[float] = [acceleration(thermal.steady(s), spec) for s in range(n)]
        thermal.on_update.append(self._retemper)

    def now(self, s: int) -> float:
        """Virtual hours of system `s` now."""
        return self.v[s] + (self.env.now - self.t[s]) * self.af[s]

    def _retemper(self, s: int, _T: float) -> None:
        af = acceleration(self.thermal.steady(s), self.spec)
        if af == self.af[s]:
            return
        now = self.env.now
        self.v[s] += (now - self.t[s]) * self.af[s]
        self.t[s] = now
        self.af[s] = af
        self._on_change(s)

    def mean_factor(self, horizon: float) -> float:
        """Time-weighted mean AF over the systems and the run up to `horizon`."""
        if horizon <= 0.0:
            return math.nan
        total = sum(
            v + (horizon - t) * af for v, t, af in zip(self.v, self.t, self.af, strict=True)
        )
        return total / (len(self.v) * horizon)
