"""A grid of deployments of one model: every precision x batch x context, as flat rows.

What `twin perf` prints: one `evaluate` over the broadcast grid, flattened
into rows of plain numbers (tokens/s per user and per replica, time to
first token, systems per replica, SRAM used; on GPU nodes, nodes and HBM
used), precision slowest-varying.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from twin.compute.catalogue import ModelSpec
from twin.compute.hardware import CS3, GpuNode, Hardware
from twin.compute.perf import Speculative, evaluate

__all__ = ["COLUMNS", "GPU_COLUMNS", "columns", "perf_grid"]

COLUMNS = ("bits", "batch", "context", "systems", "sram_gb", "user_tps", "aggregate_tps",
           "ttft_ms", "prefill_tps", "tokens_per_step")
# the same on GPU nodes: a replica's nodes and the HBM it uses
GPU_COLUMNS = ("bits", "batch", "context", "nodes", "hbm_gb", *COLUMNS[5:])


def columns(hardware: Hardware | GpuNode) -> tuple[str, ...]:
    """The names of `perf_grid`'s columns on `hardware`."""
    return GPU_COLUMNS if isinstance(hardware, GpuNode) else COLUMNS


def perf_grid(model: ModelSpec, *, bits: Sequence[float], batch: Sequence[float],
              context: Sequence[float], prompt: float, kv_bits: float | None = None,
              speculative: Speculative | None = None, systems: int | None = None,
              hardware: Hardware | GpuNode = CS3,
              gpus: int | None = None) -> list[tuple[float, ...]]:
    """Rows of `columns(hardware)`, one per (bits, batch, context); raises `FitError`
    if an explicit `systems` (or `gpus`) count cannot hold some point of the grid."""
    b = np.asarray(bits, dtype=float)[:, None, None]
    n = np.asarray(batch, dtype=float)[None, :, None]
    c = np.asarray(context, dtype=float)[None, None, :]
    perf = evaluate(model, bits=b, batch=n, context=c, prompt=prompt, kv_bits=kv_bits,
                    speculative=speculative, systems=systems, hardware=hardware, gpus=gpus)
    shape = perf.step_s.shape
    columns = [np.broadcast_to(x, shape).ravel() for x in (
        b, n, c, perf.systems, perf.sram_bytes / 1e9, perf.user_tps, perf.aggregate_tps,
        perf.ttft_s * 1e3, perf.prefill_tps, perf.tokens_per_step)]
    # the grid's own coordinates as given: whole numbers stay whole
    shown = [[int(v) if v.is_integer() else v for v in col.tolist()] for col in columns[:3]]
    return list(zip(*shown, *(col.tolist() for col in columns[3:]), strict=True))
