"""The systems the compute core models: published figures and fitted constants.

`Hardware` holds what one wafer-scale system (a CS-3: one WSE-3 wafer) offers a
replica: SRAM, its bandwidth, the on-wafer fabric, peak arithmetic, cores, and
the system's external I/O for wafer-to-wafer hops (docs/sources.md, A1 and
A3), plus the three constants fitted by `twin.compute.calibration` and stored
in `calibration.toml`. `CS3` is the default.

`GpuNode` holds what an 8-GPU node (a DGX H100-like node) offers: HBM per GPU,
its bandwidth, dense tensor arithmetic at 16 and 8 bits, NVLink inside the
node and the network between nodes (docs/sources.md, G1), plus the four
constants fitted on published GPU serving figures (`calibration_gpu.toml`).
`H100_NODE` is the one the GPU hall uses (`twin.compute.gpu`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = ["Hardware", "CS3", "PUBLISHED", "CALIBRATION_FILE", "load_fitted", "GpuNode",
           "H100_NODE", "H100_PUBLISHED", "GPU_CALIBRATION_FILE", "for_system"]

CALIBRATION_FILE = Path(__file__).with_name("calibration.toml")
GPU_CALIBRATION_FILE = Path(__file__).with_name("calibration_gpu.toml")


@dataclass(frozen=True)
class Hardware:
    """One wafer-scale system as the throughput model sees it (SI units: bytes, s, FLOP)."""

    name: str
    sram_bytes: float  # on-wafer SRAM
    sram_usable: float  # share of SRAM that can hold weights and KV cache (ASSUMPTION)
    sram_bandwidth: float  # bytes/s, whole wafer
    fabric_bandwidth: float  # bytes/s, whole wafer (on-wafer network)
    peak_flops: float  # FLOP/s, whole wafer (the vendor's 16-bit sparse peak)
    cores: int  # enabled cores
    io_bandwidth: float  # bytes/s out of one system, for wafer-to-wafer hops
    # fitted by twin.compute.calibration (calibration.toml)
    span_s: float  # a layer's latency per core along the side of its patch of the mesh
    hop_s: float  # fixed time of one wafer-to-wafer hop of the activations
    efficiency: float  # achieved share of the SRAM bandwidth and peak arithmetic

    @property
    def capacity(self) -> float:
        """Bytes of weights and KV cache one system can hold."""
        return self.sram_bytes * self.sram_usable


def load_fitted(path: Path = CALIBRATION_FILE) -> dict[str, float]:
    """The fitted constants as stored by the last calibration (`[fitted]` table)."""
    with path.open("rb") as handle:
        return {key: float(value) for key, value in tomllib.load(handle)["fitted"].items()}


# the published figures, before calibration: the fitted constants are placeholders
PUBLISHED = Hardware(
    name="CS-3",
    sram_bytes=44e9,  # sources A1: 44 GB on the WSE-3
    sram_usable=0.9,  # ASSUMPTION: a tenth kept for code, activations and routing buffers
    sram_bandwidth=21e15,  # sources A1: 21 PB/s
    fabric_bandwidth=214e15 / 8,  # sources A1: 214 Pb/s
    peak_flops=125e15,  # sources A1: 125 PFLOP/s, 16-bit, sparse
    cores=900_000,  # sources A1
    io_bandwidth=12 * 100e9 / 8,  # sources A3: 12 x 100 Gb Ethernet
    span_s=0.0,
    hop_s=0.0,
    efficiency=1.0,
)

_FITTED = load_fitted()
CS3 = replace(PUBLISHED, span_s=_FITTED["span_s"], hop_s=_FITTED["hop_s"],
              efficiency=_FITTED["efficiency"])


@dataclass(frozen=True)
class GpuNode:
    """One 8-GPU node as the throughput model sees it (SI units, per GPU unless said)."""

    name: str
    gpus: int  # GPUs in the node, joined by NVLink
    hbm_bytes: float  # HBM of one GPU
    hbm_usable: float  # share of HBM that holds weights and KV cache (ASSUMPTION, below)
    hbm_bandwidth: float  # bytes/s of one GPU's HBM
    flops_16: float  # FLOP/s of one GPU, dense, 16-bit
    flops_8: float  # FLOP/s of one GPU, dense, 8-bit (also used for 4-bit weights)
    nvlink_bandwidth: float  # bytes/s one GPU sends over NVLink (one direction)
    network_bandwidth: float  # bytes/s one GPU sends to another node (its NIC)
    network_latency_s: float  # one hop between nodes (ASSUMPTION)
    # fitted by twin.compute.calibration (calibration_gpu.toml)
    hbm_efficiency: float  # achieved share of the HBM bandwidth
    flops_efficiency: float  # achieved share of the dense arithmetic
    allreduce_s: float  # fixed time of one all-reduce over NVLink
    step_s: float  # fixed time of one engine iteration (launches, sampling, scheduling)

    @property
    def capacity(self) -> float:
        """Bytes of weights and KV cache one GPU can hold."""
        return self.hbm_bytes * self.hbm_usable


# the published figures of an H100 SXM node (DGX H100), before calibration
H100_PUBLISHED = GpuNode(
    name="H100 node",
    gpus=8,  # sources G1: a DGX H100 holds 8 GPUs
    hbm_bytes=80e9,  # sources G1: 80 GB HBM3 per GPU
    # ASSUMPTION, as vLLM's default gpu_memory_utilization (sources G1): the rest is
    # activations, workspace and the CUDA context
    hbm_usable=0.9,
    hbm_bandwidth=3.35e12,  # sources G1: 3.35 TB/s
    flops_16=989e12,  # sources G1: dense BF16
    flops_8=1979e12,  # sources G1: dense FP8
    nvlink_bandwidth=450e9,  # sources G1: 900 GB/s per GPU, both directions together
    network_bandwidth=400e9 / 8,  # sources G1: a 400 Gb/s NIC per GPU
    network_latency_s=5e-6,  # ASSUMPTION: a few microseconds across one switch tier
    hbm_efficiency=1.0,
    flops_efficiency=1.0,
    allreduce_s=0.0,
    step_s=0.0,
)

_GPU_FITTED = load_fitted(GPU_CALIBRATION_FILE)
H100_NODE = replace(
    H100_PUBLISHED, hbm_efficiency=_GPU_FITTED["hbm_efficiency"],
    flops_efficiency=_GPU_FITTED["flops_efficiency"], allreduce_s=_GPU_FITTED["allreduce_s"],
    step_s=_GPU_FITTED["step_s"],
)


def for_system(kind: str) -> Hardware | GpuNode:
    """The compute hardware of a scenario's system kind (`system.kind`)."""
    systems: dict[str, Hardware | GpuNode] = {"wafer": CS3, "gpu_node": H100_NODE}
    return systems[kind]
