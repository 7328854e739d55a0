"""The wafer: defects at manufacture, run-time core loss, wafer failure and swap.

At manufacture a wafer gets Poisson(D0 x area) defects at uniformly random
cores; each distinct defective core takes one from the spare pool
(physical - active cores). At run time, core-failure events (per wafer,
from `core_failures`) kill a geometric number of cores (mean
`cores_per_failure`) and the system stops for `remap_time` to route around
them. Lost cores come out of the spare pool first; once it is empty the
wafer runs degraded (usable cores / active cores < 1, and capacity with
it); below `min_active_fraction` the wafer has failed. A wafer also fails
outright (package, cold plate) by `failure`. A fraction `bad_fraction` of
wafers comes from a bad lot: its core-failure clock runs `bad_factor` times
faster, its outright-failure clock `bad_failure_factor` times. A failed
wafer means a swap of the whole system: a crew installs a spare system from
the pool and the failed one goes to RMA, back in the pool after `rma_time`;
with the pool empty the system waits for the next one back from RMA.
A cracked package (`twin.mechanisms.package`) takes the same path under the
cause ``package``; mechanisms with per-system state that a swap renews
register in `on_renew`. With ``[training] ageing = "while_running"`` the
core-failure and outright-failure clocks of a system run only while it works
(`set_working`, the working clock of `twin.mechanisms.ageing`): failure times
are then working hours, a swapped-in wafer's included.

Every independent draw has its own stream (`WaferDraws`), and the wafers the
hall starts with draw from other streams than the replacements swapped in:
the draws of a replacement are made when logistics (swap and RMA times,
spare systems) put it in, and would otherwise shift every later draw of the
first wafers. So the history of a first wafer, up to its failure, does not
depend on logistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import simpy

from twin.agenda import Agenda
from twin.errors import ScenarioError
from twin.fleet import Fleet
from twin.hall import ROOT
from twin.mechanisms.ageing import VirtualClock
from twin.mechanisms.components import ComponentClass
from twin.mechanisms.repair import Crews, RepairShop
from twin.rng import Streams
from twin.scenario import SpareSystemsSpec, WaferSpec

__all__ = ["Wafers", "WaferDraws", "manufacture_defects", "MAX_DEAD_AT_ONE_INSTANT"]

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
    # each (wafer, core) key counted once: sorted, a key is new where it differs from the
    # one before (what np.unique does, without loading numpy.ma: ~10 ms of a start-up)
    keys = np.sort(owner * spec.physical_cores + hits)
    new = np.ones(keys.size, dtype=bool)
    new[1:] = keys[1:] != keys[:-1]
    dead = np.bincount(keys[new] // spec.physical_cores, minlength=n)
    return defects, dead


class WaferDraws(NamedTuple):
    """The streams of one family of wafers (``wafer.<what>`` for the first wafers,
    ``wafer.replacement.<what>`` for those swapped in)."""

    lot: np.random.Generator  # membership of the bad lot
    defects: np.random.Generator  # defects at manufacture and the cores they hit
    life: np.random.Generator  # outright failure
    core_failures: np.random.Generator  # times of run-time core failures
    cores_lost: np.random.Generator  # cores lost per core failure

    @classmethod
    def named(cls, streams: Streams, prefix: str) -> WaferDraws:
        return cls(*(streams[f"{prefix}.{what}"] for what in cls._fields))


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
        streams: Streams,
        source: str = "scenario",
        while_running: bool = False,
    ) -> None:
        self.env, self.spec, self.swap_spec, self.source = env, spec, swaps, source
        self.fleet, self.crews, self.classes = fleet, crews, classes
        self.shop = shop
        self._first = WaferDraws.named(streams, "wafer")
        self._replacement = WaferDraws.named(streams, "wafer.replacement")
        self._swap_rng, self._rma_rng = streams["wafer.swap"], streams["wafer.rma"]
        n = fleet.n
        self.pool = simpy.Container(env, init=swaps.count)
        # per system, read and written one at a time on every event: lists (see twin.fleet)
        self.spare_cores: list[int] = [0] * n  # left in the spare pool
        self.usable: list[int] = [0] * n  # active cores that work
        self.replaced: list[bool] = [False] * n  # carries a swapped-in wafer
        self.accel: list[float] = [1.0] * n  # core-failure clock speed (bad lot)
        self.defects = np.zeros(n, dtype=np.int64)  # at manufacture
        self.defect_cores = 0
        self.spare_cores_consumed = 0
        self.core_events = 0
        self.failures = 0  # wafers failed, for any reason
        self.failed_for_cores = 0  # of which: too few usable cores (dead on arrival included)
        self.failed_package = 0  # of which: a cracked package
        self.on_renew: list[Callable[[int], None]] = []  # told a system was swapped
        self.swaps = 0
        self.rma_waits = 0
        self.swap_hours: list[float] = []  # completed swaps: failure to swap done
        self.swap_started: dict[int, float] = {}  # swaps still open: system -> failed at
        self._bit = fleet.bit("wafer")
        self._remap_bit = fleet.bit("remap")
        self._cores = Agenda(env, self._core_failure)
        self._fatal = Agenda(env, self._fail)
        # ageing = "while_running": both clocks of a system run only while it works, and
        # its next core failure and outright failure are due at these working hours
        self.clock = VirtualClock(env, n, self._retime, working=False) if while_running else None
        self._due_cores: list[float] = [math.inf] * n
        self._due_fatal: list[float] = [math.inf] * n
        for s in self._manufacture(np.arange(n), self._first):
            self._fail(s, cores=True)

    def _manufacture(self, systems: np.ndarray, draws: WaferDraws) -> list[int]:
        """New wafers in `systems`; returns those dead on arrival (too few cores)."""
        spec, now = self.spec, self.env.now
        defects, dead = manufacture_defects(draws.defects, len(systems), spec)
        self.defects[systems] = defects
        self.defect_cores += int(dead.sum())
        spares = spec.physical_cores - spec.active_cores - dead
        bad = draws.lot.random(len(systems)) < spec.bad_fraction
        accel = np.where(bad, spec.bad_factor, 1.0)
        first_core = spec.core_failures.sample(draws.core_failures, accel)
        life = spec.failure.sample(draws.life, np.where(bad, spec.bad_failure_factor, 1.0))
        if self.clock is None:
            self._cores.schedule_many(systems, now + first_core)
            self._fatal.schedule_many(systems, now + life)
        else:
            for s, core, fatal in zip(systems.tolist(), first_core.tolist(), life.tolist(),
                                      strict=True):
                self._after(self._cores, self._due_cores, s, core)
                self._after(self._fatal, self._due_fatal, s, fatal)
        return [
            s for s, left, a in zip(systems.tolist(), spares.tolist(), accel.tolist(), strict=True)
            if self._fit(s, left, a)
        ]

    def _replace(self, s: int) -> bool:
        """A new wafer in system `s` (a swap's): `_manufacture` of one wafer with the same
        draws as single values (a few microseconds each, against tens for the arrays of
        one); returns whether it is dead on arrival."""
        spec, draws = self.spec, self._replacement
        defects = int(draws.defects.poisson(spec.defect_density * spec.area))
        dead = len(set(draws.defects.integers(0, spec.physical_cores, defects).tolist()))
        self.defects[s] = defects
        self.defect_cores += dead
        bad = draws.lot.random() < spec.bad_fraction
        accel = spec.bad_factor if bad else 1.0
        core = spec.core_failures.draw(draws.core_failures, accel)
        self._after(self._cores, self._due_cores, s, core)
        life = spec.failure.draw(draws.life, spec.bad_failure_factor if bad else 1.0)
        self._after(self._fatal, self._due_fatal, s, life)
        return self._fit(s, spec.physical_cores - spec.active_cores - dead, accel)

    def _fit(self, s: int, spares: int, accel: float) -> bool:
        """The new wafer of `s` has `spares` cores beyond its active ones (fewer than 0:
        short of them) and a core-failure clock `accel` times fast; returns whether it
        is dead on arrival (its clocks then stopped)."""
        spec = self.spec
        self.spare_cores[s] = max(spares, 0)
        usable = self.usable[s] = spec.active_cores + min(spares, 0)
        self.accel[s] = accel
        self.fleet.set_core_fraction(s, usable / spec.active_cores)
        if usable < spec.min_active_fraction * spec.active_cores:
            self._stop_clocks(s)
            return True
        return False

    # -- working time (ageing = "while_running") ---------------------------------------
    def _after(self, agenda: Agenda, due: list[float], s: int, hours: float) -> None:
        """`agenda` fires for `s` after `hours` more of its clock (never while it stands
        still)."""
        clock, now = self.clock, self.env.now
        if clock is None:
            agenda.schedule(s, now + hours)
            return
        due[s] = clock.now(s) + hours
        if clock.rate[s] > 0.0:
            agenda.schedule(s, now + hours / clock.rate[s])
        else:
            agenda.cancel(s)

    def _retime(self, s: int) -> None:
        """`s` started or stopped working: its pending failures move accordingly."""
        clock, now = self.clock, self.env.now
        assert clock is not None
        virtual, rate = clock.now(s), clock.rate[s]
        for agenda, due in ((self._cores, self._due_cores), (self._fatal, self._due_fatal)):
            if due[s] == math.inf:
                continue
            if rate > 0.0:
                agenda.schedule(s, now + (due[s] - virtual) / rate)
            else:
                agenda.cancel(s)

    def set_working(self, s: int, working: bool) -> None:
        """System `s` started or stopped working: its wafer's clocks run or stand still."""
        assert self.clock is not None, "wafers built with while_running"
        self.clock.set_working(s, working)

    def _stop_clocks(self, s: int) -> None:
        """The wafer of `s` is out of service: no more core or outright failures."""
        self._cores.cancel(s)
        self._fatal.cancel(s)
        self._due_cores[s] = self._due_fatal[s] = math.inf

    # -- run-time core loss ----------------------------------------------------
    def _core_failure(self, s: int) -> None:
        spec, fleet, now = self.spec, self.fleet, self.env.now
        draws = self._replacement if self.replaced[s] else self._first
        lost = int(draws.cores_lost.geometric(1.0 / spec.cores_per_failure))
        self.core_events += 1
        from_spares = min(lost, self.spare_cores[s])
        self.spare_cores[s] -= from_spares
        self.spare_cores_consumed += from_spares
        self.usable[s] -= lost - from_spares
        fleet.recorder.emit(now, fleet.scopes[s], "failure", "cores", float(lost))
        life = spec.core_failures.draw(draws.core_failures, self.accel[s])
        self._after(self._cores, self._due_cores, s, life)
        # down first, then the new core share: a system down logs no change of share
        # (and the workloads hear of one change, not a slow-down then an outage)
        if self.usable[s] < spec.min_active_fraction * spec.active_cores:
            self._fail(s, cores=True)
        elif spec.remap_time > 0:
            fleet.hold(s, self._remap_bit, "cores", spec.remap_time)
        fleet.set_core_fraction(s, max(self.usable[s], 0) / spec.active_cores)

    # -- wafer failure and swap ----------------------------------------------------
    def _fail(self, s: int, cores: bool = False, cause: str = "wafer") -> None:
        """The wafer of `s` has failed (outright, or for too few cores): swap the system.
        The ``failure`` event's value is the usable-core share for a core failure."""
        fleet = self.fleet
        if fleet.reasons[s] & self._bit:
            return
        self._count_failure(s, cores, cause)
        self.swap_started[s] = self.env.now
        self._stop_clocks(s)
        fleet.add_reason(s, self._bit, cause)
        self.env.process(self._swap(s))

    def fail_package(self, s: int) -> None:
        """The package of `s` has cracked: swap the system (a ``package`` failure),
        unless a swap is already under way."""
        self._fail(s, cause="package")

    def _count_failure(self, s: int, cores: bool, cause: str = "wafer") -> None:
        self.failures += 1
        self.failed_for_cores += cores
        self.failed_package += cause == "package"
        share = max(self.usable[s], 0) / self.spec.active_cores if cores else float("nan")
        self.fleet.recorder.emit(self.env.now, self.fleet.scopes[s], "failure", cause, share)

    def _swap(self, s: int):  # type: ignore[no-untyped-def]
        env, fleet, spec = self.env, self.fleet, self.swap_spec
        dead_at, dead_in_a_row = -1.0, 0
        while True:
            if self.pool.level == 0:
                self.rma_waits += 1
                fleet.recorder.emit(env.now, f"{ROOT}.spare_systems", "stockout", "system")
            yield self.pool.get(1)
            yield from self.crews.work(spec.swap_time.draw(self._swap_rng), priority=0)
            self.swaps += 1
            env.process(self._rma())
            fleet.generation[s] += 1
            self.shop.abandon(s)
            fleet.recorder.emit(env.now, fleet.scopes[s], "system_swap", "wafer")
            self.replaced[s] = True
            if not self._replace(s):
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
        self.swap_hours.append(env.now - self.swap_started.pop(s))
        for cls in self.classes:
            cls.renew_system(s)
        for renew in self.on_renew:
            renew(s)
        fleet.clear_reason(s, self._remap_bit)
        fleet.clear_reason(s, self._bit)

    def _rma(self):  # type: ignore[no-untyped-def]
        yield self.env.timeout(self.swap_spec.rma_time.draw(self._rma_rng))
        yield self.pool.put(1)
