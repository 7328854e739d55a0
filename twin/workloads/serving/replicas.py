"""`Replicas`: where each replica of each deployment runs, how fast, and its recovery.

At t = 0 the placement strategy (`twin.compute.PLACEMENTS`) gives every
replica its systems; the systems left over (the hot spares among them) form
the idle pool. From then on the fleet tells `Replicas` whenever a system's
capacity changes (`Fleet.on_capacity_change`), and a replica's speed is the
capacity of its slowest system: 1 at full speed, the governor's fraction x
usable-core share when one is throttled or degraded, 0 when one is down.

Recovery (docs/serving.md): a replica that loses a system is down
(``replica_down``, cause = that system's outage trigger). If a running idle
system is free it takes the lost one's place (from the same row if one is
idle there, else the first row that has one) and loads its weights for
`load_time` (``failover`` when loaded); the lost system returns to the idle
pool once it runs again. A replica serves again when all its systems run and
no load is pending (``replica_restore``); with no idle system it waits for its
own to come back, or for a system to become idle.

Every change of a replica's speed, or of the cause of its missing speed, is
appended to a log (t, replica, speed, cause) from which the fluid model
integrates exactly after the run; `listeners` are called with the replica
(the request-level model's hook).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import simpy

from twin.compute import Placement
from twin.fleet import Fleet
from twin.hall import ROOT
from twin.mechanisms.thermal import Thermal

__all__ = ["Replicas", "ReplicaLog", "CORES", "CAP"]

CORES = "cores"  # the cause of a replica slowed by a degraded wafer (fewer usable cores)
CAP = "power_cap"  # the cause of a replica slowed by the facility's power cap

# (t, replica, speed, cause) of every change, as arrays; a cause is its number in
# `Replicas.causes` ("" for full speed is number 0)
ReplicaLog = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class Replicas:
    """Replicas of every deployment: systems, speed, cause of lost speed, recovery."""

    def __init__(
        self,
        env: simpy.Environment,
        fleet: Fleet,
        thermal: Thermal,
        placement: Placement,
        deployments: Sequence[tuple[str, int, int]],
        load_time_h: float,
        domains: np.ndarray | None = None,
    ) -> None:
        """`deployments`: (name, replicas, systems per replica) in placement order;
        `domains`: the failure domains for the placement (None: the hall's rows)."""
        hall = fleet.hall
        self.env, self.fleet, self.thermal = env, fleet, thermal
        self.load_time_h = load_time_h
        self.deployment: list[int] = []  # deployment number of each replica
        self.systems: list[list[int]] = []  # systems of each replica now
        self.scopes: list[str] = []
        free = np.ones(hall.n_systems, dtype=bool)
        for d, (name, replicas, per_replica) in enumerate(deployments):
            chosen = placement.place(hall, replicas, per_replica, free, domains)
            free[chosen.ravel()] = False
            for k, row in enumerate(chosen.tolist()):
                self.deployment.append(d)
                self.systems.append(row)
                self.scopes.append(f"{ROOT}.deployments.{name}.replica{k + 1}")
        n = len(self.systems)
        self.replica_of: list[int] = [-1] * hall.n_systems  # -1: in no replica
        for r, systems in enumerate(self.systems):
            for s in systems:
                self.replica_of[s] = r
        self._row_of = hall.row_of.tolist()
        # each system's capacity as last told, and per replica how many of its systems
        # are down (0) and slowed (below 1): a replica at full speed needs no scan
        self._cap: list[float] = [fleet.capacity(s) for s in range(hall.n_systems)]
        self._down: list[int] = [0] * n
        self._slow: list[int] = [0] * n
        for r, systems in enumerate(self.systems):
            for s in systems:
                self._count(r, self._cap[s], 1)
        self._idle: list[set[int]] = [set() for _ in range(hall.rows)]  # running, in no replica
        for s in np.flatnonzero(free).tolist():
            if self._cap[s] > 0:
                self._idle[self._row_of[s]].add(s)
        self.speed: list[float] = [math.nan] * n  # NaN until read at t = 0
        self.cause: list[str] = [""] * n  # why it is below full speed ("" at full speed)
        self._logged_cause: list[str | None] = [None] * n
        self.down_since: list[float] = [math.nan] * n  # NaN while it serves
        self.loading: list[bool] = [False] * n
        self._waiting: set[int] = set()  # down with a lost system no idle one replaced yet
        self.failovers = 0
        self.downs = 0
        self.listeners: list[Callable[[int], None]] = []
        self._t: list[float] = []
        self._r: list[int] = []
        self._speed: list[float] = []
        self._cause: list[int] = []
        self.causes: list[str] = [""]  # every cause logged, by number
        self._cause_number: dict[str, int] = {"": 0}
        self._load_until: list[float] = [math.nan] * n
        self._emit = fleet.recorder.emit
        # the fleet's per-system lists (changed in place, never replaced)
        self._fleet_state = (fleet.fraction, fleet.core_fraction, fleet.reasons, fleet.booting)
        for r in range(n):
            self._update(r, self.systems[r][0])
        fleet.on_capacity_change = self._system_changed

    @property
    def n(self) -> int:
        return len(self.systems)

    def log(self) -> ReplicaLog:
        """Every change of a replica's speed or cause, in time order, the state at t = 0
        first (one entry per replica)."""
        return (
            np.asarray(self._t, dtype=float), np.asarray(self._r, dtype=np.int64),
            np.asarray(self._speed, dtype=float), np.asarray(self._cause, dtype=np.int64),
        )

    # -- the fleet's hook ----------------------------------------------------------
    def _slow_cause(self, s: int) -> str:
        """Why running system `s` is below full speed: the governor's throttling episode,
        else the facility's power cap holding its power, else a degraded wafer."""
        return self.thermal.throttle_cause(s) or (CAP if self.fleet.fraction[s] < 1.0 else CORES)

    def _count(self, r: int, cap: float, sign: int) -> None:
        """Count a system of capacity `cap` in (sign 1) or out of (-1) replica `r`."""
        if cap <= 0.0:
            self._down[r] += sign
        elif cap < 1.0:
            self._slow[r] += sign

    def _system_changed(self, s: int) -> None:
        # the fleet's capacity and `_count`, written out: this runs on every change
        fraction, cores, reasons, booting = self._fleet_state
        cap = 0.0 if reasons[s] or booting[s] else fraction[s] * cores[s]
        old, self._cap[s] = self._cap[s], cap
        r = self.replica_of[s]
        if r >= 0:
            if old <= 0.0:
                self._down[r] -= 1
            elif old < 1.0:
                self._slow[r] -= 1
            if cap <= 0.0:
                self._down[r] += 1
            elif cap < 1.0:
                self._slow[r] += 1
            self._update(r, s)
            return
        idle = self._idle[self._row_of[s]]
        if cap > 0:
            idle.add(s)
            if self._waiting:
                for waiting in sorted(self._waiting):
                    self._update(waiting, s)
        else:
            idle.discard(s)

    def _update(self, r: int, s: int) -> None:
        """Re-read replica `r` after its system `s` (or the idle pool) changed."""
        if self._down[r] or self.loading[r]:
            speed = 0.0
            if self.down_since[r] != self.down_since[r]:  # NaN: it was serving
                now = self.env.now
                self.down_since[r] = now
                self.downs += 1
                cap = self._cap
                down = s if cap[s] <= 0.0 and self.replica_of[s] == r else next(
                    x for x in self.systems[r] if cap[x] <= 0.0)
                self.cause[r] = self.fleet.down_cause[down] or self.cause[r]
                self._emit(now, self.scopes[r], "replica_down", self.cause[r])
            if self._down[r]:
                self._fail_over(r)
        else:
            down_since = self.down_since[r]
            if down_since == down_since:  # not NaN: it was down
                now = self.env.now
                self._emit(now, self.scopes[r], "replica_restore", self.cause[r], now - down_since)
                self.down_since[r] = math.nan
                self._waiting.discard(r)  # its own systems came back first
            if self._slow[r]:
                speed, slowest = min((self._cap[x], x) for x in self.systems[r])
                self.cause[r] = self._slow_cause(slowest)
            else:
                speed = 1.0
                self.cause[r] = ""
        if speed != self.speed[r] or self.cause[r] != self._logged_cause[r]:
            self._record(r, speed)

    def _record(self, r: int, speed: float) -> None:
        self.speed[r] = speed
        self._logged_cause[r] = self.cause[r]
        self._t.append(self.env.now)
        self._r.append(r)
        self._speed.append(speed)
        number = self._cause_number.get(self.cause[r])
        if number is None:
            number = self._cause_number[self.cause[r]] = len(self.causes)
            self.causes.append(self.cause[r])
        self._cause.append(number)
        if self.listeners:
            for listener in self.listeners:
                listener(r)

    # -- recovery ------------------------------------------------------------------
    def _fail_over(self, r: int) -> None:
        """Put idle systems in place of the lost ones of `r` and load their weights."""
        replaced = False
        cap, systems = self._cap, self.systems[r]
        for slot, x in enumerate(systems):
            if cap[x] > 0.0:
                continue
            spare = self._take_idle(self._row_of[x])
            if spare is None:
                self._waiting.add(r)
                break
            systems[slot] = spare
            self.replica_of[spare], self.replica_of[x] = r, -1
            self._count(r, cap[x], -1)
            self._count(r, cap[spare], 1)
            replaced = True
        else:
            self._waiting.discard(r)
        if replaced:
            self.loading[r] = True
            until = self.env.now + self.load_time_h
            self._load_until[r] = until
            self.env.timeout(self.load_time_h).callbacks.append(
                lambda _event: self._load_done(r, until))

    def _take_idle(self, row: int) -> int | None:
        """An idle running system: from `row` if it has one, else the first row that has."""
        pool = self._idle[row]
        if not pool:
            pool = next((p for p in self._idle if p), pool)
        return pool.pop() if pool else None

    def _load_done(self, r: int, until: float) -> None:
        if self._load_until[r] != until:
            return  # a later failover of this replica extended the load
        self.loading[r] = False
        self.failovers += 1
        now = self.env.now
        self._emit(now, self.scopes[r], "failover", self.cause[r], now - self.down_since[r])
        self._update(r, self.systems[r][0])
