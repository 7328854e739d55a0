"""Exact time integrals of piecewise-constant quantities, bucketed by time and scope.

The fleet's change log says that quantity q of system s jumps by `delta` at
`t`. Between changes every quantity is constant, so the integral over any
bucket is exact: the value at the bucket's start times its length, plus each
jump inside the bucket times the time left to the bucket's end. Everything is
one pass of `np.bincount`, O(changes + scopes x buckets).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["bucket_integrals", "bucket_edges"]


def bucket_edges(horizon: float, bucket: float) -> np.ndarray:
    """Bucket start times and the horizon: ``[0, b, 2b, ..., horizon]``."""
    n = max(1, math.ceil(horizon / bucket - 1e-9))
    edges = np.arange(n + 1, dtype=float) * bucket
    edges[-1] = horizon
    return edges


def bucket_integrals(
    t: np.ndarray,
    group: np.ndarray,
    delta: np.ndarray,
    n_groups: int,
    edges: np.ndarray,
) -> np.ndarray:
    """Integral of each group's quantity over each bucket, shape (n_groups, n_buckets).

    `t`, `group`, `delta`: the jumps (time, group index, size), values start at 0.
    `edges`: bucket boundaries from `bucket_edges`; jumps at or after the last
    edge are ignored.
    """
    n_buckets = len(edges) - 1
    keep = t < edges[-1]
    t, group, delta = t[keep], group[keep], delta[keep]
    b = np.searchsorted(edges, t, side="right") - 1
    flat = group * n_buckets + b
    size = n_groups * n_buckets
    jumps = np.bincount(flat, weights=delta, minlength=size).reshape(n_groups, n_buckets)
    partial = np.bincount(flat, weights=delta * (edges[b + 1] - t), minlength=size)
    start_value = np.cumsum(jumps, axis=1) - jumps
    return start_value * np.diff(edges) + partial.reshape(n_groups, n_buckets)
