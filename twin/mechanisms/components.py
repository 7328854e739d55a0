"""Failures of one component class (PSUs, pumps, fans) across the whole hall.

Every unit keeps its own install time and draws its own next failure: a new
unit draws a fresh lifetime, a unit that was only reset draws its residual
life at its age, so a Weibull or lognormal population renews correctly. A
fraction `bad_fraction` of units belong to a bad subpopulation whose clock
runs `bad_factor` times faster; a new unit's lot is drawn from the mix again,
unless `fix_bad_probability` is given: then the bad units are positions that
a crew's replacement clears with that probability (a good one stays good),
and only a swapped-in system draws new lots. A system runs while at least `required` of
its `count` units are up. A class with a `failover` transient (the internal
pumps) multiplies the thermal resistance by `failover_factor` for the
failover time when a load-carrying unit fails; while any unit is down the
resistance carries `thermal_factor`.

Failover: `required` of the units that are up carry the load and the others
stand by, every up unit as likely as any other to be carrying it; so a
failure that leaves the system running hits a load-carrying unit (and
starts a transient) with probability ``required / up``, `up` counted just
before the failure (1/2 for 1+1 with both up).

Starting age (`hall.start_age`): "new" installs every unit at t = 0; a
fixed age makes every unit a survivor of that age; "steady" draws each
unit's age from the stationary law of its renewal process, so failure
rates are at equilibrium from the first hour. A unit's age is the time
since it was installed: an automated fix is a minimal repair and leaves
it, a replacement (an escalated fault, a mistaken replacement, a swap)
starts it again. Failures then follow the unit's hazard through automated
fixes, and a fraction p of them replace it (`replaced_share`:
`escalate_probability`, or more with silent automated fixes), so a
unit survives to age a unreplaced with probability S(a)^p and the
stationary age has density S(a)^p / integral S^p (S(a) / mean for p = 1,
the forward-recurrence law). A bad unit's cycle is `bad_factor` times
shorter, so a random moment finds a bad unit with probability
(f / b) / (f / b + 1 - f) and its age is the good law's divided by b.
Repair durations, mistaken replacements and swaps are left out of the
stationary law (they are short or rare next to lives). A class that never
escalates (p = 0) has no stationary age and starts new.

Temperature (`arrhenius` table): the class's clock is the virtual clock of
`twin.mechanisms.ageing`, per system, running at the Arrhenius factor of the
wafer temperature; install times, ages and lives are in its virtual hours,
and a working unit's failure is rescheduled whenever the factor changes.
Working time (`while_running`, from ``[training] ageing``): the same clock
stands still in a system that does not work (`set_working`), so its units
neither age nor fail. Without either the clock is the wall clock.

An automated fix that silently failed restores the unit with a failure due
`detection_delay` later on its clock (`restore(..., fails_after=...)`): the
fault shows again, a failure like any other.

Streams: ``components.<class>.life`` (lives; at the start, the residual
lives of units of a given age), ``.residual`` (the residual lives of units
an automated fix leaves at their age: a stream of its own, so that each
stream makes one kind of draw and serves it from blocks, `twin.rng`), ``.lot``
(bad-lot membership), ``.fix_bad`` (whether a replacement clears a bad
position), ``.age`` (starting ages), ``.failover`` (whether a failure hits a
load-carrying unit) and ``.failover_time``.

Listeners (`on_change`): functions of a system index called after one of its
units fails, is restored or is renewed, once the class has updated its own
reason (the facility's power chain re-reads a system's PSUs there). Empty
unless a layer registers one.

Up flags and the per-system counters are plain lists: every failure and
restore reads and writes single elements (see `twin.fleet`). Install times
and lots stay arrays: they are drawn for the whole hall at the start, and
read only when a unit is restored; as lists of floats they would take four
times the memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import simpy

from twin.agenda import Agenda
from twin.distributions import Deterministic, Exponential, Lognormal, Weibull
from twin.fleet import Fleet
from twin.mechanisms.ageing import VirtualClock
from twin.mechanisms.repair import RepairShop, RepairStreams
from twin.mechanisms.thermal import Thermal
from twin.rng import Streams
from twin.scenario import ComponentSpec, StartAge

__all__ = ["ComponentClass", "stationary_ages", "MAX_AGE"]


# The oldest starting age (hours, ~100 million years): a class that is almost never
# renewed (p near 0) would otherwise draw ages that overflow.
MAX_AGE = 1e12


def stationary_ages(
    dist: object, rng: np.random.Generator, n: int, replaced: float
) -> np.ndarray:
    """`n` ages (hours, accel = 1) from the density S(a)^p / integral S^p of `dist`'s
    survival S, p = `replaced` the share of failures that renew the unit (with p = 0
    a unit is never renewed by its own faults and has no stationary age: it starts
    new, which for an exponential life is the same). Capped at MAX_AGE."""
    p = replaced
    if p == 0.0:
        return np.zeros(n)
    log_p = math.log(p)
    if isinstance(dist, Exponential):
        ages = rng.exponential(1.0, n) * math.exp(min(math.log(dist.mean_) - log_p, 700.0))
    elif isinstance(dist, Weibull):  # S^p is a Weibull of scale s p^(-1/k): a = s' G^(1/k)
        k = dist.shape
        with np.errstate(over="ignore"):
            ages = np.exp(math.log(dist.scale) + (np.log(rng.gamma(1.0 / k, 1.0, n)) - log_p) / k)
    elif isinstance(dist, Deterministic):  # a minimal repair restarts the life: only phase counts
        ages = rng.random(n) * dist.value
    elif isinstance(dist, Lognormal):  # invert the cumulative integral of S^p numerically
        from scipy.special import log_ndtr

        top = min(12.0 / math.sqrt(min(p, 1.0)) + 4.0, math.log(MAX_AGE / dist.median) / dist.sigma)
        z = np.linspace(-12.0, max(top, 0.0), 20_001)
        x = dist.median * np.exp(dist.sigma * z)
        density = np.exp(p * log_ndtr(-z)) * dist.sigma * x  # S^p dx/dz
        cumulative = np.concatenate(([0.0], np.cumsum((density[1:] + density[:-1]) / 2.0)))
        ages = np.interp(rng.random(n) * cumulative[-1], cumulative, x)
    else:
        raise TypeError(f"no stationary age for {dist!r}")
    return np.minimum(ages, MAX_AGE)


class ComponentClass:
    """All units of one class: failure agenda, up flags, install times, k-of-n state."""

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        spec: ComponentSpec,
        fleet: Fleet,
        thermal: Thermal,
        shop: RepairShop,
        *,
        streams: Streams,
        start_age: StartAge = "new",
        while_running: bool = False,
    ) -> None:
        self.env, self.name, self.spec = env, name, spec
        self.fleet, self.thermal, self.shop = fleet, thermal, shop
        self._life = streams[f"components.{name}.life"]
        self._residual = streams[f"components.{name}.residual"]
        self._lot_rng = streams[f"components.{name}.lot"]
        if spec.failover is not None:  # (a stream takes ~70 us to make: only if drawn)
            self._failover_rng = streams[f"components.{name}.failover"]
            self._failover_time = streams[f"components.{name}.failover_time"]
        self._fix_bad_rng = (
            None if spec.fix_bad_probability is None else streams[f"components.{name}.fix_bad"]
        )
        self.repair_streams = RepairStreams(streams, name)
        self.count = spec.count
        self.escalate_probability = spec.escalate_probability
        n_units = fleet.n * spec.count
        self.up: list[bool] = [True] * n_units
        self.down: list[int] = [0] * fleet.n  # units down per system
        self.in_failover: list[int] = [0] * fleet.n  # failover transients under way
        self.failures = 0
        self.replaced = 0
        self.bit = fleet.bit(name)
        self.on_change: list[Callable[[int], None]] = []  # called with s after a unit changes
        self._tolerated = spec.count - spec.required
        # the class changes the thermal resistance (`_thermal`) while a unit is down
        self._heats = spec.thermal_factor != 1.0 or spec.failover is not None
        self._agenda = Agenda(env, self._fail)
        # the Arrhenius or working clock, and each unit's failure time on it (virtual hours)
        self.clock: VirtualClock | None = None
        self._due: list[float] = []
        self.installed, self.accel, lives = self._start(n_units, start_age, streams)
        if spec.arrhenius is None and not while_running:
            self._agenda.schedule_many(range(n_units), lives)
        else:  # virtual hours start at 0 with the run; idle systems' clocks stand still
            self.clock = VirtualClock(env, fleet.n, self._retime, working=not while_running)
            if spec.arrhenius is not None:
                self.clock.follow(thermal, spec.arrhenius)
            self._due = lives.tolist()
            rate = np.repeat(self.clock.rate, spec.count)
            running = np.flatnonzero(rate > 0.0)
            self._agenda.schedule_many(running.tolist(), lives[running] / rate[running])

    def _start(
        self, n: int, start_age: StartAge, streams: Streams
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Install times, clock speeds and first failure times of the `n` units at t = 0."""
        spec = self.spec
        if start_age == "new":
            accel = self._lot(n)
            return np.zeros(n), accel, spec.failure.sample(self._life, accel)
        if start_age == "steady":
            f, b = spec.bad_fraction, spec.bad_factor
            # bad units drawn from the mix at every replacement are found in proportion
            # to their time in service; bad positions that repairs clear, as given
            steady_share = (f / b) / (f / b + 1.0 - f) if f > 0.0 else 0.0
            accel = self._lot(n, f if spec.fix_bad_probability is not None else steady_share)
            ages = stationary_ages(
                spec.failure, streams[f"components.{self.name}.age"], n,
                self.replaced_share(),
            ) / accel
        else:
            accel = self._lot(n)
            ages = np.full(n, float(start_age))
        return -ages, accel, spec.failure.residual(self._life, ages, accel)

    def replaced_share(self) -> float:
        """The share of a unit's faults that end in its replacement: escalated ones,
        p = `escalate_probability`; with automated fixes that silently fail (q), a fault
        goes through a geometric number of automated attempts, each escalating with p
        and ending it unescalated with (1 - p)(1 - q): p / (1 - (1 - p) q). A class that
        never escalates is never replaced (0, also when every fix is silent: q = 1)."""
        p, q = self.escalate_probability, self.shop.spec.auto_silent_failure_probability
        return p / (1.0 - (1.0 - p) * q) if p > 0.0 else 0.0

    def _lot(self, n: int, bad_fraction: float | None = None) -> np.ndarray:
        """Clock speed of `n` units: `bad_factor` for those from the bad lot (a share
        `bad_fraction`, by default the new units' one)."""
        spec = self.spec
        f = spec.bad_fraction if bad_fraction is None else bad_fraction
        return np.where(self._lot_rng.random(n) < f, spec.bad_factor, 1.0)

    def _lot_of_one(self) -> float:
        """`_lot` of one new unit, as a float: the same draw, without arrays."""
        spec = self.spec
        return spec.bad_factor if self._lot_rng.random() < spec.bad_fraction else 1.0

    def _now(self, s: int) -> float:
        """The class's clock in system `s`: wall hours, or virtual hours with `arrhenius`."""
        return self.env.now if self.clock is None else self.clock.now(s)

    def _schedule(self, unit: int, life: float) -> None:
        """`unit` fails `life` hours of its clock from now (never while it stands still)."""
        clock, now = self.clock, self.env.now
        if clock is None:
            self._agenda.schedule(unit, now + life)
            return
        s = unit // self.count
        self._due[unit] = clock.now(s) + life
        rate = clock.rate[s]
        if rate > 0.0:
            self._agenda.schedule(unit, now + life / rate)
        else:
            self._agenda.cancel(unit)

    def _retime(self, s: int) -> None:
        """The clock of `s` changed speed (its Arrhenius factor, or it started or stopped
        working): each working unit fails when its residual virtual life has run at
        the new rate, and not at all while the clock stands still."""
        clock, now = self.clock, self.env.now
        assert clock is not None
        virtual, rate = clock.now(s), clock.rate[s]
        first = s * self.count
        for unit in range(first, first + self.count):
            if not self.up[unit]:
                continue
            if rate > 0.0:
                self._agenda.schedule(unit, now + (self._due[unit] - virtual) / rate)
            else:
                self._agenda.cancel(unit)

    def set_working(self, s: int, working: bool) -> None:
        """System `s` started or stopped working (ageing = "while_running"): its units'
        clock runs or stands still."""
        assert self.clock is not None, "a class built with while_running"
        self.clock.set_working(s, working)

    def _install(self, units: list[int], replacing: bool = True) -> list[float]:
        """New units go in at `units` (of one system): their clocks start now; returns
        their lives. Their lot is drawn afresh from the mix, unless `replacing` units in
        place with `fix_bad_probability` given: then a good position stays good and a
        bad one is cleared with that probability."""
        now = self._now(units[0] // self.count)
        fix, rng = self.spec.fix_bad_probability, self._fix_bad_rng
        in_place = replacing and fix is not None and rng is not None
        if len(units) == 1 and not in_place:  # a replacement: the same draws, no list index
            [unit] = units
            self.installed[unit] = now
            accel = self.accel[unit] = self._lot_of_one()
            return [self.spec.failure.draw(self._life, accel)]
        self.installed[units] = now
        if in_place:
            assert rng is not None and fix is not None
            for unit in units:
                if self.accel[unit] > 1.0 and rng.random() < fix:
                    self.accel[unit] = 1.0
        else:
            self.accel[units] = self._lot(len(units))
        lives: list[float] = self.spec.failure.sample(self._life, self.accel[units]).tolist()
        return lives

    def unit_scope(self, unit: int) -> str:
        s, u = divmod(unit, self.count)
        return f"{self.fleet.scopes[s]}.{self.name}{u + 1}"

    def repair_hours(self) -> float:
        return self.spec.repair.draw(self.repair_streams.repair_time)

    # -- failure and restore -------------------------------------------------
    def _fail(self, unit: int) -> None:
        s = unit // self.count
        self.up[unit] = False
        self.down[s] += 1
        self.failures += 1
        if self.fleet.recorder.enabled:
            self.fleet.recorder.emit(self.env.now, self.unit_scope(unit), "failure", self.name)
        if self.down[s] > self._tolerated:
            self.fleet.add_reason(s, self.bit, self.name)
            if self.down[s] == self._tolerated + 1:
                self.shop.system_down(s)
        elif self.spec.failover is not None and (
            self._failover_rng.random() * (self.count - self.down[s] + 1) < self.spec.required
        ):
            self.in_failover[s] += 1
            delay = self.spec.failover.draw(self._failover_time)
            generation = self.fleet.generation[s]
            self.env.timeout(delay).callbacks.append(
                lambda _ev: self._failover_done(s, generation)
            )
        if self._heats:
            self._thermal(s)
        for listener in self.on_change:
            listener(s)
        self.shop.start(self, self.spec.part, s, unit)

    def _failover_done(self, s: int, generation: int) -> None:
        if self.fleet.generation[s] == generation:
            self.in_failover[s] -= 1
            self._thermal(s)

    def restore(self, unit: int, renewed: bool, fails_after: float | None = None) -> None:
        """The unit works again: renewed (a new unit) or reset at its age; or, given
        `fails_after`, it only looks fixed and fails again that long after (on its clock)."""
        s = unit // self.count
        if fails_after is not None:
            life = fails_after
        elif renewed:
            [life] = self._install([unit])
        else:
            age = float(self._now(s) - self.installed[unit])
            life = self.spec.failure.draw_residual(self._residual, age, float(self.accel[unit]))
        self._schedule(unit, life)
        self.up[unit] = True
        self.down[s] -= 1
        if self.fleet.recorder.enabled:
            self.fleet.recorder.emit(self.env.now, self.unit_scope(unit), "repaired", self.name)
        if self.down[s] == self._tolerated:
            self.fleet.clear_reason(s, self.bit)
        if self._heats:
            self._thermal(s)
        for listener in self.on_change:
            listener(s)

    def replace_healthy(self, unit: int) -> None:
        """A healthy unit was replaced by mistake: it is new now."""
        self.replaced += 1
        [life] = self._install([unit])
        self._schedule(unit, life)

    def renew_system(self, s: int) -> None:
        """System `s` was swapped for a spare: all its units are new and up."""
        first = s * self.count
        units = list(range(first, first + self.count))
        for unit in units:
            self.up[unit] = True
        self.down[s] = 0
        self.in_failover[s] = 0
        lives = self._install(units, replacing=False)  # a system from the pool: new lots
        for unit, life in zip(units, lives, strict=True):
            self._schedule(unit, life)
        self.fleet.clear_reason(s, self.bit)
        if self._heats:
            self._thermal(s)
        for listener in self.on_change:
            listener(s)

    def _thermal(self, s: int) -> None:
        """Tell thermal the resistance factor of `s` (called only if the class `_heats`)."""
        spec = self.spec
        factor = spec.thermal_factor if self.down[s] else 1.0
        if self.in_failover[s]:
            factor *= spec.failover_factor
        self.thermal.set_class_factor(s, self.name, factor)
