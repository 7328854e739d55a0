"""`TrainingJob`: a gang job on K systems that checkpoints, and rolls back to its
last checkpoint whenever any of its systems goes down.

The job is a small state machine over phases (compute, checkpoint write,
restart, host selection, waiting for a system) whose next end is computed in
closed form and held on an `Agenda` (one key: the job). It hears of every
system going down or coming back through `Fleet.on_capacity_change`, whatever
the reason; a failure ends the phase in progress, books the time it lost to
its cause and starts the recovery: a warm standby held by the job (an
immediate swap), else a healthy system of the hall's pool after a
host-selection delay, else a wait for a repair. A system that comes back
refills the job first (when it waits), then its standbys, then the pool.
Roles and health are lists indexed by system; no scan of the hall per event.
"""

from __future__ import annotations

import math

import simpy

from twin.agenda import Agenda
from twin.fleet import Fleet
from twin.scenario import TrainingSpec

__all__ = ["PHASES", "TrainingJob", "young_interval", "daly_interval"]

# Where wall time goes besides useful work (the `training.lost_h.*` KPIs)
PHASES = ("rework", "checkpoint", "restart", "host_selection", "waiting")

_POOL, _ACTIVE, _STANDBY = 0, 1, 2


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
    """One gang job over the fleet's systems; `kpis` reads its outcome."""

    def __init__(self, env: simpy.Environment, spec: TrainingSpec, fleet: Fleet) -> None:
        self.env, self.spec, self.fleet = env, spec, fleet
        n = fleet.n
        self.up = [fleet.capacity(s) > 0.0 for s in range(n)]
        self.role = [_POOL] * n
        self.standby: dict[int, None] = {}  # insertion-ordered: the newest is used first
        self.pool_up: set[int] = set()
        self.vacant = spec.systems  # slots of the gang without a system
        self.phase = "waiting"
        self.since = 0.0  # start of the phase in progress
        self.segment = 0.0  # compute in the segment in progress
        self.committed = 0.0  # work saved by the last completed checkpoint
        self.finished_at = math.nan
        self.lost = dict.fromkeys(PHASES, 0.0)
        self.interruptions = 0
        self.standbys_used = 0
        self._agenda = Agenda(env, self._phase_end)
        for s in range(n):
            if not self.up[s]:
                continue
            if self.vacant:
                self.role[s] = _ACTIVE
                self.vacant -= 1
            elif len(self.standby) < spec.standbys:
                self.role[s] = _STANDBY
                self.standby[s] = None
            else:
                self.pool_up.add(s)
        fleet.on_capacity_change = self._changed
        if self.vacant:
            self._recover()
        else:
            self._compute()

    # -- phases ----------------------------------------------------------------
    def _enter(self, phase: str, hours: float) -> None:
        self.phase, self.since = phase, self.env.now
        self._agenda.schedule(0, self.env.now + hours)

    def _compute(self) -> None:
        self.segment = min(self.spec.checkpoint_interval, self.spec.work - self.committed)
        self._enter("compute", self.segment)

    def _phase_end(self, _key: int) -> None:
        phase, elapsed = self.phase, self.env.now - self.since
        if phase == "compute":
            # every segment ends with a checkpoint, the last one the trained model's
            self._enter("checkpoint", self.spec.checkpoint_cost)
        elif phase == "checkpoint":
            self.lost["checkpoint"] += elapsed
            self.committed += self.segment
            if self.committed >= self.spec.work * (1.0 - 1e-12):
                self.phase, self.finished_at = "done", self.env.now
            else:
                self._compute()
        elif phase == "restart":
            self.lost["restart"] += elapsed
            self._compute()
        else:  # host selection over: the pool's healthy systems fill the gang
            self.lost["host_selection"] += elapsed
            self._recover(from_pool=True)

    def _recover(self, from_pool: bool = False) -> None:
        """Fill the gang's empty slots: standbys at once, the pool after a host
        selection, else wait; restart from the last checkpoint once full."""
        while self.vacant and self.standby:
            s, _ = self.standby.popitem()
            self.role[s] = _ACTIVE
            self.vacant -= 1
            self.standbys_used += 1
        while from_pool and self.vacant and self.pool_up:
            s = self.pool_up.pop()
            self.role[s] = _ACTIVE
            self.vacant -= 1
        if not self.vacant:
            self._enter("restart", self.spec.restart_cost)
        elif self.pool_up:
            self._enter("host_selection", self.spec.host_selection)
        else:
            self.phase, self.since = "waiting", self.env.now
            self._agenda.cancel(0)

    # -- the fleet ---------------------------------------------------------------
    def _changed(self, s: int) -> None:
        up = self.fleet.capacity(s) > 0.0
        if up == self.up[s] or self.phase == "done":
            self.up[s] = up
            return  # a change of speed only, or a job that no longer needs systems
        self.up[s] = up
        role = self.role[s]
        if up:
            self._available(s)
        elif role == _ACTIVE:
            self._interrupted(s)
        elif role == _STANDBY:
            del self.standby[s]
            self.role[s] = _POOL
        else:
            self.pool_up.discard(s)

    def _available(self, s: int) -> None:
        if self.phase == "waiting" and self.vacant:
            self.role[s] = _ACTIVE
            self.vacant -= 1
            if not self.vacant:
                self.lost["waiting"] += self.env.now - self.since
                self._enter("restart", self.spec.restart_cost)
        elif len(self.standby) < self.spec.standbys:
            self.role[s] = _STANDBY
            self.standby[s] = None
        else:
            self.pool_up.add(s)

    def _interrupted(self, s: int) -> None:
        """System `s` of the gang went down: back to the last checkpoint."""
        self.interruptions += 1
        self.role[s] = _POOL
        self.vacant += 1
        elapsed = self.env.now - self.since
        phase = self.phase
        if phase == "compute":
            self.lost["rework"] += elapsed
        elif phase == "checkpoint":
            self.lost["rework"] += self.segment
            self.lost["checkpoint"] += elapsed
        else:
            self.lost[phase] += elapsed
        self._recover()

    # -- outcome -----------------------------------------------------------------
    def kpis(self, horizon: float) -> dict[str, float]:
        """The `training.*` KPIs at the end of a run to `horizon` (docs/kpis.md)."""
        spec = self.spec
        done = not math.isnan(self.finished_at)
        wall = self.finished_at if done else horizon
        # the mean time between the job's interruptions, as measured in this run
        mtbi = wall / self.interruptions if self.interruptions else math.nan
        k = {
            "training.goodput": self.committed / wall if wall > 0 else math.nan,
            "training.wall_h": self.finished_at,
            "training.done_fraction": self.committed / spec.work,
            "training.interruptions": float(self.interruptions),
            "training.standbys_used": float(self.standbys_used),
            "training.mtbi_h": mtbi,
            "training.checkpoint_interval_h": spec.checkpoint_interval,
            "training.young_interval_h": young_interval(spec.checkpoint_cost, mtbi),
            "training.daly_interval_h": daly_interval(spec.checkpoint_cost, mtbi),
        }
        for phase in PHASES:
            k[f"training.lost_h.{phase}"] = self.lost[phase]
        return k
