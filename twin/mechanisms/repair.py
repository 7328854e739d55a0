"""Repair: crews on a shift calendar, and the pipeline every fault goes through.

A fault is diagnosed (automatically, `diagnosis` time); the first attempt is
an automated fix (`auto_fix` time) that clears the fault with probability
``1 - escalate_probability`` and leaves the unit at its age (minimal repair).
Otherwise a crew repairs it by hand: it takes a spare part (waiting for a
delivery on a stockout), waits for a crew (system-down faults first) and for
the shift, and replaces the unit (a new unit: its clock restarts). Diagnosis
may blame a healthy unit of the same class (`wrong_unit_probability`): that
unit is replaced, the fault persists and is found again after
`detection_delay`. A replacement may also silently fail
(`silent_failure_probability`): the unit is back in place, still faulty, and
the fault is found after `detection_delay`. A swap of the whole system
overtakes every repair in flight on it: they are interrupted, parts in hand
go back on the shelf and crews are released.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any, Protocol

import numpy as np
import simpy

from twin.fleet import Fleet
from twin.mechanisms.spares import PartStock
from twin.scenario import RepairSpec

__all__ = ["Crews", "Repairable", "RepairShop"]


class Crews:
    """Repair crews: a priority resource that works only on shift."""

    def __init__(self, env: simpy.Environment, spec: RepairSpec) -> None:
        self.env, self.spec = env, spec
        self.resource = simpy.PriorityResource(env, capacity=spec.crews)
        self.busy_h = 0.0

    def wait_for_shift(self) -> float:
        """Hours from now until the crews are on shift (0 when on shift)."""
        start, length = self.spec.shift_start, self.spec.shift_length
        if length >= 24.0:
            return 0.0
        into = (self.env.now - start) % 24.0
        return 0.0 if into < length else 24.0 - into

    def work(self, hours: float, priority: int) -> Generator[Any, Any, None]:
        """Hold a crew for `hours` of hands-on work, starting on shift."""
        with self.resource.request(priority=priority) as req:
            yield req
            wait = self.wait_for_shift()
            if wait > 0.0:
                yield self.env.timeout(wait)
            yield self.env.timeout(hours)
            self.busy_h += hours


class Repairable(Protocol):
    """A component class as the repair pipeline sees it."""

    name: str
    count: int
    escalate_probability: float
    up: np.ndarray  # per unit (flat index): working now
    repair_rng: np.random.Generator  # this class's own repair stream

    def restore(self, unit: int, renewed: bool) -> None: ...

    def replace_healthy(self, unit: int) -> None: ...

    def repair_hours(self) -> float: ...


class RepairShop:
    """Runs the repair pipeline of every fault; keeps the repair statistics."""

    def __init__(
        self,
        env: simpy.Environment,
        fleet: Fleet,
        spec: RepairSpec,
        crews: Crews,
        stock: dict[str, PartStock],
    ) -> None:
        self.env, self.fleet, self.spec, self.crews = env, fleet, spec, crews
        self.stock = stock
        self._in_flight: dict[int, set[simpy.Process]] = {}  # repairs by system
        self.auto_fixed = 0
        self.escalated = 0
        self.wrong_unit = 0
        self.silent = 0
        # hours from failure to restore of each completed restore, by class, and
        # whether it was manual (a crew's replacement) or the automated fix
        self.restore_hours: dict[str, list[float]] = {}
        self.restore_manual: dict[str, list[bool]] = {}
        # restores under way: class -> the pipeline's process -> failed at
        self.open_since: dict[str, dict[object, float]] = {}

    @staticmethod
    def _draw(dist: Any, rng: np.random.Generator) -> float:
        return float(dist.sample(rng))

    @staticmethod
    def _blame(target: Repairable, unit: int, rng: np.random.Generator) -> int:
        """A healthy unit of the same system that a wrong diagnosis points at, or
        `unit` itself when every other unit is down too."""
        first = unit - unit % target.count
        others = [u for u in range(first, first + target.count) if u != unit and target.up[u]]
        return others[int(rng.integers(len(others)))] if others else unit

    def start(self, target: Repairable, part: str, system: int, unit: int) -> None:
        """Begin the repair of `unit` (flat index) of `target` in `system`."""
        process = self.env.process(self._pipeline(target, part, system, unit))
        self._in_flight.setdefault(system, set()).add(process)
        self.open_since.setdefault(target.name, {})[process] = self.env.now

    def abandon(self, system: int) -> None:
        """The system was swapped out: stop every repair in flight on it (parts in
        hand go back on the shelf, crews are released)."""
        for process in self._in_flight.pop(system, set()):
            if process.is_alive:
                process.interrupt("system swapped")

    def _pipeline(self, target: Repairable, part: str, s: int, unit: int):  # type: ignore[no-untyped-def]
        env, spec, fleet, rng = self.env, self.spec, self.fleet, target.repair_rng
        stock = self.stock[part]
        failed_at = env.now
        first = True
        in_hand = False
        try:
            while True:
                yield env.timeout(self._draw(spec.diagnosis, rng))
                if first:
                    first = False
                    yield env.timeout(self._draw(spec.auto_fix, rng))
                    if rng.random() >= target.escalate_probability:
                        self.auto_fixed += 1
                        self._restored(target, unit, failed_at, renewed=False)
                        return
                    self.escalated += 1
                blamed = unit
                if rng.random() < spec.wrong_unit_probability:
                    blamed = self._blame(target, unit, rng)
                yield from stock.take()
                in_hand = True
                priority = 0 if fleet.reasons[s] else 1
                yield from self.crews.work(target.repair_hours(), priority)
                in_hand = False
                if blamed == unit:
                    if rng.random() >= spec.silent_failure_probability:
                        self._restored(target, unit, failed_at, renewed=True)
                        return
                    self.silent += 1
                    fleet.recorder.emit(
                        env.now, fleet.scopes[s], "silent_repair_failure", target.name
                    )
                elif target.up[blamed]:
                    self.wrong_unit += 1
                    target.replace_healthy(blamed)
                    fleet.recorder.emit(env.now, fleet.scopes[s], "wrong_unit", target.name)
                else:  # the blamed unit failed meanwhile: its own repair sees to it
                    stock.give_back()
                yield env.timeout(self._draw(spec.detection_delay, rng))
        except simpy.Interrupt:
            if in_hand:
                stock.give_back()
        finally:
            self._in_flight.get(s, set()).discard(env.active_process)
            self.open_since[target.name].pop(env.active_process, None)

    def _restored(self, target: Repairable, unit: int, failed_at: float, renewed: bool) -> None:
        self.restore_hours.setdefault(target.name, []).append(self.env.now - failed_at)
        self.restore_manual.setdefault(target.name, []).append(renewed)
        target.restore(unit, renewed)

    def mttr(self, name: str, manual: bool | None = None) -> float:
        """Mean hours from failure to restore of the completed restores of class
        `name`: all, or only the manual (True) or automated (False) ones; NaN when
        there were none."""
        hours = self.restore_hours.get(name, [])
        if manual is not None:
            ways = self.restore_manual[name] if hours else []
            hours = [h for h, way in zip(hours, ways, strict=True) if way == manual]
        return float(np.mean(hours)) if hours else math.nan

    def open_ages(self, name: str) -> list[float]:
        """Ages (hours since the failure) of the restores of class `name` under way."""
        now = self.env.now
        return [now - t for t in self.open_since.get(name, {}).values()]
