"""wafertwin's model: scenario schema, engine, mechanisms and KPIs.

Public API: `load_scenario` (read and validate a TOML scenario), `simulate`
(run one replication, records to a sink, KPIs returned), the record types and
`TwinError`. `twin` never imports `storage` or `cli`.
"""

from __future__ import annotations

from twin.engine import simulate
from twin.errors import ScenarioError, StoreError, TwinError
from twin.records import Event, ListSink, Metric, RunResult, Sink
from twin.scenario import Scenario, load_scenario

__all__ = [
    "simulate", "load_scenario", "Scenario", "Event", "Metric", "RunResult", "Sink",
    "ListSink", "TwinError", "ScenarioError", "StoreError",
]
