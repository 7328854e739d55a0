"""Failures of one component class (PSUs, pumps, fans) across the whole hall.

Every unit keeps its own install time and draws its own next failure: a new
unit draws a fresh lifetime, a unit that was only reset draws its residual
life at its age, so a Weibull or lognormal population renews correctly. A
fraction `bad_fraction` of units belong to a bad subpopulation whose clock
runs `bad_factor` times faster. A system runs while at least `required` of
its `count` units are up. A class with a `failover` transient (the internal
pumps) multiplies the thermal resistance by `failover_factor` for the
failover time when a load-carrying unit fails; while any unit is down the
resistance carries `thermal_factor`.
"""

from __future__ import annotations

import numpy as np
import simpy

from twin.agenda import Agenda
from twin.fleet import Fleet
from twin.mechanisms.repair import RepairShop
from twin.mechanisms.thermal import Thermal
from twin.scenario import ComponentSpec

__all__ = ["ComponentClass"]


class ComponentClass:
    """All units of one class: failure agenda, up flags, ages, k-of-n state."""

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        spec: ComponentSpec,
        fleet: Fleet,
        thermal: Thermal,
        shop: RepairShop,
        *,
        rng: np.random.Generator,
        repair_rng: np.random.Generator,
    ) -> None:
        self.env, self.name, self.spec = env, name, spec
        self.fleet, self.thermal, self.shop, self.rng = fleet, thermal, shop, rng
        self.repair_rng = repair_rng  # repairs of this class draw here, lives from `rng`
        self.count = spec.count
        self.escalate_probability = spec.escalate_probability
        n_units = fleet.n * spec.count
        self.up = np.ones(n_units, dtype=bool)
        self.installed = np.zeros(n_units)
        self.accel = self._lot(n_units)
        self.down = np.zeros(fleet.n, dtype=np.int64)  # units down per system
        self.in_failover = np.zeros(fleet.n, dtype=np.int64)
        self.failures = 0
        self.replaced = 0
        self._bit = fleet.bit(name)
        self._tolerated = spec.count - spec.required
        self._agenda = Agenda(env, self._fail)
        self._agenda.schedule_many(range(n_units), spec.failure.sample(rng, self.accel))

    def _lot(self, n: int) -> np.ndarray:
        """Clock speed of `n` new units: `bad_factor` for those from the bad lot."""
        spec = self.spec
        return np.where(self.rng.random(n) < spec.bad_fraction, spec.bad_factor, 1.0)

    def _install(self, units: np.ndarray) -> np.ndarray:
        """New units go in at `units`: their clocks start now, their lot is drawn
        afresh; returns their lives."""
        self.installed[units] = self.env.now
        self.accel[units] = self._lot(len(units))
        return self.spec.failure.sample(self.rng, self.accel[units])

    def unit_scope(self, unit: int) -> str:
        s, u = divmod(unit, self.count)
        return f"{self.fleet.scopes[s]}.{self.name}{u + 1}"

    def repair_hours(self) -> float:
        return float(self.spec.repair.sample(self.repair_rng))

    # -- failure and restore -------------------------------------------------
    def _fail(self, unit: int) -> None:
        s = unit // self.count
        self.up[unit] = False
        self.down[s] += 1
        self.failures += 1
        now = self.env.now
        self.fleet.recorder.emit(now, self.unit_scope(unit), "failure", self.name)
        if self.down[s] > self._tolerated:
            self.fleet.add_reason(s, self._bit, self.name)
        elif self.spec.failover is not None and self.rng.random() * self.count < self.spec.required:
            self.in_failover[s] += 1
            delay = float(self.spec.failover.sample(self.rng))
            generation = self.fleet.generation[s]
            self.env.timeout(delay).callbacks.append(
                lambda _ev: self._failover_done(s, generation)
            )
        self._thermal(s)
        self.shop.start(self, self.spec.part, s, unit)

    def _failover_done(self, s: int, generation: int) -> None:
        if self.fleet.generation[s] == generation:
            self.in_failover[s] -= 1
            self._thermal(s)

    def restore(self, unit: int, renewed: bool) -> None:
        """The unit works again: renewed (a new unit) or reset at its age."""
        s = unit // self.count
        now = self.env.now
        if renewed:
            life = self._install(np.array([unit]))[0]
        else:
            age = now - self.installed[unit]
            life = self.spec.failure.residual(self.rng, np.asarray(age), self.accel[unit])
        self._agenda.schedule(unit, now + float(life))
        self.up[unit] = True
        self.down[s] -= 1
        self.fleet.recorder.emit(now, self.unit_scope(unit), "repaired", self.name)
        if self.down[s] == self._tolerated:
            self.fleet.clear_reason(s, self._bit)
        self._thermal(s)

    def replace_healthy(self, unit: int) -> None:
        """A healthy unit was replaced by mistake: it is new now."""
        self.replaced += 1
        self._agenda.schedule(unit, self.env.now + float(self._install(np.array([unit]))[0]))

    def renew_system(self, s: int) -> None:
        """System `s` was swapped for a spare: all its units are new and up."""
        first = s * self.count
        units = np.arange(first, first + self.count)
        now = self.env.now
        self.up[units] = True
        self.down[s] = 0
        self.in_failover[s] = 0
        lives = self._install(units)
        for unit, life in zip(units.tolist(), lives.tolist(), strict=True):
            self._agenda.schedule(unit, now + life)
        self.fleet.clear_reason(s, self._bit)
        self._thermal(s)

    def _thermal(self, s: int) -> None:
        spec = self.spec
        if spec.thermal_factor == 1.0 and spec.failover is None:
            return
        factor = spec.thermal_factor if self.down[s] else 1.0
        if self.in_failover[s]:
            factor *= spec.failover_factor
        self.thermal.set_class_factor(s, self.name, factor)
