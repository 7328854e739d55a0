"""`Fleet`: the hot state of every system in lists, and its change log.

A system is down while any *reason* holds (a component class below its
k-of-n, the wafer, a thermal trip, a core remap, ...). When the last reason
clears it boots for `boot_time` and then runs, unless it stayed powered the
whole outage (only a remap held it): then it runs at once. Downtime is
charged, moment by moment, to the most severe reason holding (`SEVERITY`),
a boot to the last reason that powered the system off; an outage is counted
once, under its *trigger* (the reason that began it). Whenever the state of a
system changes, the tracked quantities (running, capacity, IT power,
throttled, tripped) are appended to a change log as they are now; after the
run the log is turned into the jumps (t, system, quantity, delta) of each
quantity in one pass of numpy, and time-weighted KPIs and bucketed metrics
are integrated exactly from those (`twin.metrics`). Nothing is sampled on a
clock and the hot path only appends to lists.

Per-system state is kept in plain Python lists, not numpy arrays: every
event reads and writes single elements, and a list element costs a fraction
of a numpy one (no scalar boxing); the few whole-hall reads (`close`, the
KPIs) loop or convert where they happen.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy

from twin.agenda import Agenda
from twin.hall import Hall
from twin.records import EventRow

__all__ = ["Fleet", "QUANTITIES", "ChangeLog", "ChangeArrays", "Recorder", "SEVERITY", "SOFT"]

# Quantities integrated over time, in the order of the change log's columns.
QUANTITIES = ("up", "capacity", "power_kw", "throttled", "tripped")
UP, CAPACITY, POWER, THROTTLED, TRIPPED = range(len(QUANTITIES))

# When several reasons hold, downtime is charged to the most severe: the one the
# system would still be down for if the others cleared first. A failed wafer (3: a
# swap renews everything), then a component class below its k of n (2: a crew and
# a part; between classes the first named in the scenario, whose bit comes first),
# then a thermal trip (1: minutes of cooling), then a remap (0: minutes, powered).
SEVERITY = {"wafer": 3, "thermal": 1, "remap": 0}
CLASS_SEVERITY = 2  # any other reason: a component class
# Reasons during which the system stays powered (idle): an outage held only by
# these ends without a boot.
SOFT = ("remap",)


# (t, system, quantity, delta) of every change, as arrays
ChangeArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class ChangeLog:
    """The tracked quantities of a system each time its state changed: at `t[i]`,
    `system[i]` had the values ``values[k i : k (i + 1)]``, k = len(QUANTITIES)
    (flat, so a change appends three times, whatever changed). Every quantity
    is 0 before a system's first entry."""

    t: list[float] = field(default_factory=list)
    system: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def arrays(self) -> ChangeArrays:
        """The jumps (t, system, quantity, delta) in the order of the changes, a
        change's quantities in the order of QUANTITIES; a quantity that did not
        change has none. Each delta is its value less the system's one before,
        the subtraction the run would have made."""
        t = np.asarray(self.t, dtype=float)
        system = np.asarray(self.system, dtype=np.int64)
        now = np.asarray(self.values, dtype=float).reshape(len(t), len(QUANTITIES))
        # each entry's values before it: the system's previous entry's, 0 before its first
        order = np.argsort(system, kind="stable")
        first = np.ones(len(t), dtype=bool)
        first[1:] = system[order][1:] != system[order][:-1]
        before = np.empty_like(now)
        before[order[1:]] = now[order[:-1]]
        before[order[first]] = 0.0
        delta = now - before
        entry, quantity = np.nonzero(delta != 0.0)
        return t[entry], system[entry], quantity.astype(np.int64), delta[entry, quantity]


class Recorder:
    """Buffers events and hands them to a sink in bounded chunks. `enabled` is False
    when nothing is recorded (no sink, or events off): a hot path that would format
    an event's scope checks it first."""

    def __init__(self, sink: object | None, enabled: bool, chunk: int = 10_000) -> None:
        self._sink = sink
        self.enabled = enabled and sink is not None
        self._chunk = chunk
        self._buffer: list[EventRow] = []

    def emit(self, t: float, scope: str, kind: str, cause: str, value: float = math.nan) -> None:
        if self.enabled:
            self._buffer.append((t, scope, kind, cause, value))
            if len(self._buffer) >= self._chunk:
                self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._sink.write_events(self._buffer)  # type: ignore[union-attr]
            self._buffer = []


class Fleet:
    """Per-system state, reasons for being down, boot, and the change log."""

    def __init__(
        self,
        env: simpy.Environment,
        hall: Hall,
        recorder: Recorder,
        *,
        power_kw: float,
        idle_kw: float,
        boot_h: float,
    ) -> None:
        n = hall.n_systems
        self.env, self.hall, self.recorder = env, hall, recorder
        self.n = n
        self.full_kw, self.idle_kw, self.boot_h = power_kw, idle_kw, boot_h
        self.reasons: list[int] = [0] * n  # bitmask of reasons for being down
        self.booting: list[bool] = [False] * n
        self.generation: list[int] = [0] * n  # bumped when a system is swapped
        self.fraction: list[float] = [1.0] * n  # power fraction: the governor's, capped
        self.cap: list[float] = [1.0] * n  # the facility's power cap (1: none)
        self._asked: list[float] = [1.0] * n  # the fraction the thermal governor asked for
        self.core_fraction: list[float] = [1.0] * n  # usable cores / nominal active cores
        self.cold: list[bool] = [False] * n  # powered off during this outage: boots
        self.down_cause: list[str] = [""] * n  # the trigger of the outage in progress
        self.charged: list[str] = [""] * n  # cause its downtime is charged to now
        self.charged_since: list[float] = [0.0] * n
        self._boot_cause: list[str] = [""] * n  # the last reason that powered it off
        self._held: dict[tuple[int, int], str] = {}  # cause of each reason holding
        self._hold_until: dict[tuple[int, int], float] = {}  # end of each `hold`
        self.downtime_by_cause: dict[str, float] = {}  # outages open at the end included
        self.outages_by_cause: dict[str, int] = {}
        self.log = ChangeLog()
        self._reason_bits: dict[str, int] = {}
        self._by_severity: list[int] = []  # allocated bits, most severe first
        self._soft_bits = 0
        self._boot = Agenda(env, self._boot_done)
        self.on_heat_change: Callable[[int], None] = lambda s: None
        # told when a system's capacity changes (a workload on it); None: nobody listens
        self.on_capacity_change: Callable[[int], None] | None = None
        self.scopes = hall.scopes("system")
        # every system starts alike, running at full power: its first entry in the log
        start = self._values(0) if n else (0.0,) * len(QUANTITIES)
        self.log.t.extend([env.now] * n)
        self.log.system.extend(range(n))
        self.log.values.extend(start * n)
        self._capacity: list[float] = [start[CAPACITY]] * n  # as last logged

    # -- reasons -----------------------------------------------------------
    def bit(self, reason: str) -> int:
        """The bit of a named reason for being down (allocated on first use)."""
        bit = self._reason_bits.get(reason)
        if bit is None:
            bit = self._reason_bits[reason] = 1 << len(self._reason_bits)
            severity = {b: SEVERITY.get(r, CLASS_SEVERITY) for r, b in self._reason_bits.items()}
            self._by_severity = sorted(severity, key=lambda b: (-severity[b], b))
            if reason in SOFT:
                self._soft_bits |= bit
        return bit

    def running(self, s: int) -> bool:
        return not self.reasons[s] and not self.booting[s]

    def add_reason(self, s: int, bit: int, cause: str) -> None:
        """Take system `s` down for `bit`, blaming `cause`; a boot in progress is
        abandoned and the outage it was ending goes on (its trigger stays the first)."""
        reasons = self.reasons[s]
        if reasons & bit:
            return
        if self.booting[s]:
            self.booting[s] = False
            self._boot.cancel(s)
        elif not reasons:  # it was running
            self.down_cause[s] = cause
            self.cold[s] = False
        self.reasons[s] = reasons | bit
        self._held[(s, bit)] = cause
        if bit & ~self._soft_bits:
            self.cold[s] = True
        self._changed(s)
        self._charge(s)

    def clear_reason(self, s: int, bit: int) -> None:
        """Lift reason `bit`; when none is left the system boots, or runs at once if
        it stayed powered throughout."""
        reasons = self.reasons[s]
        if not reasons & bit:
            return
        reasons = self.reasons[s] = reasons & ~bit
        del self._held[(s, bit)]
        if not reasons:
            if self.cold[s]:
                self.booting[s] = True
                self._boot.schedule(s, self.env.now + self.boot_h)
            else:
                self._end_outage(s)
        self._changed(s)
        self._charge(s)

    def hold(self, s: int, bit: int, cause: str, hours: float) -> None:
        """Hold system `s` down for reason `bit` until `hours` from now; a hold
        already running is extended to then, never shortened (a swap cancels it)."""
        key = (s, bit)
        until = self.env.now + hours
        if self.reasons[s] & bit and until <= self._hold_until.get(key, -math.inf):
            return
        self._hold_until[key] = until
        self.add_reason(s, bit, cause)
        generation = self.generation[s]

        def lift(_event: object) -> None:
            if self._hold_until.get(key) != until:
                return  # extended by a later hold
            del self._hold_until[key]
            if self.generation[s] == generation:
                self.clear_reason(s, bit)

        self.env.timeout(hours).callbacks.append(lift)

    def _boot_done(self, s: int) -> None:
        self.booting[s] = False
        self._end_outage(s)
        self._changed(s)
        self._charge(s)

    def _end_outage(self, s: int) -> None:
        """A completed outage counts once, under its trigger."""
        cause = self.down_cause[s]
        self.outages_by_cause[cause] = self.outages_by_cause.get(cause, 0) + 1

    def _charge(self, s: int) -> None:
        """Charge the downtime of `s` to the most severe reason holding now (while
        booting: the last reason that powered it off). A stretch charged to one
        cause ends as one ``outage`` event: at its start, its length as value."""
        reasons = self.reasons[s]
        cause = ""
        if reasons:
            for bit in self._by_severity:
                if reasons & bit:
                    cause = self._held[(s, bit)]
                    if bit & ~self._soft_bits:
                        self._boot_cause[s] = cause
                    break
        elif self.booting[s]:
            cause = self._boot_cause[s]
        if cause != self.charged[s]:
            self._book(s)
            self.charged[s] = cause
            self.charged_since[s] = self.env.now

    def _book(self, s: int) -> None:
        """Book the stretch of downtime of `s` charged to one cause, up to now."""
        cause = self.charged[s]
        if cause:
            start = self.charged_since[s]
            hours = self.env.now - start
            self.downtime_by_cause[cause] = self.downtime_by_cause.get(cause, 0.0) + hours
            self.recorder.emit(start, self.scopes[s], "outage", cause, hours)

    # -- quantities --------------------------------------------------------
    def heat_kw(self, s: int) -> float:
        """Power dissipated by system `s` now (what the thermal model sees)."""
        reasons, booting = self.reasons[s], self.booting[s]
        if not reasons and not booting:
            return self.full_kw * self.fraction[s]
        soft = self._soft_bits
        powered = booting or (reasons & soft and not reasons & ~soft)
        return self.idle_kw if powered else 0.0

    def set_fraction(self, s: int, fraction: float) -> None:
        """Power fraction chosen by the thermal governor (1 = full power); the system
        runs at it or at its cap, whichever is lower."""
        self._asked[s] = fraction
        applied = min(fraction, self.cap[s])
        if applied != self.fraction[s]:
            self.fraction[s] = applied
            self._refresh_running(s)

    def set_cap(self, s: int, cap: float) -> None:
        """Cap the power fraction of `s` (a facility power budget); heat follows."""
        self.cap[s] = cap
        fraction = self.fraction[s]
        self.set_fraction(s, self._asked[s])
        if self.fraction[s] == fraction:  # whether the governor holds it below the cap may
            self._refresh_running(s)  # change all the same (`_values`)
        self.on_heat_change(s)

    def set_core_fraction(self, s: int, fraction: float) -> None:
        if fraction != self.core_fraction[s]:
            self.core_fraction[s] = fraction
            self._refresh_running(s)

    def _refresh_running(self, s: int) -> None:
        """Log a change of how `s` runs (its fractions): a system down or booting
        logs nothing, its quantities do not depend on them (`_values`)."""
        if not self.reasons[s] and not self.booting[s]:
            self._refresh(s)

    def _changed(self, s: int) -> None:
        self._refresh(s)
        self.on_heat_change(s)

    def capacity(self, s: int) -> float:
        """Share of a full system's work `s` does now: governor fraction x usable-core
        share while it runs, 0 while it is down or booting."""
        if self.reasons[s] or self.booting[s]:
            return 0.0
        return self.fraction[s] * self.core_fraction[s]

    def _values(self, s: int) -> tuple[float, float, float, float, float]:
        """The tracked quantities of `s` now, in the order of QUANTITIES."""
        reasons = self.reasons[s]
        if reasons or self.booting[s]:
            trip_bit = self._reason_bits.get("thermal", 0)
            return (0.0, 0.0, self.heat_kw(s), 0.0, 1.0 if reasons & trip_bit else 0.0)
        fraction = self.fraction[s]  # running: `capacity` and `heat_kw` of a running system
        return (
            1.0, fraction * self.core_fraction[s], self.full_kw * fraction,
            1.0 if fraction < self.cap[s] else 0.0, 0.0,
        )

    def _refresh(self, s: int) -> None:
        new = self._values(s)
        log = self.log
        log.t.append(self.env.now)
        log.system.append(s)
        log.values.extend(new)
        capacity_changed = new[CAPACITY] != self._capacity[s]
        self._capacity[s] = new[CAPACITY]
        if capacity_changed and self.on_capacity_change is not None:
            self.on_capacity_change(s)  # after the state is consistent

    def close(self) -> None:
        """Book the downtime of outages still open at the end of the run, up to the
        horizon (they are not counted in `outages_by_cause`)."""
        for s in range(self.n):
            if self.reasons[s] or self.booting[s]:
                self._book(s)
