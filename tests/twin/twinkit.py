"""Builders for the model tests: quiet scenarios and runs with their event logs.

A model test switches on only the mechanism it is about. `quiet_scenario`
starts from a hall in which nothing happens unless a test asks for it: no
unit or wafer ever fails, the repair pipeline is instantaneous and
deterministic (diagnosis and automated fix take no time, every fault goes to
a crew, no wrong unit, no silent failure), crews and parts are plentiful
and a system is back the moment its last reason for being down clears.
Overrides are nested dicts merged key by key; a distribution table
(a dict with "dist") replaces the default whole.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from twin.engine import Model, build, simulate
from twin.records import Event, ListSink, RunResult
from twin.scenario import Scenario

NEVER = {"dist": "deterministic", "value": "1e9 h"}
INSTANT = {"dist": "deterministic", "value": "0 h"}
DEFAULT_CLASSES = ("psu", "pump", "fan")

_QUIET: dict[str, Any] = {
    "name": "quiet",
    "run": {"until": "100 h", "seed": 1},
    "hall": {"rows": 1, "racks_per_row": 1, "systems_per_rack": 4},
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


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of scenario data; a distribution (a dict with "dist") is a leaf."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and "dist" not in value and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def quiet_scenario(**overrides: Any) -> Scenario:
    """A hall where nothing happens except what `overrides` switch on."""
    return Scenario.model_validate(merge(_QUIET, overrides))


def run_logged(scenario: Scenario, seed: int = 1, until: float | None = None) -> tuple[
    RunResult, list[Event]
]:
    """Simulate and return the KPIs with every event, in emission order."""
    sink = ListSink()
    result = simulate(scenario, seed=seed, until=until, sink=sink)
    return result, sink.events


def run_model(scenario: Scenario, until: float, seed: int = 1) -> tuple[Model, ListSink]:
    """Build and run a model, keeping it (for its state) and its records."""
    sink = ListSink()
    model = build(scenario, seed, sink)
    model.env.run(until=until)
    model.recorder.flush()
    return model, sink


def of(events: list[Event], kind: str, scope_prefix: str = "") -> list[Event]:
    """The events of one kind, optionally under one scope."""
    return [e for e in events if e.kind == kind and e.scope.startswith(scope_prefix)]


def same_kpis(a: dict[str, float], b: dict[str, float]) -> bool:
    """KPI dicts equal, NaN equal to NaN (an MTTR with no repair)."""
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a
    )


# -- one unit failing at a known time ----------------------------------------------------

# Every unit's life is deterministic, and a "bad" unit's clock runs 1e8 times
# faster: with a life of 1e9 h, bad units (and only they) fail at exactly
# FAILS_AT. With 1+1 units and half of them bad, some systems lose exactly one
# unit at FAILS_AT while their other unit never fails: those "lone failures"
# are fully deterministic cases for the repair pipeline.
FAILS_AT = 10.0
BAD_LOT = {"failure": NEVER, "bad_fraction": 0.5, "bad_factor": 1e8}


def lone_failure_scenario(systems: int = 8, psu: dict[str, Any] | None = None,
                          **overrides: Any) -> Scenario:
    """PSUs 1+1, half of them bad (failing at FAILS_AT); `psu` overrides the class."""
    spec = {"count": 2, "required": 1, **BAD_LOT, **(psu or {})}
    return quiet_scenario(
        **merge({"hall": {"systems_per_rack": systems}, "components": {"psu": spec}}, overrides)
    )


def lone_failures(model: Model) -> list[tuple[int, int, int]]:
    """(system, failed unit, healthy unit) of each system with exactly one bad PSU."""
    psu = next(c for c in model.classes if c.name == "psu")
    bad = psu.accel.reshape(-1, 2) > 1.0
    return [
        (s, 2 * s + int(np.argmax(row)), 2 * s + int(np.argmin(row)))
        for s, row in enumerate(bad) if row.sum() == 1
    ]
