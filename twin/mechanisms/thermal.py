"""Wafer temperature: a first-order RC model solved in closed form between events.

Each system obeys ``C dT/dt = P - (T - T_in) / R``: between events,
``T(t) = T_ss + (T0 - T_ss) exp(-(t - t0) / (R C))`` with ``T_ss = T_in + P R``.
Each wafer starts at its steady state. Nothing is stepped: when an input
changes (power, thermal resistance, inlet) the state is advanced exactly to
now and the next threshold crossing is solved for and put on the agenda.

The governor: when a running system reaches the throttle threshold it sets
the power fraction that holds T at the threshold, ``(T_thr - T_in) / (R P)``,
but not below `min_power_fraction`; at that floor T may keep rising to the
trip threshold, which shuts the system down until it has cooled below the
restart threshold (then it boots). Throttling ends when an input change lets
full power settle `release_margin` below the threshold. A throttle or trip
is blamed on the component class whose factor on the resistance is the
largest at that moment, or on `thermal` when none holds.

Mechanisms that follow a system's temperature (stress-driven ageing, package
fatigue) register a hook in `on_update`: it is called with (system, temperature
now) at the end of every re-solve, so they see every change of its path.

The state of each system is kept in plain lists (read and written one
element at a time on every event; see `twin.fleet`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import simpy

from twin.agenda import Agenda
from twin.fleet import Fleet
from twin.scenario import ThermalSpec

__all__ = ["Thermal", "crossing_time", "temperature_at"]

# kinds of pending crossing
_THROTTLE, _TRIP, _HOLD, _COOLED = range(4)


def temperature_at(t: float, t0: float, T0: float, T_ss: float, tau: float) -> float:
    """Closed-form temperature at `t` of a first-order system settling to `T_ss`."""
    return T_ss + (T0 - T_ss) * math.exp(-(t - t0) / tau)


def crossing_time(T0: float, T_ss: float, level: float, tau: float) -> float:
    """Time from T0 until the response towards T_ss crosses `level`, or inf if never."""
    start, end = T0 - level, T_ss - level  # signs, not their product, which can underflow
    if start == 0.0 or end == 0.0 or (start > 0.0) == (end > 0.0):
        return math.inf
    ratio = (T_ss - T0) / end
    if math.isinf(ratio):  # the level a subnormal distance from the asymptote
        return tau * (math.log(abs(T_ss - T0)) - math.log(abs(end)))
    return tau * math.log(ratio)


class Thermal:
    """Temperatures, thermal resistances and the governor of every system."""

    def __init__(self, env: simpy.Environment, fleet: Fleet, spec: ThermalSpec) -> None:
        n = fleet.n
        self.env, self.fleet, self.spec = env, fleet, spec
        self._R, self._C = spec.resistance, spec.capacitance  # read on every re-solve
        self.t0: list[float] = [0.0] * n
        self.inlet: list[float] = [spec.inlet] * n
        self.heat: list[float] = [fleet.heat_kw(s) for s in range(n)]  # P since t0
        # The hall has been running: start each wafer at its steady state (capped at the
        # throttle threshold, where the governor then holds it) and solve from there.
        self.T0: list[float] = [
            min(T_in + P * spec.resistance, spec.throttle)
            for T_in, P in zip(self.inlet, self.heat, strict=True)
        ]
        self.factor: list[float] = [1.0] * n  # multiplier on the base thermal resistance
        self.inlet_cause: list[str] = [""] * n  # what raised the inlet (the facility's part)
        self._class_factor: dict[str, list[float]] = {}  # each class's multiplier
        self.throttled: list[bool] = [False] * n
        self._episode_start: list[float] = [0.0] * n  # current throttling episode: start,
        self._episode_lost: list[float] = [0.0] * n  # capacity lost so far (system-hours),
        self._episode_mark: list[float] = [0.0] * n  # and when the fraction last changed
        self._episode_cause = [""] * n
        self.throttle_events = 0
        self.trips = 0
        self._pending: list[int] = [_THROTTLE] * n
        self._level = {  # the threshold each kind of crossing is at
            _THROTTLE: spec.throttle, _TRIP: spec.trip, _HOLD: spec.throttle,
            _COOLED: spec.restart,
        }
        self._agenda = Agenda(env, self._cross)
        self._throttle = spec.throttle
        self._hottest = max(fleet.full_kw, fleet.idle_kw)  # the most heat a system gives off
        self._trip_bit = fleet.bit("thermal")
        fleet.on_heat_change = self.update
        # told (system, temperature now) after every re-solve of a system
        self.on_update: list[Callable[[int, float], None]] = []
        # A wafer at its steady state below the throttle threshold has nothing to govern
        # and never crosses a threshold: re-solving it would change nothing.
        for s in range(n):
            if self.T0[s] >= spec.throttle:
                self.update(s, advanced=True)

    # -- state -------------------------------------------------------------
    def _tau(self, s: int) -> float:
        """Time constant in hours: R [K/kW] x C [kJ/K] = seconds."""
        return self._R * self.factor[s] * self._C / 3600.0

    def steady(self, s: int) -> float:
        return self.inlet[s] + self.heat[s] * self._R * self.factor[s]

    def temperature(self, s: int) -> float:
        """Temperature of system `s` now: `temperature_at` with `steady` and `_tau`,
        written out (every event of a run reads it), the same arithmetic."""
        factor = self.factor[s]
        T_ss = self.inlet[s] + self.heat[s] * self._R * factor
        tau = self._R * factor * self._C / 3600.0
        return T_ss + (self.T0[s] - T_ss) * math.exp(-(self.env.now - self.t0[s]) / tau)

    def set_class_factor(self, s: int, name: str, factor: float) -> None:
        """Set the resistance multiplier that component class `name` imposes on `s`."""
        factors = self._class_factor.get(name)
        if factors is None:
            factors = self._class_factor[name] = [1.0] * self.fleet.n
        if factors[s] == factor:
            return
        factors[s] = factor
        self._advance(s)
        self.factor[s] = math.prod(f[s] for f in self._class_factor.values())
        self.update(s, advanced=True)

    def set_inlet(self, s: int, inlet: float, cause: str = "") -> None:
        """Set the coolant inlet temperature of `s` (the facility's cooling chain) and
        the part to blame for heat while it is above nominal (`cause`)."""
        self.inlet_cause[s] = cause
        if self.inlet[s] == inlet:
            return
        self._advance(s)
        self.inlet[s] = inlet
        self.update(s, advanced=True)

    def _advance(self, s: int) -> float:
        T = self.temperature(s)
        self.T0[s], self.t0[s] = T, self.env.now
        return T

    # -- governor ----------------------------------------------------------
    def update(self, s: int, advanced: bool = False) -> None:
        """Re-solve system `s` after an input changed (the fleet calls this on any
        change of state; the heat of the elapsed interval is the one held since t0).

        Most re-solves are of a cool system: below the throttle threshold, neither
        throttled nor tripped, with a steady state at any power it can draw at or
        below the threshold. It has nothing to govern (full power) and no crossing
        ahead: only its heat is brought up to date (every event of a run re-solves a
        system)."""
        T = self.T0[s] if advanced else self._advance(s)
        fleet = self.fleet
        reasons = fleet.reasons[s]
        # the hottest steady state in `steady`'s arithmetic (rounding is monotone: it
        # bounds the one the crossing would be solved for, to the last bit)
        if (
            T < self._throttle and not self.throttled[s] and not reasons & self._trip_bit
            and self.inlet[s] + self._hottest * self._R * self.factor[s] <= self._throttle
        ):
            if not reasons and not fleet.booting[s]:
                fleet.set_fraction(s, 1.0)
            self.heat[s] = fleet.heat_kw(s)
            self._agenda.cancel(s)
            for hook in self.on_update:
                hook(s, T)
            return
        if not reasons and not fleet.booting[s]:  # running
            self._govern(s, T)
        elif self.throttled[s]:
            self._release(s)
        self.heat[s] = fleet.heat_kw(s)
        self._schedule(s, T)
        for hook in self.on_update:
            hook(s, T)

    def _govern(self, s: int, T: float) -> None:
        spec, fleet = self.spec, self.fleet
        R = spec.resistance * self.factor[s]
        full_ss = self.inlet[s] + fleet.full_kw * R
        if not self.throttled[s]:
            if T < spec.throttle or full_ss <= spec.throttle:
                self._set_fraction(s, 1.0)
                return
            self._engage(s)
        if full_ss <= spec.throttle - spec.release_margin:
            self._release(s)
        elif T <= spec.throttle + 1e-9:  # engaged only if full_ss > throttle: full_kw > 0
            hold = (spec.throttle - self.inlet[s]) / (R * fleet.full_kw)
            self._set_fraction(s, max(spec.min_power_fraction, min(1.0, hold)))
        else:
            self._set_fraction(s, spec.min_power_fraction)

    def root_cause(self, s: int) -> str:
        """What to blame for heat at `s` now: the class whose factor on its resistance
        is the largest (on a tie, the class that set a factor first in the run), else
        the facility part that raised its inlet, else thermal."""
        cause, largest = self.inlet_cause[s] or "thermal", 1.0
        if self.factor[s] > 1.0:
            for name, factors in self._class_factor.items():
                if factors[s] > largest:
                    cause, largest = name, factors[s]
        return cause

    def throttle_cause(self, s: int) -> str:
        """The cause the throttling episode of `s` in progress is blamed on ("" if none)."""
        return self._episode_cause[s] if self.throttled[s] else ""

    def _set_fraction(self, s: int, fraction: float) -> None:
        """Set the governor's power fraction, booking the capacity a throttle costs."""
        if self.throttled[s]:
            now = self.env.now
            lost = self.fleet.cap[s] - self.fleet.fraction[s]  # a cap is not a throttle
            self._episode_lost[s] += lost * (now - self._episode_mark[s])
            self._episode_mark[s] = now
        self.fleet.set_fraction(s, fraction)

    def _engage(self, s: int) -> None:
        now = self.env.now
        self.throttled[s] = True
        self.throttle_events += 1
        self._episode_start[s] = self._episode_mark[s] = now
        self._episode_lost[s] = 0.0
        self._episode_cause[s] = self.root_cause(s)

    def _release(self, s: int) -> None:
        """End the throttling episode: one ``throttle`` event at its start whose value
        is the capacity it cost (system-hours at full power)."""
        self._set_fraction(s, 1.0)
        self.throttled[s] = False
        self.fleet.recorder.emit(
            self._episode_start[s], self.fleet.scopes[s], "throttle",
            self._episode_cause[s], self._episode_lost[s],
        )

    def close(self) -> None:
        """Book the throttling episodes still open at the end of the run."""
        for s in [s for s, throttled in enumerate(self.throttled) if throttled]:
            self._release(s)

    def _schedule(self, s: int, T: float) -> None:
        spec, reasons = self.spec, self.fleet.reasons[s]
        tripped = reasons & self._trip_bit
        if not tripped and (reasons or self.fleet.booting[s]):
            self._agenda.cancel(s)  # down: nothing to cross until it runs again
            return
        T_ss = self.steady(s)
        if tripped:
            kind, level = _COOLED, spec.restart
        elif not self.throttled[s]:
            kind, level = _THROTTLE, spec.throttle
        elif T_ss > spec.throttle + 1e-9:
            kind, level = _TRIP, spec.trip
        else:
            kind, level = _HOLD, spec.throttle
        dt = crossing_time(T, T_ss, level, self._tau(s))
        if dt == math.inf:
            self._agenda.cancel(s)
        else:
            self._pending[s] = kind
            self._agenda.schedule(s, self.env.now + dt)

    def _cross(self, s: int) -> None:
        kind = self._pending[s]
        fleet = self.fleet
        level = self._level[kind]
        self.T0[s], self.t0[s] = level, self.env.now
        if kind == _TRIP:
            self.trips += 1
            cause = self.root_cause(s)
            fleet.recorder.emit(self.env.now, fleet.scopes[s], "trip", cause)
            fleet.add_reason(s, self._trip_bit, cause)  # calls update via the fleet
        elif kind == _COOLED:
            fleet.clear_reason(s, self._trip_bit)  # boots, or stays down for other reasons
        else:
            self.update(s, advanced=True)
