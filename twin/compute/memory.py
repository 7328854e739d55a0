"""Memory: the bytes a replica holds in SRAM, and how many systems it takes.

A replica holds all the weights of its model (all experts of a mixture of
experts) at the deployment's precision, the KV cache of every sequence of
its batch at the full context, and the draft model of speculative decoding
if it uses one. Systems per replica = that total over the usable SRAM of one
system, rounded up. All functions broadcast over numpy arrays.
"""

from __future__ import annotations

import numpy as np

from twin.compute.catalogue import ModelSpec
from twin.compute.hardware import Hardware

__all__ = ["FitError", "weight_bytes", "kv_bytes", "replica_bytes", "systems_needed"]


class FitError(ValueError):
    """A replica of the systems given cannot hold its weights and KV cache."""

    def __init__(self, message: str, missing_bytes: float) -> None:
        super().__init__(message)
        self.missing_bytes = missing_bytes


def weight_bytes(model: ModelSpec, bits: np.ndarray) -> np.ndarray:
    """All weights at `bits` per parameter."""
    return model.params * np.asarray(bits, dtype=float) / 8.0


def kv_bytes(model: ModelSpec, kv_bits: np.ndarray, context: np.ndarray,
             batch: np.ndarray) -> np.ndarray:
    """KV cache: 2 (K and V) x layers x kv_heads x head_dim x kv_bits / 8 per token,
    for `context` tokens of each of `batch` sequences."""
    per_token = model.kv_values_per_token * np.asarray(kv_bits, dtype=float) / 8.0
    return per_token * np.asarray(context, dtype=float) * np.asarray(batch, dtype=float)


def replica_bytes(model: ModelSpec, bits: np.ndarray, kv_bits: np.ndarray, context: np.ndarray,
                  batch: np.ndarray, draft: ModelSpec | None = None) -> np.ndarray:
    """SRAM one replica uses: weights, KV cache and the draft model with its own cache."""
    total = weight_bytes(model, bits) + kv_bytes(model, kv_bits, context, batch)
    if draft is not None:
        total = total + weight_bytes(draft, bits) + kv_bytes(draft, kv_bits, context, batch)
    return total


def systems_needed(used: np.ndarray, hardware: Hardware) -> np.ndarray:
    """The fewest systems whose usable SRAM holds `used` bytes (at least 1)."""
    return np.maximum(1, np.ceil(np.asarray(used) / hardware.capacity)).astype(np.int64)
