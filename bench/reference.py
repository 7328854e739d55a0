"""The fixed-step reference model: the hall written the obvious SimPy way.

Role: the baseline of the speed benchmark and a statistical oracle for the
engine (`python -m bench`, tests/test_reference.py). It reads the same
`Scenario` and implements the same mechanisms, independently of
`twin.mechanisms` and as plainly as possible:

- one SimPy process per component unit (every PSU, pump and fan of every
  system) running its own fail -> repair loop; the repair pipeline
  (diagnosis, automated fix, escalation to a crew with a part, wrong unit,
  silent failure, detection delay) runs inside the unit's process;
- one process per wafer for its core failures, its outright failure and the
  swap of the whole system (spare-system pool, crew, RMA);
- one process per system stepping its temperature every simulated minute,
  ``T += dt/C (P - (T - T_in)/R)`` (forward Euler), applying the thermal
  governor at each step and integrating the KPIs (availability, capacity,
  IT energy, throttled and tripped time) by summing the state step by step.

It is slow by design: a minute-by-minute loop per system is the cost the
engine's closed-form, event-only design avoids (docs/performance.md#the-approach).

Where the engine's behaviour is ambiguous the reference takes the plain
physical reading, and says so at the spot: a replacement unit or wafer draws
its own membership of the bad subpopulation; a repair overtaken by a system
swap stops at once (its part goes back, its crew is freed); a unit blamed
while healthy that has failed by the time it is replaced stays down under
its own repair; overlapping core remaps each hold the system; a system draws
idle power while booting or while a remap is its only reason to be down, and
an outage during which it was never powered off (only remaps held it) ends
without a boot.

Randomness: one seed per run; each mechanism (the units of each component
class, the repair pipeline, the wafers) draws from its own
`numpy.random.SeedSequence` child, keyed by name under a root key the engine
never uses, so the reference's draws are independent of the engine's for the
same seed.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from twin.distributions import Distribution
from twin.hall import Hall
from twin.scenario import ComponentSpec, Scenario, SpareSpec

__all__ = ["ReferenceResult", "run_reference", "REFERENCE_KEY"]

# Root of the reference's spawn keys; the engine's keys are 32-bit CRCs, so
# a key above 2**32 never names one of its streams.
REFERENCE_KEY = 2**32 + 0x5EF

TRIP = "thermal"
REMAP = "remap"
WAFER = "wafer"

Proc = Generator[Any, Any, Any]


def _stream(seed: int, name: str) -> np.random.Generator:
    key = (REFERENCE_KEY, zlib.crc32(name.encode()))
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _draw(dist: Distribution, rng: np.random.Generator, accel: float = 1.0) -> float:
    return float(dist.sample(rng, accel))


@dataclass(frozen=True)
class ReferenceResult:
    """What one reference run returns: KPIs named as the engine names them."""

    seed: int
    until_h: float
    systems: int
    step_min: float
    wall_s: float
    kpis: dict[str, float] = field(default_factory=dict)

    @property
    def system_days(self) -> float:
        return self.systems * self.until_h / 24.0


class _Tally:
    """Counters and step-summed integrals of one run."""

    def __init__(self, classes: list[str], parts: list[str]) -> None:
        self.failures = dict.fromkeys(classes, 0)
        self.wafer_failures = 0
        self.failed_for_cores = 0
        self.repair_hours: dict[str, list[float]] = {c: [] for c in classes}
        self.parts_used = dict.fromkeys(parts, 0)
        self.core_events = 0
        self.throttle_events = 0
        self.trips = 0
        self.auto_fixed = 0
        self.escalated = 0
        self.wrong_unit = 0
        self.silent = 0
        self.swaps = 0
        self.swap_waits = 0
        self.swap_hours: list[float] = []
        self.defect_cores = 0
        self.crew_busy_h = 0.0
        self.up_h = 0.0
        self.capacity_h = 0.0
        self.energy_kwh = 0.0
        self.throttled_h = 0.0
        self.tripped_h = 0.0


class _Unit:
    """One component unit: its process, whether it works, when it was installed."""

    __slots__ = ("system", "cls", "spec", "index", "up", "installed", "accel", "process")

    def __init__(self, system: _System, cls: str, spec: ComponentSpec, index: int) -> None:
        self.system, self.cls, self.spec, self.index = system, cls, spec, index
        self.up = True
        self.installed = 0.0
        self.accel = 1.0
        self.process: simpy.Process | None = None


class _System:
    """One wafer-scale system: why it is down, its governor state, its wafer and units."""

    __slots__ = (
        "index", "reasons", "booting", "boot_token", "generation", "fraction", "throttled",
        "down", "failover", "r_factor", "remaps", "units", "wafer_accel", "wafer_life_accel",
        "spare_cores", "usable", "core_share", "cold",
    )

    def __init__(self, index: int, classes: dict[str, ComponentSpec]) -> None:
        self.index = index
        self.reasons: set[str] = set()
        self.booting = False
        self.boot_token = 0
        self.generation = 0
        self.fraction = 1.0
        self.throttled = False
        self.down = dict.fromkeys(classes, 0)
        self.failover = dict.fromkeys(classes, 0)
        self.r_factor = 1.0
        self.remaps = 0
        self.units = {
            name: [_Unit(self, name, spec, u) for u in range(spec.count)]
            for name, spec in classes.items()
        }
        self.wafer_accel = 1.0  # core-failure clock speed (bad lot)
        self.wafer_life_accel = 1.0  # outright-failure clock speed (bad lot)
        self.cold = False  # powered off during the outage in progress: boots after it
        self.spare_cores = 0
        self.usable = 0
        self.core_share = 1.0

    @property
    def running(self) -> bool:
        return not self.reasons and not self.booting


class _Shelf:
    """Spare parts of one type: a container with an (s, Q) reorder policy."""

    def __init__(self, env: simpy.Environment, spec: SpareSpec) -> None:
        self.env, self.spec = env, spec
        self.box = simpy.Container(env, init=spec.stock)
        self.on_order = 0
        self.stockouts = 0
        self.orders = 0

    def request(self) -> simpy.resources.container.ContainerGet:
        """Ask for one part; review the stock position and reorder at or below s."""
        if self.box.level == 0:
            self.stockouts += 1
        get = self.box.get(1)
        position = self.box.level + self.on_order - len(self.box.get_queue)
        if position <= self.spec.reorder_point:
            self.orders += 1
            self.on_order += self.spec.order_quantity
            self.env.process(self._deliver(self.spec.order_quantity))
        return get

    def give_back(self) -> None:
        self.box.put(1)

    def _deliver(self, quantity: int) -> Proc:
        yield self.env.timeout(self.spec.lead_time)
        self.on_order -= quantity
        yield self.box.put(quantity)


class _Reference:
    """The whole hall as SimPy processes; `run` returns the KPIs."""

    def __init__(self, scenario: Scenario, seed: int, step_min: float) -> None:
        self.sc = scenario
        self.env = simpy.Environment()
        self.step_h = step_min / 60.0
        self.classes = dict(scenario.components)
        self.tally = _Tally(list(self.classes), list(scenario.spares))
        self.unit_rng = {name: _stream(seed, f"units.{name}") for name in self.classes}
        self.repair_rng = _stream(seed, "repair")
        self.wafer_rng = _stream(seed, "wafer")
        self.crews = simpy.PriorityResource(self.env, capacity=scenario.repair.crews)
        self.shelves = {name: _Shelf(self.env, spec) for name, spec in scenario.spares.items()}
        self.pool = simpy.Container(self.env, init=scenario.spare_systems.count)
        n = Hall.from_spec(scenario.hall).n_systems
        self.systems = [_System(s, self.classes) for s in range(n)]
        self.until = 0.0

    # -- running or down ---------------------------------------------------------
    def add_reason(self, sys: _System, reason: str) -> None:
        if reason in sys.reasons:
            return
        if sys.running:
            sys.cold = False
        if reason != REMAP:
            sys.cold = True
        if sys.booting:  # the boot is abandoned
            sys.booting = False
            sys.boot_token += 1
        sys.reasons.add(reason)

    def clear_reason(self, sys: _System, reason: str) -> None:
        if reason not in sys.reasons:
            return
        sys.reasons.discard(reason)
        if not sys.reasons and sys.cold:
            sys.booting = True
            sys.boot_token += 1
            self.env.process(self._boot(sys, sys.boot_token))

    def _boot(self, sys: _System, token: int) -> Proc:
        yield self.env.timeout(self.sc.system.boot_time)
        if sys.boot_token == token:
            sys.booting = False

    def power_kw(self, sys: _System) -> float:
        if sys.running:
            return self.sc.system.power * sys.fraction
        if sys.booting or sys.reasons == {REMAP}:
            return self.sc.system.idle_power
        return 0.0

    def refactor(self, sys: _System) -> None:
        """Thermal resistance multiplier from the units down and failovers in progress."""
        factor = 1.0
        for name, spec in self.classes.items():
            if sys.down[name]:
                factor *= spec.thermal_factor
            if sys.failover[name]:
                factor *= spec.failover_factor
        sys.r_factor = factor

    # -- crews and parts ---------------------------------------------------------
    def shift_wait(self) -> float:
        spec = self.sc.repair
        if spec.shift_length >= 24.0:
            return 0.0
        into = (self.env.now - spec.shift_start) % 24.0
        return 0.0 if into < spec.shift_length else 24.0 - into

    def crew_work(self, hours: float, priority: int) -> Proc:
        """Hold a crew for `hours`, starting on shift; an interrupt frees the crew."""
        with self.crews.request(priority=priority) as request:
            yield request
            wait = self.shift_wait()
            if wait > 0.0:
                yield self.env.timeout(wait)
            yield self.env.timeout(hours)
            self.tally.crew_busy_h += hours

    def hands_on(self, sys: _System, spec: ComponentSpec, rng: np.random.Generator) -> Proc:
        """Take a part, then a crew, then replace: the manual step of a repair."""
        shelf = self.shelves[spec.part]
        get = shelf.request()
        try:
            yield get
        except simpy.Interrupt:
            if get.triggered:
                shelf.give_back()
            else:
                get.cancel()
            raise
        self.tally.parts_used[spec.part] += 1
        priority = 0 if sys.reasons else 1
        try:
            yield from self.crew_work(_draw(spec.repair, rng), priority)
        except simpy.Interrupt:
            shelf.give_back()
            self.tally.parts_used[spec.part] -= 1
            raise

    # -- component units ---------------------------------------------------------
    def fresh_life(self, unit: _Unit) -> float:
        """A new unit: it draws its own membership of the bad subpopulation and a life."""
        rng, spec = self.unit_rng[unit.cls], unit.spec
        unit.installed = self.env.now
        unit.accel = spec.bad_factor if rng.random() < spec.bad_fraction else 1.0
        return _draw(spec.failure, rng, unit.accel)

    def residual_life(self, unit: _Unit) -> float:
        age = np.asarray(self.env.now - unit.installed)
        return float(unit.spec.failure.residual(self.unit_rng[unit.cls], age, unit.accel))

    def unit_process(self, unit: _Unit) -> Proc:
        """Fail, get repaired, fail again: the whole life of one unit slot."""
        life = self.fresh_life(unit)
        while True:
            try:
                yield self.env.timeout(life)
            except simpy.Interrupt:  # replaced (by mistake or by a swap): a new unit
                life = self.fresh_life(unit)
                continue
            started = self.env.now
            self.unit_failed(unit)
            try:
                renewed = yield from self.repair(unit)
            except simpy.Interrupt:  # the system was swapped: a new unit, already up
                life = self.fresh_life(unit)
                continue
            self.tally.repair_hours[unit.cls].append(self.env.now - started)
            self.unit_restored(unit)
            life = self.fresh_life(unit) if renewed else self.residual_life(unit)

    def unit_failed(self, unit: _Unit) -> None:
        sys, spec, name = unit.system, unit.spec, unit.cls
        unit.up = False
        sys.down[name] += 1
        self.tally.failures[name] += 1
        if sys.down[name] > spec.count - spec.required:
            self.add_reason(sys, name)
        elif spec.failover is not None:
            # a load-carrying unit failed: the standby takes over after a transient
            if self.unit_rng[name].random() < spec.required / spec.count:
                delay = _draw(spec.failover, self.unit_rng[name])
                sys.failover[name] += 1
                self.env.process(self.failover_ends(sys, name, delay))
        self.refactor(sys)

    def failover_ends(self, sys: _System, name: str, hours: float) -> Proc:
        generation = sys.generation
        yield self.env.timeout(hours)
        if sys.generation == generation:
            sys.failover[name] -= 1
            self.refactor(sys)

    def unit_restored(self, unit: _Unit) -> None:
        sys, spec, name = unit.system, unit.spec, unit.cls
        unit.up = True
        sys.down[name] -= 1
        if sys.down[name] <= spec.count - spec.required:
            self.clear_reason(sys, name)
        self.refactor(sys)

    def repair(self, unit: _Unit) -> Proc:
        """The repair pipeline of one fault; returns True if the unit was replaced."""
        env, spec, rng = self.env, self.sc.repair, self.repair_rng
        sys, comp = unit.system, unit.spec
        first = True
        while True:
            yield env.timeout(_draw(spec.diagnosis, rng))
            if first:
                first = False
                yield env.timeout(_draw(spec.auto_fix, rng))
                if rng.random() >= comp.escalate_probability:
                    self.tally.auto_fixed += 1
                    return False  # reset in place: the unit keeps its age
                self.tally.escalated += 1
            blamed = unit
            if rng.random() < spec.wrong_unit_probability:  # blames a healthy unit, if any
                others = [u for u in sys.units[unit.cls] if u is not unit and u.up]
                if others:
                    blamed = others[int(rng.integers(len(others)))]
            yield from self.hands_on(sys, comp, self.unit_rng[unit.cls])
            if blamed is not unit:
                self.tally.wrong_unit += 1
                self.replace_by_mistake(blamed)
            elif rng.random() < spec.silent_failure_probability:
                self.tally.silent += 1
            else:
                return True
            yield env.timeout(_draw(spec.detection_delay, rng))

    def replace_by_mistake(self, unit: _Unit) -> None:
        """A unit replaced by a wrong diagnosis is new. It was healthy when blamed; if it
        has failed since, it stays down under its own repair (only its clock restarts)."""
        if unit.up:
            assert unit.process is not None
            unit.process.interrupt("replaced")
        else:
            unit.installed = self.env.now

    # -- wafer ------------------------------------------------------------------
    def manufacture(self, sys: _System) -> bool:
        """A new wafer: defects at random cores take spares; False if dead on arrival."""
        spec, rng = self.sc.wafer, self.wafer_rng
        bad = rng.random() < spec.bad_fraction
        sys.wafer_accel = spec.bad_factor if bad else 1.0
        sys.wafer_life_accel = spec.bad_failure_factor if bad else 1.0
        defects = int(rng.poisson(spec.defect_density * spec.area))
        dead = len(np.unique(rng.integers(0, spec.physical_cores, defects)))
        self.tally.defect_cores += dead
        spares = spec.physical_cores - spec.active_cores - dead
        sys.spare_cores = max(spares, 0)
        sys.usable = spec.active_cores + min(spares, 0)
        sys.core_share = sys.usable / spec.active_cores
        return sys.usable >= spec.min_active_fraction * spec.active_cores

    def wafer_process(self, sys: _System) -> Proc:
        """Core failures and wafer failure of one system slot, and its swaps."""
        cause = None if self.manufacture(sys) else "cores"
        while True:
            if cause is None:
                cause = yield from self.wafer_life(sys)
            failed_at = self.env.now
            self.count_wafer_failure(cause)
            self.add_reason(sys, WAFER)
            yield from self.swap(sys)
            while not self.manufacture(sys):
                self.count_wafer_failure("cores")  # the replacement was dead on arrival
                yield from self.swap(sys)
            self.tally.swap_hours.append(self.env.now - failed_at)
            self.renew(sys)
            cause = None

    def count_wafer_failure(self, cause: str) -> None:
        self.tally.wafer_failures += 1
        if cause == "cores":
            self.tally.failed_for_cores += 1

    def wafer_life(self, sys: _System) -> Proc:
        """Run until the wafer fails; returns the cause ("wafer" or "cores")."""
        env, spec, rng = self.env, self.sc.wafer, self.wafer_rng
        fails_at = env.now + _draw(spec.failure, rng, sys.wafer_life_accel)
        while True:
            next_core = env.now + _draw(spec.core_failures, rng, sys.wafer_accel)
            if fails_at <= next_core:
                yield env.timeout(fails_at - env.now)
                return "wafer"
            yield env.timeout(next_core - env.now)
            if self.lose_cores(sys):
                return "cores"

    def lose_cores(self, sys: _System) -> bool:
        """One core-failure event; True if the wafer is left with too few cores."""
        spec = self.sc.wafer
        lost = int(self.wafer_rng.geometric(1.0 / spec.cores_per_failure))
        self.tally.core_events += 1
        from_spares = min(lost, sys.spare_cores)
        sys.spare_cores -= from_spares
        sys.usable -= lost - from_spares
        sys.core_share = max(sys.usable, 0) / spec.active_cores
        if sys.usable < spec.min_active_fraction * spec.active_cores:
            return True
        if spec.remap_time > 0:
            self.env.process(self.remap(sys))
        return False

    def remap(self, sys: _System) -> Proc:
        generation = sys.generation
        sys.remaps += 1
        self.add_reason(sys, REMAP)
        yield self.env.timeout(self.sc.wafer.remap_time)
        if sys.generation == generation:
            sys.remaps -= 1
            if sys.remaps == 0:
                self.clear_reason(sys, REMAP)

    def swap(self, sys: _System) -> Proc:
        """Install a spare system from the pool (waiting for RMA returns if empty)."""
        spec = self.sc.spare_systems
        if self.pool.level == 0:
            self.tally.swap_waits += 1
        yield self.pool.get(1)
        yield from self.crew_work(_draw(spec.swap_time, self.wafer_rng), priority=0)
        self.tally.swaps += 1
        sys.generation += 1
        self.env.process(self.rma())

    def rma(self) -> Proc:
        yield self.env.timeout(_draw(self.sc.spare_systems.rma_time, self.wafer_rng))
        yield self.pool.put(1)

    def renew(self, sys: _System) -> None:
        """The swapped-in system: every unit new and up, no remap, no wafer fault."""
        for name, units in sys.units.items():
            sys.down[name] = 0
            sys.failover[name] = 0
            for unit in units:
                unit.up = True
                assert unit.process is not None
                unit.process.interrupt("renewed")
            self.clear_reason(sys, name)
        sys.remaps = 0
        self.refactor(sys)
        self.clear_reason(sys, REMAP)
        self.clear_reason(sys, WAFER)

    # -- thermal loop -------------------------------------------------------------
    def thermal_process(self, sys: _System) -> Proc:
        """Step the wafer temperature every `step` and integrate the KPIs step by step."""
        env, tally, th = self.env, self.tally, self.sc.thermal
        dt = self.step_h
        k = 3600.0 / th.capacitance  # K per kWh: P [kW] x dt [h] x 3600 s/h / C [kJ/K]
        R0, T_in, full = th.resistance, th.inlet, self.sc.system.power
        T = min(T_in + full * R0, th.throttle)  # the hall has been running
        while True:
            h = min(dt, self.until - env.now)
            P = self.power_kw(sys)
            if sys.running:
                tally.up_h += h
                tally.capacity_h += h * sys.fraction * sys.core_share
                if sys.fraction < 1.0:
                    tally.throttled_h += h
            elif TRIP in sys.reasons:
                tally.tripped_h += h
            tally.energy_kwh += P * h
            T += h * k * (P - (T - T_in) / (R0 * sys.r_factor))
            yield env.timeout(dt)
            self.govern(sys, T)

    def govern(self, sys: _System, T: float) -> None:
        """The thermal governor at one step: trip, restart, throttle or release."""
        th, full = self.sc.thermal, self.sc.system.power
        if TRIP in sys.reasons:
            if T <= th.restart:
                self.clear_reason(sys, TRIP)
            return
        if not sys.running:
            sys.throttled, sys.fraction = False, 1.0
            return
        R = th.resistance * sys.r_factor
        full_ss = th.inlet + full * R
        if T >= th.trip:
            self.tally.trips += 1
            sys.throttled, sys.fraction = False, 1.0
            self.add_reason(sys, TRIP)
            return
        if not sys.throttled:
            if T < th.throttle or full_ss <= th.throttle:
                return
            sys.throttled = True
            self.tally.throttle_events += 1
        if full_ss <= th.throttle - th.release_margin:
            sys.throttled, sys.fraction = False, 1.0
            return
        hold = (th.throttle - th.inlet) / (R * full)
        sys.fraction = max(th.min_power_fraction, min(1.0, hold))

    # -- the run --------------------------------------------------------------------
    def run(self, until: float) -> None:
        self.until = until
        for sys in self.systems:
            for units in sys.units.values():
                for unit in units:
                    unit.process = self.env.process(self.unit_process(unit))
            self.env.process(self.wafer_process(sys))
            self.env.process(self.thermal_process(sys))
        self.env.run(until=until)

    def kpis(self, until: float) -> dict[str, float]:
        t, n = self.tally, len(self.systems)
        system_hours = n * until
        k: dict[str, float] = {
            "availability": t.up_h / system_hours,
            "capacity": t.capacity_h / system_hours,
            "energy.it_mwh": t.energy_kwh / 1000.0,
            "power.it_mean_kw": t.energy_kwh / until,
        }
        for name in self.classes:
            k[f"failures.{name}"] = float(t.failures[name])
            hours = t.repair_hours[name]
            k[f"mttr_h.{name}"] = float(np.mean(hours)) if hours else math.nan
        k["failures.wafer"] = float(t.wafer_failures)
        k["failures.cores"] = float(t.core_events)
        k["mttr_h.wafer"] = float(np.mean(t.swap_hours)) if t.swap_hours else math.nan
        k["thermal.throttle_events"] = float(t.throttle_events)
        k["thermal.throttle_h"] = t.throttled_h
        k["thermal.trips"] = float(t.trips)
        k["thermal.trip_h"] = t.tripped_h
        for name, shelf in self.shelves.items():
            k[f"spares.used.{name}"] = float(t.parts_used[name])
            k[f"spares.stockouts.{name}"] = float(shelf.stockouts)
            k[f"spares.orders.{name}"] = float(shelf.orders)
        k["spare_systems.used"] = float(t.swaps)
        k["spare_systems.stockouts"] = float(t.swap_waits)
        k["wafer.defect_cores"] = float(t.defect_cores)
        k["wafer.failed_for_cores"] = float(t.failed_for_cores)
        k["repair.auto_fixed"] = float(t.auto_fixed)
        k["repair.escalated"] = float(t.escalated)
        k["repair.wrong_unit"] = float(t.wrong_unit)
        k["repair.silent_failures"] = float(t.silent)
        k["repair.crew_utilization"] = t.crew_busy_h / (self.sc.repair.crews * until)
        return k


def run_reference(
    scenario: Scenario,
    *,
    seed: int | None = None,
    until: float | None = None,
    step_min: float = 1.0,
) -> ReferenceResult:
    """One replication of the reference model (horizon and seed default to the scenario's)."""
    started = time.perf_counter()
    seed = scenario.run.seed if seed is None else seed
    horizon = scenario.run.until if until is None else until
    model = _Reference(scenario, seed, step_min)
    model.run(horizon)
    return ReferenceResult(
        seed=seed,
        until_h=horizon,
        systems=len(model.systems),
        step_min=step_min,
        wall_s=time.perf_counter() - started,
        kpis=model.kpis(horizon),
    )
