"""Repair: crews on a shift calendar, and the pipeline every fault goes through.

A fault is diagnosed (automatically, `diagnosis` time), then goes through
two stages. Stage 1, the automated fix (`auto_fix` time), escalates with
probability `escalate_probability`; otherwise it leaves the unit at its age
(minimal repair), and with `auto_silent_failure_probability` the fix only
looked done: the unit is back in service, still faulty, and fails again
after `detection_delay` (a new failure, which starts its own pipeline).
Stage 2, for escalated faults: a crew repairs it by hand: it takes a spare
part (waiting for a delivery on a stockout), waits for a crew (`Crews`:
given out when work can start, to the faults that bring a system back
first; or at once when crews are "unlimited") and replaces the unit (a new
unit: its clock restarts). Diagnosis may blame a healthy unit of the same
class (`wrong_unit_probability`): that unit is replaced, the fault persists
and is found again after `detection_delay`. A replacement may also silently
fail (`silent_failure_probability`): the unit stays down, still faulty, and
the fault is found after `detection_delay`; either way stage 2 starts again
after a new diagnosis. A swap of the whole system
overtakes every repair in flight on it: they are interrupted, parts in hand
go back on the shelf and crews are released; while the system waits for its
swap its repairs take no part and no crew. Every independent draw has its
own stream, ``repair.<class>.<stage>`` (`RepairStreams`).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, fields
from typing import Any, Protocol

import numpy as np
import simpy

from twin.fleet import Fleet
from twin.mechanisms.spares import PartStock
from twin.rng import Streams
from twin.scenario import RepairSpec

__all__ = ["Crews", "Repairable", "RepairShop", "RepairStreams", "FIRST", "THEN", "SKIP"]


# A job's priority when it is dispatched: FIRST (it brings a system back), THEN
# (any other), or SKIP (its system is being swapped whole: no crew for it).
FIRST, THEN, SKIP = 0, 1, None
Priority = Callable[[], int | None]


@dataclass(eq=False, slots=True)
class _Job:
    """A request for a crew: granted through `event`, in priority then arrival order."""

    seq: int
    event: simpy.Event
    priority: Priority
    system: int
    waiting: bool = True


def _always_first() -> int:
    return FIRST


class Crews:
    """Repair crews on a shift calendar, and their dispatcher.

    A crew is given to a job only when work can start (a crew is free and on
    shift), and then to the job that is first at that moment: a job's
    priority is evaluated when it is dispatched, not when it asked. Two
    heaps in arrival order hold the waiting jobs: every job, and those that
    were FIRST when last looked at; a job whose priority has changed since
    is re-examined when it reaches the top (`reconsider` pushes the jobs of a
    system that has just gone down). Each dispatch costs O(log n) in the
    queue's length, so a hall whose crews cannot keep up stays linear in time.
    """

    def __init__(self, env: simpy.Environment, spec: RepairSpec) -> None:
        self.env, self.spec = env, spec
        # unlimited crews (inf): every job is granted as it asks, always on shift
        self.free = spec.crew_count
        self.busy_h = 0.0
        self.waiting = 0  # jobs waiting for a crew
        self._all: list[tuple[int, _Job]] = []
        self._first: list[tuple[int, _Job]] = []
        self._by_system: dict[int, list[_Job]] = {}
        self._seq = itertools.count()
        self._wake: simpy.Event | None = None  # the pending wake-up at the next shift start

    def wait_for_shift(self) -> float:
        """Hours from now until the crews are on shift (0 when on shift)."""
        start, length = self.spec.shift_start, self.spec.shift_length
        if length >= 24.0:
            return 0.0
        into = (self.env.now - start) % 24.0
        return 0.0 if into < length else 24.0 - into

    def on_shift_hours(self, horizon: float) -> float:
        """Hours in [0, horizon) during which the crews are on shift."""
        start, length = self.spec.shift_start, self.spec.shift_length
        if length >= 24.0:
            return horizon
        days, rest = divmod(horizon, 24.0)
        covered = days * length
        # the shift windows [start + 24 d, start + 24 d + length) that meet the last partial
        # day [24 days, horizon) start at `start` and at `start - 24` relative to it
        for offset in (start - 24.0, start):
            covered += max(0.0, min(rest, offset + length) - max(0.0, offset))
        return covered

    def utilization(self, horizon: float) -> float:
        """Hands-on hours per on-shift crew-hour over [0, horizon) (0 with unlimited
        crews: their crew-hours are without end)."""
        on_shift = self.spec.crew_count * self.on_shift_hours(horizon)
        return self.busy_h / on_shift if on_shift > 0.0 else 0.0

    def work(
        self, hours: float, priority: int | Priority = FIRST, system: int = -1
    ) -> Generator[Any, Any, bool]:
        """Hold a crew for `hours` of hands-on work, starting on shift. `priority` is
        FIRST or THEN, or a callable giving it (or SKIP) at the moment of dispatch.
        Returns whether the work was done: False when the job came up for a crew
        while SKIP (no crew was taken)."""
        if isinstance(priority, int):
            priority = _always_first if priority == FIRST else (lambda: THEN)
        job = _Job(next(self._seq), self.env.event(), priority, system)
        self._enqueue(job)
        try:
            granted = yield job.event
        except simpy.Interrupt:
            if job.waiting:
                self._withdraw(job)
            elif job.event.value:  # granted, but called off before it resumed
                self.release()
            raise
        if not granted:
            return False
        started = self.env.now
        try:
            yield self.env.timeout(hours)
        except simpy.Interrupt:
            self.busy_h += self.env.now - started
            self.release()
            raise
        self.busy_h += hours
        self.release()
        return True

    def reconsider(self, system: int) -> None:
        """The priorities of the jobs of `system` may have risen: look at them again."""
        for job in self._by_system.get(system, ()):
            if job.priority() == FIRST:
                heapq.heappush(self._first, (job.seq, job))
        if self._first:
            self._dispatch()

    def release(self) -> None:
        self.free += 1
        self._dispatch()

    def _enqueue(self, job: _Job) -> None:
        self.waiting += 1
        heapq.heappush(self._all, (job.seq, job))
        if job.priority() == FIRST:
            heapq.heappush(self._first, (job.seq, job))
        if job.system >= 0:
            self._by_system.setdefault(job.system, []).append(job)
        self._dispatch()

    def _withdraw(self, job: _Job) -> None:
        """A waiting job leaves the queue (its heap entries are skipped when popped)."""
        job.waiting = False
        self.waiting -= 1
        if job.system >= 0:
            jobs = self._by_system[job.system]
            jobs.remove(job)
            if not jobs:
                del self._by_system[job.system]

    def _dispatch(self, shift_started: bool = False) -> None:
        if not self.free or not self.waiting:
            return
        # at the wake-up for a shift start the clock may read a hair before it
        wait = 0.0 if shift_started else self.wait_for_shift()
        if wait > 0.0:
            if self._wake is None:
                self._wake = self.env.timeout(wait)
                self._wake.callbacks.append(self._shift_starts)
            return
        while self.free and (job := self._next()) is not None:
            self._withdraw(job)
            self.free -= 1
            job.event.succeed(True)

    def _shift_starts(self, _event: object) -> None:
        self._wake = None
        self._dispatch(shift_started=True)

    def _next(self) -> _Job | None:
        """The waiting job that goes first now, or None."""
        first, every = self._first, self._all
        while first:
            _, job = heapq.heappop(first)
            if job.waiting and job.priority() == FIRST:
                return job
        while every:
            _, job = heapq.heappop(every)
            if not job.waiting:
                continue
            if job.priority() is SKIP:  # no crew for it: its repair is told so
                self._withdraw(job)
                job.event.succeed(False)
                continue
            return job
        return None


@dataclass(frozen=True)
class RepairStreams:
    """The streams of one class's repairs, one per independent draw of the pipeline
    (``repair.<class>.<stage>``): changing one stage's law leaves the others' draws."""

    diagnosis: np.random.Generator
    auto_fix: np.random.Generator  # the automated fix's duration
    escalate: np.random.Generator  # whether the automated fix fails
    wrong_unit: np.random.Generator  # whether diagnosis blames another unit, and which
    repair_time: np.random.Generator
    silent: np.random.Generator  # whether a replacement silently fails
    detection: np.random.Generator  # the delay before a persisting fault is found
    auto_silent: np.random.Generator  # whether an automated fix silently fails
    recurrence: np.random.Generator  # the delay before its fault shows again

    @classmethod
    def named(cls, streams: Streams, name: str) -> RepairStreams:
        return cls(**{f.name: streams[f"repair.{name}.{f.name}"] for f in fields(cls)})


class Repairable(Protocol):
    """A component class as the repair pipeline sees it."""

    name: str
    count: int
    bit: int  # its reason for a system being down (below k of n)
    escalate_probability: float
    up: list[bool]  # per unit (flat index): working now
    repair_streams: RepairStreams

    def restore(self, unit: int, renewed: bool, fails_after: float | None = None) -> None: ...

    def replace_healthy(self, unit: int) -> None: ...

    def repair_hours(self) -> float: ...


class RepairShop:
    """Runs the repair pipeline of every fault; keeps the repair statistics.

    A fault's crew priority, evaluated when a crew could start on it: FIRST if
    its class is below its k of n in the system (the system is down, and this
    repair is one it needs to come back; whatever else holds it, a remap, a
    thermal trip or another class, ends on its own or has repairs of its
    own); SKIP while the system waits to be swapped whole (the swap renews
    every unit: no crew and no part is spent on it, the swap calls the
    repair off); THEN otherwise (the system runs, on its redundancy).
    """

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
        self._swap_bit = fleet.bit("wafer")  # the system waits for a swap
        self.auto_fixed = 0
        self.escalated = 0
        self.wrong_unit = 0
        self.silent = 0
        self.auto_silent = 0
        # hours from failure to restore of each completed restore, by class, and
        # whether it was manual (a crew's replacement) or the automated fix
        self.restore_hours: dict[str, list[float]] = {}
        self.restore_manual: dict[str, list[bool]] = {}
        # restores under way: class -> the pipeline's process -> failed at
        self.open_since: dict[str, dict[object, float]] = {}

    @staticmethod
    def _draw(dist: Any, rng: np.random.Generator) -> float:
        return dist.draw(rng)  # type: ignore[no-any-return]

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

    def system_down(self, system: int) -> None:
        """A class of `system` fell below its k of n: its repairs now go first."""
        self.crews.reconsider(system)

    def abandon(self, system: int) -> None:
        """The system was swapped out: stop every repair in flight on it (parts in
        hand go back on the shelf, crews are released)."""
        for process in self._in_flight.pop(system, set()):
            if process.is_alive:
                process.interrupt("system swapped")

    def _swapping(self, s: int) -> bool:
        return bool(self.fleet.reasons[s] & self._swap_bit)

    def _priority(self, target: Repairable, s: int) -> Priority:
        reasons = self.fleet.reasons

        def now() -> int | None:
            if reasons[s] & self._swap_bit:
                return SKIP
            return FIRST if reasons[s] & target.bit else THEN

        return now

    def _pipeline(self, target: Repairable, part: str, s: int, unit: int):  # type: ignore[no-untyped-def]
        """A fault's repair: diagnosis, the automated stage, then, if it escalated,
        the manual stage until a replacement holds (each retry found again after
        `detection_delay` and diagnosed anew)."""
        env, spec, rng = self.env, self.spec, target.repair_streams
        failed_at = env.now
        try:
            yield env.timeout(self._draw(spec.diagnosis, rng.diagnosis))
            if (yield from self._automated(target, s, unit, failed_at)):
                return
            while not (yield from self._manual(target, self.stock[part], s, unit, failed_at)):
                yield env.timeout(self._draw(spec.detection_delay, rng.detection))
                yield env.timeout(self._draw(spec.diagnosis, rng.diagnosis))
        except simpy.Interrupt:
            return  # the system was swapped whole: its new units need no repair
        finally:
            self._in_flight.get(s, set()).discard(env.active_process)
            self.open_since[target.name].pop(env.active_process, None)

    def _automated(self, target: Repairable, s: int, unit: int, failed_at: float):  # type: ignore[no-untyped-def]
        """Stage 1, the automated fix: escalates with `escalate_probability` (False:
        the manual stage follows); else the unit is back at its age (True), and with
        `auto_silent_failure_probability` the fix only looked done: the fault shows
        again `detection_delay` later, as a new failure of the unit."""
        env, spec, rng = self.env, self.spec, target.repair_streams
        yield env.timeout(self._draw(spec.auto_fix, rng.auto_fix))
        if rng.escalate.random() < target.escalate_probability:
            self.escalated += 1
            return False
        silent = spec.auto_silent_failure_probability
        if silent > 0.0 and rng.auto_silent.random() < silent:
            self.auto_silent += 1
            self.fleet.recorder.emit(env.now, self.fleet.scopes[s], "silent_auto_fix", target.name)
            recurs = self._draw(spec.detection_delay, rng.recurrence)
            self._restored(target, unit, failed_at, renewed=False, fails_after=recurs)
            return True
        self.auto_fixed += 1
        self._restored(target, unit, failed_at, renewed=False)
        return True

    def _manual(  # type: ignore[no-untyped-def]
        self, target: Repairable, stock: PartStock, s: int, unit: int, failed_at: float
    ):
        """Stage 2, one manual repair: a part, a crew, a replacement. True when it
        held; False when the fault persists (a silent failure, or a healthy unit
        replaced on a wrong diagnosis), to be found again."""
        env, spec, fleet, rng = self.env, self.spec, self.fleet, target.repair_streams
        blamed = unit
        if rng.wrong_unit.random() < spec.wrong_unit_probability:
            blamed = self._blame(target, unit, rng.wrong_unit)
        if self._swapping(s):
            yield env.event()  # never fires: the swap calls this repair off
        yield from stock.take()
        if self._swapping(s):  # the wafer failed while the part was on its way
            stock.give_back()
            yield env.event()
        try:
            worked = yield from self.crews.work(
                target.repair_hours(), self._priority(target, s), s
            )
        except simpy.Interrupt:
            stock.give_back()  # the part in hand goes back on the shelf
            raise
        if not worked:  # the system waits to be swapped whole: the swap calls this off
            stock.give_back()
            yield env.event()
        if blamed == unit:
            if rng.silent.random() >= spec.silent_failure_probability:
                self._restored(target, unit, failed_at, renewed=True)
                return True
            self.silent += 1
            fleet.recorder.emit(env.now, fleet.scopes[s], "silent_repair_failure", target.name)
        elif target.up[blamed]:
            self.wrong_unit += 1
            target.replace_healthy(blamed)
            fleet.recorder.emit(env.now, fleet.scopes[s], "wrong_unit", target.name)
        else:  # the blamed unit failed meanwhile: its own repair sees to it
            stock.give_back()
        return False

    def _restored(
        self, target: Repairable, unit: int, failed_at: float, renewed: bool,
        fails_after: float | None = None,
    ) -> None:
        self.restore_hours.setdefault(target.name, []).append(self.env.now - failed_at)
        self.restore_manual.setdefault(target.name, []).append(renewed)
        target.restore(unit, renewed, fails_after)

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
