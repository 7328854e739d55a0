"""The fluid allocation of a deployment's capacity to its tenants, over many intervals.

Capacity (output tokens per second) sits in pools: the replicas a tenant
reserved (its pool) and the rest of its deployment (the shared pool). In
each interval:

1. each holder's demand is served from its own pool first, up to the pool;
   what its pool has left over is lent to the shared pool when `lend` is set
   (else it stays idle: the replicas are held);
2. the shared pool serves what is still asked, priority by priority
   (higher first, strictly); tenants of one priority share what is left in
   proportion to what they still ask.

Every array is (intervals, ...): the rule is applied to all intervals at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Pools", "allocate"]


@dataclass(frozen=True)
class Pools:
    """Who may draw from which pool: tenant t's deployment `deployment[t]`, its own
    pool `holds[t]` (a column of the pool capacities, or -1), its `priority`; the
    shared pool of deployment d is column `shared[d]`."""

    deployment: Sequence[int]
    holds: Sequence[int]
    priority: Sequence[int]
    shared: Sequence[int]

    def merged(self) -> Pools:
        """The same tenants with no reservation (every holder draws from the shared pool)."""
        return Pools(self.deployment, [-1] * len(self.holds), self.priority, self.shared)


def allocate(demand: np.ndarray, capacity: np.ndarray, pools: Pools, lend: bool) -> np.ndarray:
    """Tokens/s served to each tenant, shape of `demand` (intervals, tenants), from
    pool `capacity` (intervals, pools)."""
    served = np.zeros_like(demand)
    rest = demand.copy()
    shared = capacity[:, list(pools.shared)].copy()  # (intervals, deployments)
    for t, pool in enumerate(pools.holds):
        if pool < 0:
            continue
        own = capacity[:, pool]
        take = np.minimum(rest[:, t], own)
        served[:, t] += take
        rest[:, t] -= take
        if lend:
            shared[:, pools.deployment[t]] += own - take
    for d in range(len(pools.shared)):
        left = shared[:, d]
        tenants = [t for t in range(len(pools.deployment)) if pools.deployment[t] == d]
        for level in sorted({pools.priority[t] for t in tenants}, reverse=True):
            tier = [t for t in tenants if pools.priority[t] == level]
            asked = rest[:, tier].sum(axis=1)
            give = np.minimum(asked, left)
            with np.errstate(divide="ignore", invalid="ignore"):
                share = np.where(asked > 0, give / asked, 0.0)
            served[:, tier] += rest[:, tier] * share[:, None]
            left = left - give
    return served
