"""`TrainingJob`: a gang job on K systems that saves its state, computes at the
speed of its slowest member, and recovers whenever any of its systems goes down.

The job is a small state machine over phases (compute, checkpoint write,
restart, host selection, reclaim, waiting for a system) whose next end is
computed in closed form and held on an `Agenda` (one key: the job). It hears
of every system going down, coming back or changing speed through
`Fleet.on_capacity_change`, whatever the reason. A failure of a gang member
ends the phase in progress, books the time it lost to its cause (with
periodic checkpoints, the compute since the last one is lost; with continuous
checkpointing, none) and starts the recovery: the policies of
`twin.workloads.training.recovery`, asked in order (standbys, the working
pool after a host selection, the preemptible pool after a reclaim, a wait for
a repair). A change of a member's speed while computing moves the end of the
compute phase. Per-system state is lists, the gang a dict, the slowest member
a heap: no scan of the hall per event.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import simpy

from twin.agenda import Agenda
from twin.fleet import Fleet
from twin.scenario import TrainingSpec
from twin.workloads.training.recovery import (
    HostSelection,
    PreemptiblePool,
    Recovery,
    Standbys,
    WaitForRepair,
)
from twin.workloads.training.speed import Slowest

__all__ = ["PHASES", "SOURCES", "TrainingJob", "young_interval", "daly_interval"]

# Where wall time goes besides useful work (the `training.lost_h.*` KPIs)
PHASES = ("rework", "checkpoint", "restart", "host_selection", "reclaim", "waiting", "throttled")
# Where the systems that fill the gang's empty slots come from (`training.swaps.*`)
SOURCES = ("standby", "pool", "preemptible", "repair")


def young_interval(cost: float, mtbi: float) -> float:
    """Young's first-order optimum compute interval: sqrt(2 delta M)."""
    return math.sqrt(2.0 * cost * mtbi)


def daly_interval(cost: float, mtbi: float) -> float:
    """Daly's higher-order optimum compute interval (2006): M when delta >= 2M."""
    if cost >= 2.0 * mtbi:
        return mtbi
    x = cost / (2.0 * mtbi)
    return math.sqrt(2.0 * cost * mtbi) * (1.0 + math.sqrt(x) / 3.0 + x / 9.0) - cost


class TrainingJob:
    """One gang job over the fleet's systems; `start` forms the gang, `kpis` reads
    its outcome."""

    def __init__(self, env: simpy.Environment, spec: TrainingSpec, fleet: Fleet) -> None:
        self.env, self.spec, self.fleet = env, spec, fleet
        n = fleet.n
        self.continuous = spec.checkpointing == "continuous"
        # work between two saves: a checkpoint interval, or all of it (continuous)
        interval = spec.checkpoint_interval
        self.interval = spec.work if self.continuous or interval is None else interval
        self.up = [False] * n
        self.gang: dict[int, float] = {}  # member -> its speed as the job counts it
        self.slowest = Slowest()
        # told (system, True) when a system joins the gang, (system, False) when it
        # leaves it (a failure, the job's end); append before `start`
        self.on_active: list[Callable[[int, bool], None]] = []
        self.standbys = Standbys(spec.standbys)
        self.pool = HostSelection(spec.host_selection)
        self.preemptible = PreemptiblePool(env, spec.preemptible, n)
        self.wait = WaitForRepair()
        # asked in this order for systems to fill the gang's empty slots
        self.recoveries: list[Recovery] = [self.standbys, self.pool, self.preemptible, self.wait]
        # asked in this order to take a system that is up again (one of them always does)
        self.offers: list[Callable[[int], bool]] = [
            self.preemptible.home, self.wait.offer, self.standbys.offer,
            self.preemptible.offer, self.pool.offer,
        ]
        self.vacant = spec.systems  # slots of the gang without a system
        self.phase = "start"
        self.since = 0.0  # start of the phase in progress (of its stretch at one speed)
        self.segment = 0.0  # work of the compute segment in progress
        self.done = 0.0  # work done in it up to `since`
        self.rate = 1.0  # the gang's speed since `since` (while it computes)
        self.committed = 0.0  # work saved
        self.finished_at = math.nan
        self.lost = dict.fromkeys(PHASES, 0.0)
        self.interruptions = 0
        self.interrupted_by: dict[str, int] = {}
        self.swaps = dict.fromkeys(SOURCES, 0)
        self._agenda = Agenda(env, self._phase_end)

    def start(self) -> None:
        """Form the gang from the systems up now, in index order (then the standbys,
        then the preemptible pool, the rest idle), and listen to the fleet."""
        fleet, size = self.fleet, self.preemptible.size
        for s in range(fleet.n):
            if not fleet.capacity(s) > 0.0:
                continue
            self.up[s] = True
            if self.vacant:
                self._join(s)
            elif not self.standbys.offer(s):
                if len(self.preemptible.running) < size:
                    self.preemptible.enlist(s)
                else:
                    self.pool.offer(s)
        fleet.on_capacity_change = self._changed
        if self.vacant:
            self._recover()
        else:
            self._compute()

    # -- the gang ----------------------------------------------------------------
    def _join(self, s: int) -> None:
        speed = min(self.fleet.capacity(s), 1.0)
        self.gang[s] = speed
        if speed < 1.0:  # (most members run at full speed: no call)
            self.slowest.add(speed)
        self.vacant -= 1
        for hook in self.on_active:
            hook(s, True)

    def _leave(self, s: int) -> None:
        speed = self.gang.pop(s)
        if speed < 1.0:
            self.slowest.remove(speed)
        self.vacant += 1
        for hook in self.on_active:
            hook(s, False)

    # -- phases ----------------------------------------------------------------
    def _enter(self, phase: str, hours: float) -> None:
        now = self.env.now
        if self.phase == "waiting":
            self.lost["waiting"] += now - self.since
        self.wait.wanted = 0
        self.phase, self.since = phase, now
        self._agenda.schedule(0, now + hours)

    def _compute(self) -> None:
        self.segment = min(self.interval, self.spec.work - self.committed)
        self.done = 0.0
        self.rate = self.slowest.lowest()
        self._enter("compute", self.segment / self.rate)

    def _progress(self) -> None:
        """Account for the compute since `since`: work at the gang's speed, the rest
        of the time lost to the slowest member."""
        now = self.env.now
        elapsed = now - self.since
        self.done += elapsed * self.rate
        self.lost["throttled"] += elapsed * (1.0 - self.rate)
        self.since = now

    def _phase_end(self, _key: int) -> None:
        phase, elapsed = self.phase, self.env.now - self.since
        if phase == "compute":
            self._progress()
            if self.continuous:
                self.committed = self.spec.work
                self._finish()
            else:
                # every segment ends with a checkpoint, the last one the trained model's
                self._enter("checkpoint", self.spec.checkpoint_cost)
        elif phase == "checkpoint":
            self.lost["checkpoint"] += elapsed
            self.committed += self.segment
            if self.committed >= self.spec.work * (1.0 - 1e-12):
                self._finish()
            else:
                self._compute()
        elif phase == "restart":
            self.lost["restart"] += elapsed
            self._compute()
        else:  # a host selection or a reclaim is over: on with the recovery
            self.lost[phase] += elapsed
            self._recover()

    def _recover(self) -> None:
        """Fill the gang's empty slots from the recovery policies in order, waiting
        out each one's delay; restart from the saved state once the gang is whole."""
        for recovery in self.recoveries:
            if not self.vacant:
                break
            given = recovery.give(self.vacant)
            for s in given:
                self._join(s)
            self.swaps[recovery.source] += len(given)
            if given and recovery.delay > 0.0:
                self._enter(recovery.cause, recovery.delay)
                return
        if not self.vacant:
            self._enter("restart", self.spec.restart_cost)
            return
        if self.phase != "waiting":
            self.phase, self.since = "waiting", self.env.now
            self._agenda.cancel(0)
        self.wait.wanted = self.vacant

    def _finish(self) -> None:
        """The last state is saved: the gang is released, loans are repaid."""
        self.phase, self.finished_at = "done", self.env.now
        for s in list(self.gang):
            self._leave(s)
        self.preemptible.release(self.up)

    # -- the fleet ---------------------------------------------------------------
    def _changed(self, s: int) -> None:
        if self.phase == "done":
            return  # the job no longer needs systems
        capacity = self.fleet.capacity(s)
        up = capacity > 0.0
        if up == self.up[s]:
            if s in self.gang:
                self._speed(s, min(capacity, 1.0))
            return
        self.up[s] = up
        if up:
            for offer in self.offers:
                if offer(s):
                    break
            if self.phase == "waiting":
                self._recover()
        elif s in self.gang:
            self._interrupted(s)
        else:
            for recovery in self.recoveries:
                recovery.lose(s)

    def _speed(self, s: int, speed: float) -> None:
        """Member `s` now runs at `speed`: while computing, the segment ends when the
        work left is done at the new speed of the slowest member."""
        self.slowest.remove(self.gang[s])
        self.gang[s] = speed
        self.slowest.add(speed)
        if self.phase != "compute":
            return
        rate = self.slowest.lowest()
        if rate != self.rate:
            self._progress()
            self.rate = rate
            self._agenda.schedule(0, self.env.now + (self.segment - self.done) / rate)

    def _interrupted(self, s: int) -> None:
        """Member `s` went down: the phase in progress ends, what it lost is booked
        (periodic: back to the last checkpoint), and the recovery starts."""
        self.interruptions += 1
        cause = self.fleet.down_cause[s]
        self.interrupted_by[cause] = self.interrupted_by.get(cause, 0) + 1
        phase = self.phase
        if phase == "compute":
            self._progress()
            if self.continuous:
                self.committed += self.done
            else:
                self.lost["rework"] += self.done
        elif phase == "checkpoint":
            self.lost["rework"] += self.segment
            self.lost["checkpoint"] += self.env.now - self.since
        elif phase != "waiting":  # a wait goes on, booked when it ends
            self.lost[phase] += self.env.now - self.since
        self._leave(s)
        self._recover()

    # -- outcome -----------------------------------------------------------------
    def kpis(self, horizon: float, causes: Iterable[str] = ()) -> dict[str, float]:
        """The `training.*` KPIs at the end of a run to `horizon` (docs/kpis.md);
        `training.interrupted_by.<cause>` for every one of `causes`, zeros included."""
        spec = self.spec
        done = not math.isnan(self.finished_at)
        wall = self.finished_at if done else horizon
        saved = self.committed
        lost = dict(self.lost)
        if not done:  # the phase open at the horizon is booked up to it
            open_h = horizon - self.since
            if self.phase == "compute":
                lost["throttled"] += open_h * (1.0 - self.rate)
                if self.continuous:  # saved as it is computed
                    saved += self.done + open_h * self.rate
            elif self.phase in lost:
                lost[self.phase] += open_h
        # the mean time between the job's interruptions, as measured in this run
        mtbi = wall / self.interruptions if self.interruptions else math.nan
        periodic = not self.continuous
        interval = spec.checkpoint_interval if periodic else None
        k = {
            "training.goodput": saved / wall if wall > 0 else math.nan,
            "training.wall_h": self.finished_at,
            "training.done_fraction": saved / spec.work,
            "training.interruptions": float(self.interruptions),
            "training.standbys_used": float(self.swaps["standby"]),
            "training.mtbi_h": mtbi,
            "training.checkpoint_interval_h": math.nan if interval is None else interval,
            "training.young_interval_h":
                young_interval(spec.checkpoint_cost, mtbi) if periodic else math.nan,
            "training.daly_interval_h":
                daly_interval(spec.checkpoint_cost, mtbi) if periodic else math.nan,
            "training.reclaimed": float(self.preemptible.reclaimed),
            "training.preemptible.work_lost_h": self.preemptible.work_lost,
            "training.preemptible.taken_h": self.preemptible.taken_hours(horizon),
        }
        for phase in PHASES:
            k[f"training.lost_h.{phase}"] = lost[phase]
        for source in SOURCES:
            k[f"training.swaps.{source}"] = float(self.swaps[source])
        for cause in sorted({*causes, *self.interrupted_by}):
            k[f"training.interrupted_by.{cause}"] = float(self.interrupted_by.get(cause, 0))
        return k
