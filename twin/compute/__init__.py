"""twin.compute: the compute-throughput core (pure numpy: no SimPy, no scenario).

Data flow: the serving layer names a model (`catalogue`), a precision, a
batch, a context and a prompt length; `evaluate` says how many systems a
replica of it needs, how much SRAM it uses and how fast it decodes and
prefills at full speed (`Perf`, arrays broadcast over the inputs), on CS-3
wafers (`perf`) or on 8-GPU nodes (`gpu`, with a `GpuNode`: nodes and HBM);
`at_speed` scales that by the replica's slowest system's speed factor; a
`Placement` strategy picks the systems of each replica in the hall.
The constants of both are fitted in `twin.compute.calibration`.
"""

from __future__ import annotations

from twin.compute.catalogue import ModelSpec, catalogue
from twin.compute.hardware import CS3, H100_NODE, GpuNode, Hardware
from twin.compute.memory import FitError
from twin.compute.perf import (
    DEFAULT_ACCEPTANCE,
    DEFAULT_DRAFT_TOKENS,
    Perf,
    Speculative,
    at_speed,
    evaluate,
    expected_tokens,
)
from twin.compute.placement import PLACEMENTS, Placement, PlacementError

__all__ = [
    "ModelSpec", "catalogue", "Speculative", "FitError", "Perf", "evaluate", "at_speed",
    "expected_tokens", "DEFAULT_DRAFT_TOKENS", "DEFAULT_ACCEPTANCE", "Hardware", "CS3",
    "GpuNode", "H100_NODE",
    "Placement", "PLACEMENTS", "PlacementError",
]
