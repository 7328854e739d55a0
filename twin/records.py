"""Flat, frozen records that flow out of a simulation, and the sink protocol.

The engine never talks to a database: it hands batches of events (as
`EventRow` tuples) and `MetricSeries` to a `Sink` while it runs and returns
a `RunResult` at the end. `storage` implements a sink on SQL; tests use
`ListSink`. Times are simulated hours since the start of the run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

__all__ = [
    "Event", "EventRow", "Metric", "MetricSeries", "RunResult", "Sink", "ListSink", "nest_kpis",
    "run_name",
]


class Event(NamedTuple):
    """Something that happened at one scope.

    t: simulated hours; scope: dotted name (``hall.row2.rack7.sys1.psu3``);
    kind: what happened (``failure``, ``repaired``, ``outage``, ``throttle``,
    ``trip``, ...); cause: the root cause (component class or mechanism);
    value: a kind-specific number (an outage's length in hours, the cores a
    core failure lost), NaN when the kind has none. A named tuple: the store
    can insert a batch of events as they are, with no per-row conversion.
    """

    t: float
    scope: str
    kind: str
    cause: str
    value: float


# An event as the engine hands it to a sink: a plain tuple of `Event`'s fields.
# Building a named tuple per event cost ~2 % of a hall-year; a sink that wants
# names calls `Event._make` (as `ListSink` does), the store inserts rows as they are.
EventRow = tuple[float, str, str, str, float]


@dataclass(frozen=True, slots=True)
class Metric:
    """The mean of `name` over [t, t + bucket) at `scope` (one bucket of a series)."""

    t: float
    bucket: float
    scope: str
    name: str
    value: float


@dataclass(frozen=True, slots=True)
class MetricSeries:
    """Means of `name` at `scope` over consecutive buckets: ``values[i]`` covers
    ``[t0 + i*bucket, min(t0 + (i+1)*bucket, t_end))``. One series is one row in
    the store, which is what keeps recording cheap next to the simulation."""

    scope: str
    name: str
    t0: float
    bucket: float
    t_end: float
    values: tuple[float, ...]

    def metrics(self) -> list[Metric]:
        """The series as one `Metric` per bucket (the last one may be shorter)."""
        out = []
        for i, value in enumerate(self.values):
            t = self.t0 + i * self.bucket
            out.append(Metric(t, min(self.bucket, self.t_end - t), self.scope, self.name, value))
        return out


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one run returns: identity, the resolved scenario, its KPIs (flat, dotted)
    and its warnings (one line each: a resource that saturated, `twin.saturation`)."""

    scenario_name: str
    scenario_hash: str
    scenario: dict[str, Any]
    seed: int
    until_h: float
    systems: int
    wall_s: float
    kpis: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


class Sink(Protocol):
    """Receives records in batches while a run goes on."""

    def write_events(self, events: Sequence[EventRow]) -> None: ...

    def write_series(self, series: Sequence[MetricSeries]) -> None: ...


class ListSink:
    """A sink that keeps everything in memory (tests, quick looks)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.series: list[MetricSeries] = []

    def write_events(self, events: Sequence[EventRow]) -> None:
        self.events.extend(map(Event._make, events))

    def write_series(self, series: Sequence[MetricSeries]) -> None:
        self.series.extend(series)

    @property
    def metrics(self) -> list[Metric]:
        """Every series expanded to one `Metric` per bucket."""
        return [m for s in self.series for m in s.metrics()]


def nest_kpis(
    flat: dict[str, float], clean: Callable[[float], Any] = lambda v: v
) -> dict[str, Any]:
    """Turn ``{"failures.psu": 3}`` into ``{"failures": {"psu": 3}}`` for JSON output;
    `clean` maps each value (NaN to None, say)."""
    out: dict[str, Any] = {}
    for name, value in flat.items():
        node = out
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = clean(value)
    return out


def run_name(scenario_name: str, scenario_hash: str, label: str | None, overrides: bool) -> str:
    """The name a run goes by: its label; else its scenario's name, followed by
    ``+`` and the first 8 hex digits of the resolved scenario's hash when ``--set``
    or ``--scale`` changed it, so no what-if is taken for (or averaged with) its base."""
    if label:
        return label
    return f"{scenario_name}+{scenario_hash[:8]}" if overrides else scenario_name
