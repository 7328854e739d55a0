"""The wafer-scale system the compute core models: published figures and fitted constants.

`Hardware` holds what one system (a CS-3: one WSE-3 wafer) offers a replica:
SRAM, its bandwidth, the on-wafer fabric, peak arithmetic, cores, and the
system's external I/O for wafer-to-wafer hops (docs/sources.md, A1 and A3),
plus the three constants fitted by `twin.compute.calibration` and stored in
`calibration.toml`. `CS3` is the default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = ["Hardware", "CS3", "PUBLISHED", "CALIBRATION_FILE", "load_fitted"]

CALIBRATION_FILE = Path(__file__).with_name("calibration.toml")


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
