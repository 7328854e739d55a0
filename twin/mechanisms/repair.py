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
overtakes every repair in flight on it: they are called off, parts in hand
go back on the shelf, crews are released (their hours so far booked) and
requests still waiting are withdrawn; while the system waits for its swap
its repairs take no part and no crew. Every independent draw has its own
stream, ``repair.<class>.<stage>`` (`RepairStreams`).

A fault's pipeline is a state machine on callbacks (`_Repair`), not a SimPy
process: a stage that takes time is one timeout whose callback starts the
next; a part on the shelf, or a crew free and on shift, is had at once with
no event, and a repair that waits for either is called back by the delivery,
the part given back or the dispatch that serves it (docs/performance.md).
Diagnosis and the automated fix follow each other with nothing between them
that anything could see: both are drawn as the fault starts and waited out
as one timeout.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import numpy as np
import simpy

from twin.agenda import Wake
from twin.distributions import Distribution
from twin.fleet import Fleet
from twin.mechanisms.spares import PartStock
from twin.rng import Streams
from twin.scenario import RepairSpec

__all__ = ["Crews", "Repairable", "RepairShop", "RepairStreams", "FIRST", "THEN", "SKIP"]


# A job's priority when it is dispatched: FIRST (it brings a system back), THEN
# (any other), or SKIP (its system is being swapped whole: no crew for it).
FIRST, THEN, SKIP = 0, 1, None
Priority = Callable[[], int | None]
Done = Callable[[bool], object]  # told whether a job's work was done


@dataclass(eq=False, slots=True)
class _Job:
    """A request for `hours` of a crew's work, dispatched in priority then arrival
    order; `done` is told when the work is done (True) or the job came up while
    SKIP (False), and is None once told or called off."""

    seq: int
    hours: float
    priority: Priority
    system: int
    done: Done | None
    waiting: bool = True
    started: float = math.nan  # when its crew started


def _always_first() -> int:
    return FIRST


def _always_then() -> int:
    return THEN


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

    `assign` asks for a crew with a callback: a job dispatched as it asks
    (a crew free on shift) or later (a crew released, a shift start) starts
    then, and its hours are one timeout; `work` is the same for a SimPy
    process (a system swap).
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

    def assign(
        self, hours: float, priority: int | Priority, system: int, done: Done
    ) -> _Job:
        """Ask for a crew for `hours` of hands-on work, starting on shift. `priority` is
        FIRST or THEN, or a callable giving it (or SKIP) at the moment of dispatch;
        `system` is the job's (-1: none). `done(True)` when the work is done,
        `done(False)` when the job came up for a crew while SKIP (no crew was taken).
        Returns the job, to `call_off`."""
        if isinstance(priority, int):
            priority = _always_first if priority == FIRST else _always_then
        job = _Job(next(self._seq), hours, priority, system, done)
        self._enqueue(job)
        return job

    def work(
        self, hours: float, priority: int | Priority = FIRST
    ) -> Generator[simpy.Event, Any, bool]:
        """`assign` for a SimPy process that is never called off (a system swap):
        yields until the work is done; returns whether it was (False: SKIP)."""
        done = self.env.event()
        self.assign(hours, priority, -1, done.succeed)
        worked: bool = yield done
        return worked

    def call_off(self, job: _Job) -> None:
        """The job's repair was abandoned: it leaves the queue, or its crew is released
        with the hours worked so far booked (nothing for a job already told)."""
        if job.done is None:
            return
        job.done = None
        if job.waiting:
            self._withdraw(job)
            return
        self.busy_h += self.env.now - job.started
        self.release()

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
                self._wake = Wake(self.env, self._shift_starts, wait)
            return
        env = self.env
        skipped: list[_Job] = []
        while self.free and (job := self._next(skipped)) is not None:
            self._withdraw(job)
            self.free -= 1
            job.started = env.now
            Wake(env, partial(self._finish, job), job.hours)
        # told once the queue is settled: a repair told may give back its part, and the
        # repair that part serves ask for a crew
        for job in skipped:
            done, job.done = job.done, None
            assert done is not None
            done(False)

    def _finish(self, job: _Job, _event: object) -> None:
        """The hours of `job` are over: its crew is released, then its repair told."""
        done = job.done
        if done is None:  # called off meanwhile: its hours were booked then
            return
        job.done = None
        self.busy_h += job.hours
        self.release()
        done(True)

    def _shift_starts(self, _event: object) -> None:
        self._wake = None
        self._dispatch(shift_started=True)

    def _next(self, skipped: list[_Job]) -> _Job | None:
        """The waiting job that goes first now, or None; the jobs found SKIP on the way
        leave the queue and go on `skipped`, to be told."""
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
                skipped.append(job)
                continue
            return job
        return None


class RepairStreams:
    """The streams of one class's repairs, one per independent draw of the pipeline
    (``repair.<class>.<stage>``): changing one stage's law leaves the others' draws.
    A stage's stream is made when it is first drawn from, and kept: a stream takes
    ~70 us to make, and many stages of a class never draw (an automated fix of fixed
    length, one that never fails silently, a class never escalated): a GPU hall's
    18 classes make 109 of their 162 in a year."""

    diagnosis: np.random.Generator
    auto_fix: np.random.Generator  # the automated fix's duration
    escalate: np.random.Generator  # whether the automated fix fails
    wrong_unit: np.random.Generator  # whether diagnosis blames another unit, and which
    repair_time: np.random.Generator
    silent: np.random.Generator  # whether a replacement silently fails
    detection: np.random.Generator  # the delay before a persisting fault is found
    auto_silent: np.random.Generator  # whether an automated fix silently fails
    recurrence: np.random.Generator  # the delay before its fault shows again

    def __init__(self, streams: Streams, name: str) -> None:
        self._streams, self._name = streams, name

    def __getattr__(self, stage: str) -> np.random.Generator:
        """The stream of a stage not drawn from yet (then an attribute like any other)."""
        if stage not in _STAGES:
            raise AttributeError(stage)
        rng = self.__dict__[stage] = self._streams[f"repair.{self._name}.{stage}"]
        return rng


_STAGES = frozenset(RepairStreams.__annotations__)


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
        # repairs by system, in the order they started (a dict: called off in that order)
        self._in_flight: dict[int, dict[_Repair, None]] = {}
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
        # restores under way: class -> the fault's repair -> failed at
        self.open_since: dict[str, dict[object, float]] = {}

    @staticmethod
    def _blame(target: Repairable, unit: int, rng: np.random.Generator) -> int:
        """A healthy unit of the same system that a wrong diagnosis points at, or
        `unit` itself when every other unit is down too."""
        first = unit - unit % target.count
        others = [u for u in range(first, first + target.count) if u != unit and target.up[u]]
        return others[int(rng.integers(len(others)))] if others else unit

    def start(self, target: Repairable, part: str, system: int, unit: int) -> None:
        """Begin the repair of `unit` (flat index) of `target` in `system`."""
        repair = _Repair(self, target, self.stock[part], system, unit)
        self._in_flight.setdefault(system, {})[repair] = None
        self.open_since.setdefault(target.name, {})[repair] = repair.failed_at
        # diagnosis, then the automated fix: nothing happens between them, one timeout
        rng = target.repair_streams
        hours = self.spec.diagnosis.draw(rng.diagnosis) + self.spec.auto_fix.draw(rng.auto_fix)
        Wake(self.env, repair.auto_fix_done, hours)

    def system_down(self, system: int) -> None:
        """A class of `system` fell below its k of n: its repairs now go first."""
        self.crews.reconsider(system)

    def abandon(self, system: int) -> None:
        """The system was swapped out: call off every repair in flight on it. Requests
        for a part or a crew are withdrawn and crews at work released first (a crew
        goes to the jobs that waited for one), then parts in hand go back on the
        shelf (to the repairs that waited for one)."""
        repairs = self._in_flight.pop(system, {})
        for repair in repairs:
            repair.call_off()
        for repair in repairs:
            if repair.has_part:
                repair.give_back()

    def _swapping(self, s: int) -> bool:
        return bool(self.fleet.reasons[s] & self._swap_bit)

    def _ended(self, repair: _Repair) -> None:
        """`repair` is over (restored, or called off): no longer in flight."""
        self._in_flight.get(repair.s, {}).pop(repair, None)
        self.open_since[repair.target.name].pop(repair, None)

    def _restored(
        self, repair: _Repair, renewed: bool, fails_after: float | None = None
    ) -> None:
        target = repair.target
        self._ended(repair)
        self.restore_hours.setdefault(target.name, []).append(self.env.now - repair.failed_at)
        self.restore_manual.setdefault(target.name, []).append(renewed)
        target.restore(repair.unit, renewed, fails_after)

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


class _Repair:
    """One fault's repair, a state machine on callbacks: diagnosis, the automated
    stage, then, if it escalated, the manual stage until a replacement holds (each
    retry found again after `detection_delay` and diagnosed anew).

    A stage that takes time is `after`: one timeout that calls the next stage. In
    the manual stage the repair waits for a part (`wants_part`), then holds it
    (`has_part`) while its crew job (`job`) waits and works. `off` once its system
    was swapped: a stage's timeout still pending then does nothing. A repair whose
    system waits for its swap takes no part and no crew, and waits for the swap to
    call it off."""

    __slots__ = (
        "shop", "target", "stock", "s", "unit", "failed_at", "blamed", "job", "wants_part",
        "has_part", "off",
    )

    def __init__(
        self, shop: RepairShop, target: Repairable, stock: PartStock, s: int, unit: int
    ) -> None:
        self.shop, self.target, self.stock, self.s, self.unit = shop, target, stock, s, unit
        self.failed_at = shop.env.now
        self.blamed = unit  # the unit a manual attempt replaces
        self.job: _Job | None = None
        self.wants_part = self.has_part = self.off = False

    def after(
        self, dist: Distribution, rng: np.random.Generator, then: Callable[[Any], None]
    ) -> None:
        """Call `then` a draw of `dist` from now."""
        Wake(self.shop.env, then, dist.draw(rng))

    def auto_fix_done(self, _event: object) -> None:
        """Stage 1, the automated fix: escalates with `escalate_probability` (the
        manual stage follows); else the unit is back at its age, and with
        `auto_silent_failure_probability` the fix only looked done: the fault shows
        again `detection_delay` later, as a new failure of the unit."""
        if self.off:
            return
        shop, target = self.shop, self.target
        spec, rng = shop.spec, target.repair_streams
        if rng.escalate.random() < target.escalate_probability:
            shop.escalated += 1
            self._manual()
            return
        silent = spec.auto_silent_failure_probability
        if silent > 0.0 and rng.auto_silent.random() < silent:
            shop.auto_silent += 1
            fleet = shop.fleet
            fleet.recorder.emit(shop.env.now, fleet.scopes[self.s], "silent_auto_fix", target.name)
            recurs = spec.detection_delay.draw(rng.recurrence)
            shop._restored(self, renewed=False, fails_after=recurs)
            return
        shop.auto_fixed += 1
        shop._restored(self, renewed=False)

    def _manual(self, _event: object = None) -> None:
        """Stage 2, one manual attempt: the unit it blames, then a part (at once off the
        shelf, or when one comes), a crew, a replacement."""
        if self.off:
            return
        shop, target, unit = self.shop, self.target, self.unit
        rng = target.repair_streams
        self.blamed = unit
        if rng.wrong_unit.random() < shop.spec.wrong_unit_probability:
            self.blamed = shop._blame(target, unit, rng.wrong_unit)
        if shop._swapping(self.s):
            return  # the swap calls this repair off
        self.wants_part = True
        self.stock.take(self._part_in_hand)

    def _part_in_hand(self) -> None:
        shop = self.shop
        self.wants_part, self.has_part = False, True
        if shop._swapping(self.s):  # the wafer failed while the part was on its way
            self.give_back()
            return
        self.job = shop.crews.assign(
            self.target.repair_hours(), self._priority, self.s, self._worked)

    def _priority(self) -> int | None:
        """FIRST, THEN or SKIP (`RepairShop`), now."""
        reasons = self.shop.fleet.reasons[self.s]
        if reasons & self.shop._swap_bit:
            return SKIP
        return FIRST if reasons & self.target.bit else THEN

    def _worked(self, worked: bool) -> None:
        """The crew is done (True), or came up while the system waits to be swapped
        whole (False: the part goes back, the swap calls this repair off). A
        replacement that holds restores the unit; otherwise the fault persists (a
        silent failure, or a healthy unit replaced on a wrong diagnosis) and is found
        again `detection_delay` later, to be diagnosed anew."""
        self.job = None
        if not worked:
            self.give_back()
            return
        shop, target, blamed = self.shop, self.target, self.blamed
        spec, fleet, rng = shop.spec, shop.fleet, target.repair_streams
        self.has_part = False
        if blamed == self.unit:
            if rng.silent.random() >= spec.silent_failure_probability:
                shop._restored(self, renewed=True)
                return
            shop.silent += 1
            fleet.recorder.emit(shop.env.now, fleet.scopes[self.s], "silent_repair_failure",
                                target.name)
        elif target.up[blamed]:
            shop.wrong_unit += 1
            target.replace_healthy(blamed)
            fleet.recorder.emit(shop.env.now, fleet.scopes[self.s], "wrong_unit", target.name)
        else:  # the blamed unit failed meanwhile: its own repair sees to it
            self.stock.give_back()
        self.after(spec.detection_delay, rng.detection, self._found_again)

    def _found_again(self, _event: object) -> None:
        if not self.off:
            self.after(self.shop.spec.diagnosis, self.target.repair_streams.diagnosis,
                       self._manual)

    def give_back(self) -> None:
        """The part in hand goes back on the shelf, unused."""
        self.has_part = False
        self.stock.give_back()

    def call_off(self) -> None:
        """The system was swapped: no stage follows; a request for a part or a crew is
        withdrawn, a crew at work released (a part in hand is `RepairShop.abandon`'s)."""
        self.off = True
        self.shop._ended(self)
        if self.wants_part:
            self.wants_part = False
            self.stock.withdraw(self._part_in_hand)
        if self.job is not None:
            job, self.job = self.job, None
            self.shop.crews.call_off(job)
