"""How much memory a run will take, estimated from its scenario before it starts.

The engine's memory is the sum of a few structures whose sizes follow from
the scenario alone (see docs/scenarios.md#memory for the measured accuracy):

- per unit and per wafer, one pending time in an `Agenda`'s first batch (a
  time, a seq and a key in sorted arrays, and the temporaries that sort them)
  and the per-unit state of its component class;
- per system, the fleet's and the thermal model's state, its scope name and
  the change-log entry that opens the run;
- per change of a tracked quantity (an outage is ~7: down, booting, up), its
  share of a change-log entry (a system's quantities each time its state
  changes) kept to the end of the run and turned into arrays there;
  per repair and swap, one restore time; the rates come from the means of
  the failure distributions (renewal rates, the bad lot's speed-up included);
- per queued crew job, while demand for crew hours outruns the crews, one
  waiting SimPy process;
- per metric value (scopes x buckets x 5 quantities; only when the run is
  stored), the bucket integrals, a boxed float and its text for the store;
- at build time, the defects of every wafer (Poisson in D0 x area);
- with serving, the fluid model's per-interval sums after the run (an interval
  per hour, per metric bucket and per change of a replica); with request-level
  serving, every request the tenants' mean rates bring over the horizon.

Each part is charged to the scenario key that drives it, so a run that does
not fit names the key to change. `estimate` never runs the engine.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from twin.errors import ScenarioError
from twin.scenario import Scenario

__all__ = ["Estimate", "estimate", "available_memory", "check_memory", "fmt_bytes"]

# Bytes each structure adds to the peak RSS of a run: counted from the engine's own
# objects (sys.getsizeof, tracemalloc) and calibrated on real runs (CPython 3.11,
# 64-bit; docs/scenarios.md#memory gives the runs and the accuracy).
FIXED = 1_000_000  # a run's first arenas and numpy temporaries, whatever its size
# A pending time in a first batch: time, seq and key 24 and the sort's temporaries ~24,
# with the unit's up flag, install time, lot and first life ~32: 57-68 measured per
# extra unit.
AGENDA_ENTRY = 70
# Fleet, thermal and wafer state (lists), per-class counters, the scope name and the
# change-log entry that opens the run: 560-680 measured per system beyond its units.
SYSTEM = 600
# A change-log entry (t, system, 5 quantities: 7 list slots, 1-3 floats) holds ~2.5
# changes while running; at the end its cells, the sort by system, the values before
# and the deltas: 144-159 measured per change.
CHANGE = 160
RESTORE = 32  # a float in a list, per repair or swap
QUEUED_JOB = 1_000  # a SimPy process waiting for a crew or a part, with its events
METRIC_VALUE = 46  # a float64 cell and its temporaries, a boxed float, its text for the store
# Per manufacturing defect at build time: its core, its wafer, their key, the sorted
# keys (int64) and the mask of distinct ones (bool): ~40 counted, 33 measured where the
# defects make the peak (50 /cm2), 22-23 above the rest of a default hall's peak.
DEFECT = 33
# Changes of tracked quantities per outage: down (up, capacity, power), the boot
# (idle power; a remap keeps the system idle and skips it), back up (up, capacity,
# power).
CHANGES_PER_OUTAGE = 7
CHANGES_PER_REMAP = 6
QUANTITIES = 5  # tracked quantities, each a metric series per scope
# Serving's fluid model solves every interval between changes at once after the run:
# per interval and per column of its sums (pools, missing capacity by deployment and
# cause, slots, replicas up, fast capacity per tenant) ~40 bytes measured at the peak
# (the jumps, their cumulative sums and temporaries), 48 charged.
SERVING_CELL = 48
SERVING_LOG_ENTRIES = 2  # a replica's log entries per outage of one of its systems
SCIPY_SPECIAL = 16_000_000  # Erlang C loads scipy.special (~15 MB), unless loaded before
# Request-level serving keeps each request (8 fields of 8 bytes, its replica's level
# breakpoints) to the end and turns them into arrays there: 126 bytes measured at the
# peak over 2M requests of one tenant, 200 charged for the outcome's per-tenant masks.
REQUEST = 200


@dataclass(frozen=True)
class Estimate:
    """Bytes a run adds to its process at its peak, by the scenario key that drives
    each part."""

    parts: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    @property
    def key(self) -> str:
        """The key whose part is largest: the one to change to make the run smaller."""
        return max(self.parts, key=lambda k: self.parts[k])


def _speedup(fraction: float, factor: float) -> float:
    """Mean clock speed of a population with a bad lot."""
    return 1.0 - fraction + fraction * factor


def _rate(mean_h: float, speedup: float) -> float:
    """Renewals per hour of one unit (the long-run rate 1 / mean); a zero mean
    would renew without end."""
    return math.inf if mean_h <= 0.0 else speedup / mean_h


def estimate(scenario: Scenario, until: float | None = None, *, stored: bool = True) -> Estimate:
    """Peak bytes a run of `scenario` over `until` hours (default run.until) adds to
    the process; `stored`: the run's metrics are computed and written to a store."""
    horizon = scenario.run.until if until is None else until
    n = scenario.systems
    parts: dict[str, float] = {}

    def add(key: str, size: float) -> None:
        parts[key] = parts.get(key, 0.0) + size

    units = sum(c.count for c in scenario.components.values())
    add("hall.rows", FIXED + n * (SYSTEM + (units + 2) * AGENDA_ENTRY))
    crew_hours = 0.0  # demanded per hour
    jobs = 0.0  # manual repairs and swaps per hour
    for name, comp in scenario.components.items():
        rate = n * comp.count * _rate(
            comp.failure.mean(), _speedup(comp.bad_fraction, comp.bad_factor)
        )
        outages = CHANGES_PER_OUTAGE if comp.required == comp.count else 0
        add(f"components.{name}.failure", rate * horizon * (RESTORE + CHANGE * outages))
        crew_hours += rate * comp.escalate_probability * comp.repair.mean()
        jobs += rate * comp.escalate_probability
    cores = swaps = 0.0  # a GPU node has no wafer
    wafer = scenario.wafer
    if wafer is not None and scenario.spare_systems is not None:
        add("wafer.defect_density", DEFECT * n * wafer.defect_density * wafer.area)
        # a bad lot speeds up the core-loss and the outright-failure clocks by its own factors
        cores = n * _rate(wafer.core_failures.mean(),
                          _speedup(wafer.bad_fraction, wafer.bad_factor))
        add("wafer.core_failures", cores * horizon * CHANGE * CHANGES_PER_REMAP)
        swaps = n * _rate(
            wafer.failure.mean(), _speedup(wafer.bad_fraction, wafer.bad_failure_factor)
        )
        add("wafer.failure", swaps * horizon * (RESTORE + CHANGE * CHANGES_PER_OUTAGE))
        crew_hours += swaps * scenario.spare_systems.swap_time.mean()
        jobs += swaps

    serving = scenario.serving
    if serving is not None:
        per_replica = serving.systems_per_replica()
        in_replicas = sum(d.replicas * per_replica[k] for k, d in serving.deployments.items())
        outages_per_system = (cores + swaps) / n + sum(
            c.count * _rate(c.failure.mean(), _speedup(c.bad_fraction, c.bad_factor))
            for c in scenario.components.values() if c.required == c.count
        )
        bucket = scenario.recording.hall_bucket
        off_the_hour = 0.0 if float(bucket).is_integer() else horizon / bucket
        intervals = (
            horizon + off_the_hour
            + SERVING_LOG_ENTRIES * (in_replicas * outages_per_system * horizon
                                     + sum(d.replicas for d in serving.deployments.values()))
        )
        # and thermal, and on a wafer-scale hall wafer and cores
        causes = len(scenario.components) + (3 if wafer is not None else 1)
        columns = 2 * len(serving.tenants) + len(serving.deployments) * (causes + 3)
        add("serving.deployments", SCIPY_SPECIAL + SERVING_CELL * columns * intervals)
        if serving.fidelity == "request":
            from twin.workloads.serving.demand import hourly_rates

            hours = max(1, math.ceil(horizon))
            per_s = sum(float(hourly_rates(t, hours).mean()) for t in serving.tenants.values())
            add("run.until", REQUEST * per_s * horizon * 3600.0)

    repair = scenario.repair
    on_shift = repair.crew_count * repair.shift_length / 24.0  # inf: unlimited, none queue
    if crew_hours > on_shift:
        add("repair.crews", QUEUED_JOB * jobs * (1.0 - on_shift / crew_hours) * horizon)

    if stored:
        rec = scenario.recording
        add("recording.hall_bucket", METRIC_VALUE * QUANTITIES * horizon / rec.hall_bucket)
        scopes = {"none": 0, "row": scenario.hall.rows,
                  "rack": scenario.hall.rows * scenario.hall.racks_per_row, "system": n}
        values = QUANTITIES * scopes[rec.scope_level] * horizon / rec.scope_bucket
        add("recording.scope_bucket", METRIC_VALUE * values)
    return Estimate(parts)


def available_memory() -> int | None:
    """Bytes this process may still take: the kernel's MemAvailable, capped by the
    cgroup's limit when there is one; None where neither can be read."""
    found: list[int] = []
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as limit, \
                open("/sys/fs/cgroup/memory.current") as used:
            cap = limit.read().strip()
            if cap != "max":
                found.append(int(cap) - int(used.read().strip()))
    except (OSError, ValueError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError):
            return None
    return max(min(found), 0)


def fmt_bytes(size: float) -> str:
    """``1.2 GB``: bytes in the largest unit below the number."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000.0 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000.0
    raise AssertionError("unreachable")


def check_memory(
    scenario: Scenario,
    until: float | None,
    *,
    stored: bool,
    source: str,
    limit: int | None = None,
) -> Estimate:
    """The estimate of a run, or a `ScenarioError` naming the key that drives it
    when it exceeds `limit` bytes (default: `available_memory`)."""
    found = estimate(scenario, until, stored=stored)
    limit = available_memory() if limit is None else limit
    if limit is not None and not found.total <= limit:
        if math.isinf(found.total):
            raise ScenarioError(
                source, found.key,
                "a run that ends: a life with a mean of zero renews without end",
            )
        share = found.parts[found.key] / found.total
        raise ScenarioError(
            source, found.key,
            f"a run that fits in memory: it would take about {fmt_bytes(found.total)}, "
            f"{share:.0%} of it for this key, and {fmt_bytes(limit)} is available "
            "(--force runs it anyway)",
        )
    return found
