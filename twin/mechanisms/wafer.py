"""The wafer: defects at manufacture, run-time core loss, wafer failure and swap.

At manufacture a wafer gets Poisson(D0 x area) defects at uniformly random
cores; each distinct defective core takes one from the spare pool
(physical - active cores). At run time, core-failure events (per wafer,
from `core_failures`) kill a geometric number of cores (mean
`cores_per_failure`) and the system stops for `remap_time` to route around
them. Lost cores come out of the spare pool first; once it is empty the
wafer runs degraded (usable cores / active cores < 1, and capacity with
it); below `min_active_fraction` the wafer has failed. A wafer also fails
outright (package, cold plate) by `failure`. A failed wafer means a swap
of the whole system: a crew installs a spare system from the pool and the
failed one goes to RMA, back in the pool after `rma_time`; with the pool
empty the system waits for the next one back from RMA.
"""

from __future__ import annotations

import numpy as np
import simpy

from twin.agenda import Agenda
from twin.errors import ScenarioError
from twin.fleet import Fleet
from twin.hall import ROOT
from twin.mechanisms.components import ComponentClass
from twin.mechanisms.repair import Crews, RepairShop
from twin.scenario import SpareSystemsSpec, WaferSpec

__all__ = ["Wafers", "manufacture_defects", "MAX_DEAD_AT_ONE_INSTANT"]

# Replacements in a row found dead on arrival with no time passing between them
# (zero swap and RMA times) before the run stops: new wafers then almost never work,
# and the swap would loop at one instant for ever.
MAX_DEAD_AT_ONE_INSTANT = 10_000


def manufacture_defects(
    rng: np.random.Generator, n: int, spec: WaferSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Defects per wafer (Poisson in D0 x area) and the distinct cores they hit."""
    defects = rng.poisson(spec.defect_density * spec.area, n)
    hits = rng.integers(0, spec.physical_cores, int(defects.sum()))
    owner = np.repeat(np.arange(n), defects)
    pairs = np.unique(owner * spec.physical_cores + hits)
    dead = np.bincount(pairs // spec.physical_cores, minlength=n)
    return defects, dead


class Wafers:
    """Core pools of every wafer, their failures, and system swaps."""

    def __init__(
        self,
        env: simpy.Environment,
        spec: WaferSpec,
        swaps: SpareSystemsSpec,
        fleet: Fleet,
        crews: Crews,
        shop: RepairShop,
        classes: list[ComponentClass],
        rng: np.random.Generator,
        source: str = "scenario",
    ) -> None:
        self.env, self.spec, self.swap_spec, self.source = env, spec, swaps, source
        self.fleet, self.crews, self.classes, self.rng = fleet, crews, classes, rng
        self.shop = shop
        n = fleet.n
        self.pool = simpy.Container(env, init=swaps.count)
        self.spare_cores = np.zeros(n, dtype=np.int64)  # left in the spare pool
        self.usable = np.zeros(n, dtype=np.int64)  # active cores that work
        self.accel = np.ones(n)
        self.defects = np.zeros(n, dtype=np.int64)
        self.defect_cores = 0
        self.spare_cores_consumed = 0
        self.core_events = 0
        self.failures = 0  # wafers failed, for any reason
        self.failed_for_cores = 0  # of which: too few usable cores (dead on arrival included)
        self.swaps = 0
        self.rma_waits = 0
        self.swap_hours: list[float] = []
        self._bit = fleet.bit("wafer")
        self._remap_bit = fleet.bit("remap")
        self._cores = Agenda(env, self._core_failure)
        self._fatal = Agenda(env, self._fail)
        for s in self._manufacture(np.arange(n)):
            self._fail(s, cores=True)

    def _lot(self, n: int) -> np.ndarray:
        """Clock speed of `n` new wafers: `bad_factor` for those from the bad lot."""
        spec = self.spec
        return np.where(self.rng.random(n) < spec.bad_fraction, spec.bad_factor, 1.0)

    def _manufacture(self, systems: np.ndarray) -> list[int]:
        """New wafers in `systems`; returns those dead on arrival (too few cores)."""
        spec, rng, now = self.spec, self.rng, self.env.now
        defects, dead = manufacture_defects(rng, len(systems), spec)
        self.defects[systems] = defects
        self.defect_cores += int(dead.sum())
        spares = spec.physical_cores - spec.active_cores - dead
        self.spare_cores[systems] = np.maximum(spares, 0)
        self.usable[systems] = spec.active_cores + np.minimum(spares, 0)
        self.accel[systems] = self._lot(len(systems))
        accel = self.accel[systems]
        self._cores.schedule_many(systems, now + spec.core_failures.sample(rng, accel))
        self._fatal.schedule_many(systems, now + spec.failure.sample(rng, accel))
        dead_on_arrival = []
        for s in systems.tolist():
            self.fleet.set_core_fraction(s, self.usable[s] / spec.active_cores)
            if self.usable[s] < spec.min_active_fraction * spec.active_cores:
                self._cores.cancel(s)
                self._fatal.cancel(s)
                dead_on_arrival.append(s)
        return dead_on_arrival

    # -- run-time core loss ----------------------------------------------------
    def _core_failure(self, s: int) -> None:
        spec, rng, fleet, now = self.spec, self.rng, self.fleet, self.env.now
        lost = int(rng.geometric(1.0 / spec.cores_per_failure))
        self.core_events += 1
        from_spares = min(lost, int(self.spare_cores[s]))
        self.spare_cores[s] -= from_spares
        self.spare_cores_consumed += from_spares
        self.usable[s] -= lost - from_spares
        fleet.recorder.emit(now, fleet.scopes[s], "failure", "cores", float(lost))
        fleet.set_core_fraction(s, max(self.usable[s], 0) / spec.active_cores)
        life = spec.core_failures.sample(rng, self.accel[s])
        self._cores.schedule(s, now + float(life))
        if self.usable[s] < spec.min_active_fraction * spec.active_cores:
            self._fail(s, cores=True)
        elif spec.remap_time > 0:
            fleet.hold(s, self._remap_bit, "cores", spec.remap_time)

    # -- wafer failure and swap ----------------------------------------------------
    def _fail(self, s: int, cores: bool = False) -> None:
        """The wafer of `s` has failed (outright, or for too few cores): swap the system.
        The ``failure`` event's value is the usable-core share for a core failure."""
        fleet = self.fleet
        if fleet.reasons[s] & self._bit:
            return
        self._count_failure(s, cores)
        self._cores.cancel(s)
        self._fatal.cancel(s)
        fleet.add_reason(s, self._bit, "wafer")
        self.env.process(self._swap(s))

    def _count_failure(self, s: int, cores: bool) -> None:
        self.failures += 1
        self.failed_for_cores += cores
        share = max(int(self.usable[s]), 0) / self.spec.active_cores if cores else float("nan")
        self.fleet.recorder.emit(self.env.now, self.fleet.scopes[s], "failure", "wafer", share)

    def _swap(self, s: int):  # type: ignore[no-untyped-def]
        env, fleet, spec = self.env, self.fleet, self.swap_spec
        started = env.now
        dead_at, dead_in_a_row = -1.0, 0
        while True:
            if self.pool.level == 0:
                self.rma_waits += 1
                fleet.recorder.emit(env.now, f"{ROOT}.spare_systems", "stockout", "system")
            yield self.pool.get(1)
            yield from self.crews.work(float(spec.swap_time.sample(self.rng)), priority=0)
            self.swaps += 1
            env.process(self._rma())
            fleet.generation[s] += 1
            self.shop.abandon(s)
            fleet.recorder.emit(env.now, fleet.scopes[s], "system_swap", "wafer")
            if not self._manufacture(np.array([s])):
                break
            self._count_failure(s, cores=True)  # the replacement was dead on arrival
            dead_in_a_row = dead_in_a_row + 1 if env.now == dead_at else 1
            dead_at = env.now
            if dead_in_a_row >= MAX_DEAD_AT_ONE_INSTANT:
                raise ScenarioError(
                    self.source, "wafer.defect_density",
                    f"a density at which new wafers work: {dead_in_a_row:,} replacements in a "
                    f"row for {fleet.scopes[s]} were dead on arrival at {env.now:g} h, with no "
                    "time passing (spare_systems.swap_time and rma_time are zero); compare "
                    "defect_density x area with physical_cores - min_active_fraction x "
                    "active_cores",
                )
        self.swap_hours.append(env.now - started)
        for cls in self.classes:
            cls.renew_system(s)
        fleet.clear_reason(s, self._remap_bit)
        fleet.clear_reason(s, self._bit)

    def _rma(self):  # type: ignore[no-untyped-def]
        yield self.env.timeout(float(self.swap_spec.rma_time.sample(self.rng)))
        yield self.pool.put(1)
