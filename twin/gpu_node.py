"""The GPU node as a system kind (``[system] kind = "gpu_node"``): the defaults it brings.

An 8-GPU node (a DGX H100-like node, ~10.2 kW) has no wafer: no cores to
lose and remap, no wafer to fail and no whole-system swap from a pool of
spare systems. What takes it down are the interruption causes of the Llama 3
405B pre-training run (Meta, arXiv:2407.21783, Table 5: 419 unexpected
interruptions of 16,384 H100s, 2,048 nodes, in a 54-day snapshot;
docs/sources.md C1), each a component class of the node whose every failure
takes the node down (`required` = `count`):

- causes of a GPU (the GPU, its HBM3 and SRAM, its system processor, its
  thermal interface and sensor, silent data corruption) and of its NIC (one
  per GPU) are 8 units a node, each exponential with the table's rate per
  GPU, count / (16,384 GPUs x 1,296 h);
- causes of the host, the network and the software are one unit a node, at
  count / (2,048 nodes x 1,296 h).

So a node is interrupted 419 / (2,048 x 54) = 3.79 times per 1,000 node-days,
the run's rate (`tests/twin/test_gpu_node.py`). A hardware cause is diagnosed,
reset once (the automated fix, which never clears it: every one is a part
replaced) and repaired by a technician with a spare from the shelf; the
software causes (a software bug, a collective's watchdog timeout, an external
dependency, unplanned host maintenance) are cleared by the automated restart
(escalate_probability 0: the part they name is never taken). Repair times and
the spares' lead times come from docs/sources.md C2 and C3; the rest is
ASSUMPTION, stated where it is set.

`components()`, `SPARES` and `SYSTEM` are written as a scenario file would
write them; `twin.scenario` merges them under a gpu_node scenario's own keys.
`SHARED` names the causes a wafer-scale system shares (docs/gpu.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twin import units

__all__ = ["Cause", "CAUSES", "GPUS_PER_NODE", "LLAMA3", "components", "SPARES", "SYSTEM",
           "SHARED", "unit_mean_h", "node_rate_per_h"]

GPUS_PER_NODE = 8


@dataclass(frozen=True)
class Run:
    """The fleet a failure table was measured on."""

    gpus: int
    nodes: int
    hours: float
    unexpected: int  # unexpected interruptions in `hours`


LLAMA3 = Run(gpus=16_384, nodes=2_048, hours=54 * 24.0, unexpected=419)  # sources C1


@dataclass(frozen=True)
class Cause:
    """One row of the interruption table, as a component class of the node."""

    name: str  # the component class (a KPI name: failures.<name>)
    label: str  # as the paper names it
    count: int  # unexpected interruptions it caused in the run
    per_gpu: bool  # 8 units a node at the per-GPU rate, or one unit at the per-node rate
    part: str  # the spare a manual repair takes
    repair: dict[str, Any]  # the technician's work
    escalate: float  # share of faults the automated fix leaves to a technician


# ASSUMPTIONS on repair work (sources C2, C3 for what is published): a GPU swapped by a
# technician in 2-4 h; a NIC, a cable or optic, a host part (SSD, PSU, board, CPU,
# memory) in about an hour or two. The software causes never reach a technician.
_GPU_SWAP = {"dist": "lognormal", "median": "3 h", "sigma": 0.2}  # 2-4 h (sources C2)
_NIC = {"dist": "lognormal", "median": "1.5 h", "sigma": 0.3}
_CABLE = {"dist": "lognormal", "median": "1 h", "sigma": 0.4}
_HOST = {"dist": "lognormal", "median": "2 h", "sigma": 0.4}

CAUSES = (
    Cause("gpu", "Faulty GPU", 148, True, "gpu", _GPU_SWAP, 1.0),
    Cause("hbm", "GPU HBM3 memory", 72, True, "gpu", _GPU_SWAP, 1.0),
    Cause("software", "Software bug", 54, False, "host", _HOST, 0.0),
    Cause("network", "Network switch/cable", 35, False, "cable", _CABLE, 1.0),
    Cause("host_maintenance", "Host maintenance (unplanned)", 32, False, "host", _HOST, 0.0),
    Cause("gpu_sram", "GPU SRAM memory", 19, True, "gpu", _GPU_SWAP, 1.0),
    Cause("gsp", "GPU system processor", 17, True, "gpu", _GPU_SWAP, 1.0),
    Cause("nic", "NIC", 7, True, "nic", _NIC, 1.0),
    Cause("collective", "NCCL watchdog timeouts", 7, False, "host", _HOST, 0.0),
    Cause("sdc", "Silent data corruption", 6, True, "gpu", _GPU_SWAP, 1.0),
    Cause("gpu_thermal", "GPU thermal interface + sensor", 6, True, "gpu", _GPU_SWAP, 1.0),
    Cause("ssd", "SSD", 3, False, "host", _HOST, 1.0),
    Cause("psu", "Power supply", 3, False, "host", _HOST, 1.0),
    Cause("chassis", "Server chassis", 2, False, "host", _HOST, 1.0),
    Cause("io_board", "IO expansion board", 2, False, "host", _HOST, 1.0),
    Cause("dependency", "Dependency", 2, False, "host", _HOST, 0.0),
    Cause("cpu", "CPU", 2, False, "host", _HOST, 1.0),
    Cause("memory", "System memory", 2, False, "host", _HOST, 1.0),
)

# The causes a wafer-scale system shares (docs/gpu.md): the job's software, the
# collective communication between systems, the network between them, the host
# servers' maintenance and external dependencies. Its own hardware (PSUs, pumps, fans,
# the wafer) has its own classes.
SHARED = ("software", "collective", "network", "host_maintenance", "dependency")


def unit_mean_h(cause: Cause, run: Run = LLAMA3) -> float:
    """Mean life of one unit of `cause` (hours): the run's exposure of such units over
    the interruptions it caused."""
    units_ = run.gpus if cause.per_gpu else run.nodes
    return units_ * run.hours / cause.count


def node_rate_per_h(run: Run = LLAMA3) -> float:
    """Unexpected interruptions per node-hour: the sum over the causes."""
    return sum((GPUS_PER_NODE if c.per_gpu else 1) / unit_mean_h(c, run) for c in CAUSES)


def components() -> dict[str, dict[str, Any]]:
    """The node's component classes, as a scenario's [components] writes them."""
    out = {}
    for cause in CAUSES:
        count = GPUS_PER_NODE if cause.per_gpu else 1
        out[cause.name] = {
            "count": count, "required": count, "part": cause.part,
            "failure": {"dist": "exponential",
                        "mean": units.format_quantity(unit_mean_h(cause), "time")},
            "repair": dict(cause.repair),
            "escalate_probability": cause.escalate,
        }
    return out


# ASSUMPTIONS: spares for the default 1,020-node hall. GPU RMA takes from the next
# business day to 3-14 business days (sources C3): a replacement part is ordered with a
# 12-day lead time (about the middle of that range in calendar days). Parts a year
# (failures x escalate / ((1 - wrong unit)(1 - silent))): ~950 GPUs, ~25 NICs, ~125
# cables and optics (7 days: stocked locally), ~50 host parts. The reorder point covers
# the demand over a lead time at a 99 % cycle service level (Poisson quantile: 31.2 ->
# 45, 0.82 -> 3, 2.38 -> 7, 1.63 -> 5), an order is about a month of demand, the first
# stock is reorder point + order.
SPARES: dict[str, dict[str, Any]] = {
    "gpu": {"stock": 124, "reorder_point": 45, "order_quantity": 79, "lead_time": "12 d"},
    "nic": {"stock": 5, "reorder_point": 3, "order_quantity": 2, "lead_time": "12 d"},
    "cable": {"stock": 17, "reorder_point": 7, "order_quantity": 10, "lead_time": "7 d"},
    "host": {"stock": 9, "reorder_point": 5, "order_quantity": 4, "lead_time": "12 d"},
}

# A DGX H100-like node: up to ~10.2 kW (sources G1); idle and boot are ASSUMPTIONS (a
# booting node: CPUs, fans and idle GPUs; a reboot with GPU and fabric checks).
SYSTEM: dict[str, Any] = {"power": "10.2 kW", "idle_power": "2 kW", "boot_time": "10 min"}
