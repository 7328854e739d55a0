"""Builders for the model tests: quiet scenarios and runs with their event logs.

A model test switches on only the mechanism it is about. `quiet_scenario`
starts from a hall in which nothing happens unless a test asks for it: a
new hall (every unit installed at 0) in which no unit or wafer ever fails,
the repair pipeline is instantaneous and deterministic (diagnosis and
automated fix take no time, every fault goes to a crew, no wrong unit, no
silent failure), crews and parts are plentiful
and a system is back the moment its last reason for being down clears.
Overrides are nested dicts merged key by key; a distribution table
(a dict with "dist") replaces the default whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from twin.engine import Model, build, simulate
from twin.records import Event, ListSink, RunResult
from twin.scenario import Scenario, deep_merge

NEVER = {"dist": "deterministic", "value": "1e9 h"}
INSTANT = {"dist": "deterministic", "value": "0 h"}
DEFAULT_CLASSES = ("psu", "pump", "fan")

_QUIET: dict[str, Any] = {
    "name": "quiet",
    "run": {"until": "100 h", "seed": 1},
    "hall": {"rows": 1, "racks_per_row": 1, "systems_per_rack": 4, "start_age": "new"},
    "system": {"boot_time": "0 h"},
    "components": {
        name: {"failure": NEVER, "escalate_probability": 1.0} for name in DEFAULT_CLASSES
    },
    "wafer": {
        "defect_density": "0 /cm2",
        "core_failures": NEVER,
        "failure": NEVER,
        "remap_time": "0 h",
    },
    "repair": {
        "crews": 10_000,
        "diagnosis": INSTANT,
        "auto_fix": INSTANT,
        "wrong_unit_probability": 0.0,
        "silent_failure_probability": 0.0,
        "detection_delay": INSTANT,
    },
    "spares": {
        name: {"stock": 1_000_000, "reorder_point": 0, "order_quantity": 1, "lead_time": "1 h"}
        for name in DEFAULT_CLASSES
    },
    "spare_systems": {"count": 1_000, "swap_time": INSTANT, "rma_time": INSTANT},
    "recording": {"scope_level": "none"},
}


merge = deep_merge  # the builders below and the tests merge as scenario files do


def quiet_scenario(**overrides: Any) -> Scenario:
    """A hall where nothing happens except what `overrides` switch on."""
    return Scenario.model_validate(merge(_QUIET, overrides))


def run_logged(scenario: Scenario, seed: int | None = None, until: float | None = None) -> tuple[
    RunResult, list[Event]
]:
    """Simulate and return the KPIs with every event, in emission order (not time
    order: an outage or a throttling episode is written when it ends). The seed and
    horizon default to the scenario's own (`run.seed`, `run.until`)."""
    sink = ListSink()
    result = simulate(scenario, seed=seed, until=until, sink=sink)
    return result, sink.events


class ModelSink(ListSink):
    """The records of a `run_model` run, and the lot (clock speed, `accel`) each
    unit of each class was drawn from at the start: a new unit draws its lot
    afresh, so the model's `accel` at the end is not the starting one."""

    def __init__(self) -> None:
        super().__init__()
        self.first_lots: dict[str, np.ndarray] = {}


def run_model(scenario: Scenario, until: float, seed: int = 1) -> tuple[Model, ModelSink]:
    """Build and run a model, keeping it (for its state) and its records.

    The state is the one at `until`: nothing is closed, so outages and
    throttling episodes still open then have no event here (their events
    are written when they end; `run_logged` runs to the end and has them)."""
    sink = ModelSink()
    model = build(scenario, seed, sink)
    sink.first_lots = {cls.name: cls.accel.copy() for cls in model.classes}
    model.env.run(until=until)
    model.recorder.flush()
    return model, sink


def of(events: list[Event], kind: str, scope_prefix: str = "") -> list[Event]:
    """The events of one kind, optionally under one scope."""
    return [e for e in events if e.kind == kind and e.scope.startswith(scope_prefix)]


def same_kpis(a: dict[str, float], b: dict[str, float]) -> bool:
    """KPI dicts equal, NaN equal to NaN (an MTTR with no repair)."""
    return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)


def same_events(a: list[Event], b: list[Event]) -> bool:
    """Event logs equal field by field and in the same order, NaN equal to NaN
    (`Event ==` says NaN != NaN unless both are the very same NaN object)."""
    return len(a) == len(b) and all(
        (x.t, x.scope, x.kind, x.cause) == (y.t, y.scope, y.kind, y.cause)
        and _same(x.value, y.value)
        for x, y in zip(a, b, strict=True)
    )


def _same(x: float, y: float) -> bool:
    return x == y or (math.isnan(x) and math.isnan(y))


# -- one unit failing at a known time ----------------------------------------------------

# Every unit's life is deterministic, and a "bad" unit's clock runs 1e8 times
# faster: with a life of 1e9 h, bad units (and only they) fail at exactly
# FAILS_AT. With 1+1 units and half of them bad, some systems lose exactly one
# unit at FAILS_AT while their other unit never fails: those "lone failures"
# are fully deterministic cases for the repair pipeline. A new unit (a crew's
# replacement) draws its lot afresh: it fails FAILS_AT after it went in if bad,
# else never; tests that replace units either end before that or read the lot.
FAILS_AT = 10.0
BAD_LOT = {"failure": NEVER, "bad_fraction": 0.5, "bad_factor": 1e8}


def lone_failure_scenario(systems: int = 8, psu: dict[str, Any] | None = None,
                          **overrides: Any) -> Scenario:
    """PSUs 1+1, half of them bad (failing at FAILS_AT); `psu` overrides the class."""
    spec = {"count": 2, "required": 1, **BAD_LOT, **(psu or {})}
    return quiet_scenario(
        **merge({"hall": {"systems_per_rack": systems}, "components": {"psu": spec}}, overrides)
    )


def lone_failures(sink: ModelSink) -> list[tuple[int, int, int]]:
    """(system, failed unit, healthy unit) of each system that started with exactly
    one bad PSU of two."""
    bad = sink.first_lots["psu"].reshape(-1, 2) > 1.0
    return [
        (s, 2 * s + int(np.argmax(row)), 2 * s + int(np.argmin(row)))
        for s, row in enumerate(bad) if row.sum() == 1
    ]


# -- a training job under scripted outages ----------------------------------------------

Step = Callable[[Model], None]


def training_scenario(systems: int, hall: int, **training: Any) -> Scenario:
    """A quiet hall of `hall` systems in one rack running a job of `systems`."""
    return quiet_scenario(
        hall={"systems_per_rack": hall}, training={"systems": systems, **training}
    )


def exponential_job(k: int, mtbf: float, until: str, **training: Any) -> Scenario:
    """A job of `k` systems and `k` standbys on a hall of 2k whose only failure is
    an exponential PSU of mean `mtbf` hours per system, repaired at once: the job's
    interruptions are Poisson, of mean `mtbf` / k apart, and a standby always there."""
    exponential = {"dist": "exponential", "mean": f"{mtbf} h"}
    return quiet_scenario(
        run={"until": until},
        hall={"systems_per_rack": 2 * k},
        components={"psu": {"count": 1, "required": 1, "failure": exponential}},
        training={"systems": k, "standbys": k, **training},
    )


def down(s: int, cause: str = "test") -> Step:
    """Take system `s` down for reason `cause` (its `down_cause` when it was running)."""
    return lambda model: model.fleet.add_reason(s, model.fleet.bit(cause), cause)


def up(s: int, cause: str = "test") -> Step:
    """Clear reason `cause` of system `s`."""
    return lambda model: model.fleet.clear_reason(s, model.fleet.bit(cause))


def cap(s: int, fraction: float) -> Step:
    """Cap the power fraction of system `s` (the facility's cap: its work slows too)."""
    return lambda model: model.fleet.set_cap(s, fraction)


def scripted(scenario: Scenario, steps: list[tuple[float, Step]], until: float) -> Model:
    """Build `scenario`, apply each step at its time, run to `until`; the model."""
    model = build(scenario, seed=1)

    def at(step: Step) -> Callable[[object], None]:
        return lambda _: step(model)

    for t, step in steps:
        model.env.timeout(t).callbacks.append(at(step))
    model.env.run(until=until)
    return model
