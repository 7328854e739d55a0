"""wafertwin's model: scenario schema, engine, mechanisms and KPIs.

Public API: `load_scenario` (read and validate a TOML scenario), `simulate`
(run one replication, records to a sink, KPIs returned), the record types and
`TwinError`. `twin` never imports `storage` or `cli`.

The names are loaded on first use (PEP 562), so importing a light submodule
such as `twin.errors` or `twin.units` does not load the engine, numpy or SimPy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twin.engine import simulate
    from twin.errors import ScenarioError, StoreError, TwinError
    from twin.records import Event, ListSink, Metric, RunResult, Sink
    from twin.scenario import Scenario, load_scenario

__all__ = [
    "simulate", "load_scenario", "Scenario", "Event", "Metric", "RunResult", "Sink",
    "ListSink", "TwinError", "ScenarioError", "StoreError",
]

# each public name -> the module that defines it
_HOME = {
    "simulate": "twin.engine",
    "load_scenario": "twin.scenario", "Scenario": "twin.scenario",
    "Event": "twin.records", "Metric": "twin.records", "RunResult": "twin.records",
    "Sink": "twin.records", "ListSink": "twin.records",
    "TwinError": "twin.errors", "ScenarioError": "twin.errors", "StoreError": "twin.errors",
}


def __getattr__(name: str) -> object:
    if name not in _HOME:
        raise AttributeError(f"module 'twin' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value
