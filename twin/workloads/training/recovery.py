"""Where a training job finds a system when one of its gang goes down: recovery
policies as strategy objects (docs/training.md).

Each policy holds a set of healthy systems and a delay. The job asks them in
order (`TrainingJob.recoveries`) to fill the gang's empty slots: a policy
hands over what it holds at once, and the job waits its `delay` (booked to
its `cause`) before going on to the next policy or restarting. The same
policies take back a system that comes up again, in the order the job offers
it (`TrainingJob.offers`): a preemptible machine goes home, a waiting job takes
any other first, then the standbys, then a loan to the preemptible pool is
repaid, then the idle working pool. Every operation is O(1): a policy holds
a set (or an insertion-ordered dict), never scans the hall.
"""

from __future__ import annotations

from typing import Literal, Protocol

import simpy

from twin.scenario import PreemptibleSpec

__all__ = ["Recovery", "Standbys", "HostSelection", "PreemptiblePool", "WaitForRepair"]


class Recovery(Protocol):
    """A source of healthy systems for the gang."""

    source: str  # the `training.swaps.<source>` KPI its systems count to
    cause: str  # the `training.lost_h.<cause>` its delay is booked to
    delay: float  # hours from handing systems over to the job's next step

    def give(self, wanted: int) -> list[int]:
        """Up to `wanted` systems, removed from this policy's holding."""
        ...

    def offer(self, s: int) -> bool:
        """System `s` is up again and nobody before this policy took it: keep it?"""
        ...

    def lose(self, s: int) -> None:
        """System `s` went down: drop it if held."""
        ...


class Standbys:
    """Warm systems held by the job, swapped in at once; refilled up to `quota` by
    systems that come back. The newest standby is used first."""

    source, cause, delay = "standby", "restart", 0.0

    def __init__(self, quota: int) -> None:
        self.quota = quota
        self.held: dict[int, None] = {}  # insertion-ordered

    def give(self, wanted: int) -> list[int]:
        return [self.held.popitem()[0] for _ in range(min(wanted, len(self.held)))]

    def offer(self, s: int) -> bool:
        if len(self.held) < self.quota:
            self.held[s] = None
            return True
        return False

    def lose(self, s: int) -> None:
        self.held.pop(s, None)


class HostSelection:
    """The hall's idle healthy working systems: the job takes them and spends
    `delay` picking and preparing them (host selection) before it restarts. Every
    system nobody else wants comes back here."""

    source, cause = "pool", "host_selection"

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.idle: set[int] = set()

    def give(self, wanted: int) -> list[int]:
        return [self.idle.pop() for _ in range(min(wanted, len(self.idle)))]

    def offer(self, s: int) -> bool:
        self.idle.add(s)
        return True

    def lose(self, s: int) -> None:
        self.idle.discard(s)


class PreemptiblePool:
    """Systems of the hall running preemptible work, reclaimed when the working pool
    is short. A reclaim kills the preemptible work on the machine (`work_lost`
    system-hours of it lost each time) and costs the job `delay` (drain, clean,
    prepare). With ``reclaimed = "returned"`` a reclaimed machine is on loan: it goes
    back to preemptible work when the job no longer needs it (it fails and is
    repaired, a repaired working machine takes its place in the pool, or the job
    ends); with ``"kept"`` it joins the working side for good. A machine of this
    pool that is repaired goes back to preemptible work first."""

    source, cause = "preemptible", "reclaim"

    def __init__(self, env: simpy.Environment, spec: PreemptibleSpec | None, n: int) -> None:
        self.env = env
        self.delay = 0.0 if spec is None else spec.reclaim_time
        self.work_lost_each = 0.0 if spec is None else spec.work_lost
        self.size = 0 if spec is None else spec.systems
        self.policy: Literal["returned", "kept"] = "returned" if spec is None else spec.reclaimed
        self.running: set[int] = set()  # healthy, running preemptible work
        self.own = [False] * n  # belongs to this pool (running, down, or on loan)
        self.loaned: set[int] = set()  # reclaimed, still owed back ("returned")
        self.reclaimed = 0
        self.work_lost = 0.0
        # system-hours the pool ran short of machines the job took: an integral
        self.taken = 0  # machines taken and not given back
        self.taken_h = 0.0
        self._since = env.now

    def enlist(self, s: int) -> None:
        """At the start: healthy system `s` runs preemptible work."""
        self.own[s] = True
        self.running.add(s)

    def _count(self, delta: int) -> None:
        now = self.env.now
        self.taken_h += self.taken * (now - self._since)
        self.taken += delta
        self._since = now

    def give(self, wanted: int) -> list[int]:
        """Reclaim up to `wanted` machines now."""
        taken = [self.running.pop() for _ in range(min(wanted, len(self.running)))]
        for s in taken:
            if self.policy == "returned":
                self.loaned.add(s)
            else:
                self.own[s] = False
        self.reclaimed += len(taken)
        self.work_lost += len(taken) * self.work_lost_each
        if taken:
            self._count(len(taken))
        return taken

    def home(self, s: int) -> bool:
        """A machine of this pool is up again: back to preemptible work (a loan ends)."""
        if not self.own[s]:
            return False
        self.running.add(s)
        if s in self.loaned:
            self.loaned.remove(s)
            self._count(-1)
        return True

    def offer(self, s: int) -> bool:
        """A working machine nobody in the job needs takes a loaned machine's place in
        the pool: the loaned one stays in the job, as a working machine."""
        if not self.loaned:
            return False
        self.own[self.loaned.pop()] = False
        self.own[s] = True
        self.running.add(s)
        self._count(-1)
        return True

    def release(self, up: list[bool]) -> None:
        """The job ends: every loaned machine goes back (those down when repaired)."""
        for s in self.loaned:
            if up[s]:
                self.running.add(s)
        self._count(-len(self.loaned))
        self.loaned.clear()

    def lose(self, s: int) -> None:
        self.running.discard(s)

    def taken_hours(self, horizon: float) -> float:
        """System-hours the job has held this pool's machines, up to `horizon`."""
        return self.taken_h + self.taken * (horizon - self._since)


class WaitForRepair:
    """No healthy system anywhere: the job waits, and takes the next repaired ones
    (which no standby or pool sees first) at once."""

    source, cause, delay = "repair", "waiting", 0.0

    def __init__(self) -> None:
        self.wanted = 0  # set by the job while it waits: its empty slots
        self.held: list[int] = []

    def give(self, wanted: int) -> list[int]:
        taken, self.held = self.held, []
        return taken

    def offer(self, s: int) -> bool:
        if self.wanted > len(self.held):
            self.held.append(s)
            return True
        return False

    def lose(self, s: int) -> None:
        """Nothing to drop: what it takes is handed to the job in the same step."""
