"""Clocks that are not the wall clock: Arrhenius acceleration, and working time.

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

Working time (``[training] ageing = "while_running"``, docs/model.md): the
same clock stands still (rate 0) in a system that does not run the job, so
a unit's life is used up only while its system works; when a system starts
or stops working its units are rescheduled from their residual virtual
lives, exactly as for a change of AF. `Working` holds which systems work
and tells every clocked mechanism (the component classes; the wafers, whose
core-failure and outright-failure clocks run at 1 while working).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import simpy

from twin.mechanisms.thermal import Thermal
from twin.scenario import ArrheniusSpec

__all__ = [
    "BOLTZMANN_EV", "KELVIN", "acceleration", "interval_error_bound", "VirtualClock", "Working",
]

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
    """Virtual hours of one clocked mechanism in every system:
    V_s(now) = v[s] + (now - t[s]) rate[s], with rate[s] = af[s] while `s` works and 0
    while it does not. af[s] is the Arrhenius factor at the temperature `s` settles to
    (`follow` a class's table), 1 without one. A clock made `working=False` stands
    still in every system until `set_working` starts it (ageing = "while_running")."""

    def __init__(
        self,
        env: simpy.Environment,
        n: int,
        on_change: Callable[[int], None],
        *,
        working: bool = True,
    ) -> None:
        self.env = env
        self._on_change = on_change
        self.v: list[float] = [0.0] * n
        self.t: list[float] = [0.0] * n
        self.af: list[float] = [1.0] * n
        self.working: list[bool] = [working] * n
        self.rate: list[float] = [1.0 if working else 0.0] * n
        self._af_hours: list[float] = [0.0] * n  # integral of af up to t[s]
        self._thermal: Thermal | None = None
        self._spec: ArrheniusSpec | None = None

    def follow(self, thermal: Thermal, spec: ArrheniusSpec) -> VirtualClock:
        """Run at the Arrhenius factor of `spec` at each system's wafer temperature, from
        the start (t = 0)."""
        self._thermal, self._spec = thermal, spec
        self.af = [acceleration(thermal.steady(s), spec) for s in range(len(self.af))]
        self.rate = [a if w else 0.0 for a, w in zip(self.af, self.working, strict=True)]
        thermal.on_update.append(self._retemper)
        return self

    def now(self, s: int) -> float:
        """Virtual hours of system `s` now."""
        return self.v[s] + (self.env.now - self.t[s]) * self.rate[s]

    def set_working(self, s: int, working: bool) -> None:
        """System `s` starts or stops working: its clock runs or stands still."""
        if working != self.working[s]:
            self._set(s, self.af[s], working)

    def _retemper(self, s: int, _T: float) -> None:
        assert self._thermal is not None and self._spec is not None
        af = acceleration(self._thermal.steady(s), self._spec)
        if af != self.af[s]:
            self._set(s, af, self.working[s])

    def _set(self, s: int, af: float, working: bool) -> None:
        """Advance `s` to now at its old rate, then take the new one; tell the owner
        when the rate changed (its pending failures are due at other times)."""
        elapsed = self.env.now - self.t[s]
        self.v[s] += elapsed * self.rate[s]
        self._af_hours[s] += elapsed * self.af[s]
        self.t[s] = self.env.now
        self.af[s], self.working[s] = af, working
        rate = af if working else 0.0
        if rate != self.rate[s]:
            self.rate[s] = rate
            self._on_change(s)

    def mean_factor(self, horizon: float) -> float:
        """Time-weighted mean AF over the systems and the run up to `horizon` (whether
        they worked or not)."""
        if horizon <= 0.0:
            return math.nan
        total = sum(
            a + (horizon - t) * af
            for a, t, af in zip(self._af_hours, self.t, self.af, strict=True)
        )
        return total / (len(self.v) * horizon)


class Working:
    """Which systems work (run the training job) under ageing = "while_running", told
    to every mechanism whose clocks stand still while a system does not work (the
    component classes and the wafers: `set_working`). Every system starts idle."""

    def __init__(self, n: int, listeners: list[Callable[[int, bool], None]]) -> None:
        self.working: list[bool] = [False] * n
        self._listeners = listeners

    def set(self, s: int, working: bool) -> None:
        """System `s` joined (True) or left (False) the work."""
        if working == self.working[s]:
            return
        self.working[s] = working
        for listener in self._listeners:
            listener(s, working)
