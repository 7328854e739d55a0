"""Fluid serving: tokens as a flow, allocated exactly between changes (docs/serving.md).

Between two changes (a replica's speed or cause, an hour of demand, a metric
bucket's edge) every rate is constant. After the run the replicas' log is
turned into per-interval sums (capacity of each pool, missing capacity by
cause, busy slots, capacity fast enough for each tenant's TPOT) by
cumulating its deltas, and every interval is solved at once with numpy:

- served: `allocation.allocate` of the admitted capacity (``admission`` x
  capacity) to the tenants' token demand;
- lost: the same allocation with every replica at full speed serves
  ``full``; ``demand - full`` is overload, ``full - served`` is lost to
  failures, split among causes in proportion to the deployment's capacity
  missing for each cause in that interval (a replica down: all of it, to
  its outage's trigger; slowed: 1 - speed, to the throttle's blame or
  ``cores``);
- reservation cost: the allocation with no reservation, less served;
- delays: `queueing` per deployment (servers = slots of its serving
  replicas, utilisation = served / capacity), Cobham's priority waits;
  TTFT met when wait + prefill at the replicas' mean speed is within the
  SLO; TPOT met for the tokens made on replicas fast enough; goodput =
  served x P(TTFT met) x P(TPOT met).

Integrals are sums over intervals of rate x length: exact, nothing sampled.
"""

from __future__ import annotations

import math

import numpy as np

from twin.records import MetricSeries
from twin.workloads.serving.allocation import Pools, allocate
from twin.workloads.serving.core import (
    OVERLOAD,
    SECONDS_PER_HOUR,
    Outcome,
    Serving,
    TenantOutcome,
    previous_entry,
)
from twin.workloads.serving.demand import hourly_rates
from twin.workloads.serving.queueing import (
    erlang_c,
    mixture_quantile,
    priority_waits,
    wait_exceeds,
)

__all__ = ["FluidServing"]

# Sums of deltas leave rounding dust where a sum should be 0: below this share of the
# column's largest value, a value is zero.
_DUST = 1e-9


class FluidServing:
    """The fluid model of a run's serving, solved from the replicas' log at the end."""

    def __init__(self, serving: Serving) -> None:
        self.serving = serving

    def outcome(self, horizon: float, bucket: float) -> Outcome:
        sv = self.serving
        tenants, deps = sv.tenants, sv.deployments
        n_t, n_d = len(tenants), len(deps)
        t_log, r_log, speed, cause = sv.replicas.log()
        edges = np.unique(np.concatenate([
            np.arange(math.ceil(horizon)), np.arange(0.0, horizon, bucket), t_log[t_log < horizon],
        ]))
        breaks = np.append(edges, horizon)
        dt = np.diff(breaks) * SECONDS_PER_HOUR  # seconds
        n_k = len(edges)
        causes = sorted({c for c in cause.tolist() if c})
        cols = _Columns(n_t, n_d, len(causes))
        sums = _interval_sums(sv, cols, causes, breaks, t_log, r_log, speed, cause)
        agg = np.array([d.tokens_per_s for d in deps])

        pools = Pools(
            deployment=[t.deployment for t in tenants],
            holds=[cols.pool(t) if len(tenants[t].reserved) else -1 for t in range(n_t)],
            priority=[t.spec.priority for t in tenants],
            shared=[cols.shared(d) for d in range(n_d)],
        )
        pool_dep = np.array([t.deployment for t in tenants] + list(range(n_d)))
        full_cap = np.zeros(cols.n_pools)  # replicas in each pool, then x tokens/s
        for t, tenant in enumerate(tenants):
            full_cap[cols.pool(t)] = len(tenant.reserved)
        for d, dep in enumerate(deps):
            full_cap[cols.shared(d)] = dep.spec.replicas - sum(
                len(t.reserved) for t in tenants if t.deployment == d)
        full_cap *= agg[pool_dep]

        rates = np.stack([hourly_rates(t.spec, math.ceil(horizon)) for t in tenants], axis=1)
        requests = rates[np.floor(edges).astype(np.int64)]  # (intervals, tenants) per second
        out_len = np.array([t.output_tokens for t in tenants])
        demand = requests * out_len  # output tokens per second
        a = sv.spec.admission
        lend = sv.spec.lend_reserved
        cap = sums[:, cols.caps]
        served = allocate(demand, a * cap, pools, lend)
        full = allocate(demand, np.broadcast_to(a * full_cap, cap.shape), pools, lend)
        merged = cap.copy()
        for t in range(n_t):
            if pools.holds[t] >= 0:
                merged[:, pools.shared[pools.deployment[t]]] += merged[:, pools.holds[t]]
                merged[:, pools.holds[t]] = 0.0
        unreserved = allocate(demand, a * merged, pools.merged(), lend)

        dep_of = np.array(pools.deployment)
        dep_cap = np.stack([cap[:, pool_dep == d].sum(1) for d in range(n_d)], axis=1)
        waits, chance, prefill = self._queues(sums, cols, served, dep_cap, out_len, agg)
        x = np.array([t.spec.ttft * SECONDS_PER_HOUR for t in tenants]) - prefill
        ttft_ok = 1.0 - wait_exceeds(x, chance[:, dep_of], waits)
        with np.errstate(divide="ignore", invalid="ignore"):
            tpot_ok = np.where(dep_cap[:, dep_of] > 0,
                               sums[:, cols.fast] / dep_cap[:, dep_of], 0.0)
        tpot_ok = np.clip(tpot_ok, 0.0, 1.0)
        goodput = served * ttft_ok * tpot_ok

        missing = sums[:, cols.missing].reshape(n_k, n_d, len(causes))
        total_missing = missing.sum(axis=2, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            split = np.where(total_missing > 0, missing / total_missing, 0.0)
        failed = np.maximum(full - served, 0.0)  # (intervals, tenants)

        results: dict[str, TenantOutcome] = {}
        served_req = served / out_len
        for t, tenant in enumerate(tenants):
            d = tenant.deployment
            lost = {c: float(np.sum(failed[:, t] * split[:, d, i] * dt))
                    for i, c in enumerate(causes)}
            lost[OVERLOAD] = float(np.sum(np.maximum(demand[:, t] - full[:, t], 0.0) * dt))
            weight = served_req[:, t] * dt
            s_tok = float(np.sum(served[:, t] * dt))
            results[tenant.name] = TenantOutcome(
                demanded=float(np.sum(demand[:, t] * dt)),
                served=s_tok,
                goodput=float(np.sum(goodput[:, t] * dt)),
                ttft_attainment=_ratio(np.sum(served[:, t] * ttft_ok[:, t] * dt), s_tok),
                tpot_attainment=_ratio(np.sum(served[:, t] * tpot_ok[:, t] * dt), s_tok),
                delay_mean_s=_ratio(np.sum(waits[:, t] * weight), np.sum(weight)),
                delay_p99_s=mixture_quantile(0.99, weight, chance[:, d], waits[:, t]),
                lost=lost,
                reservation_cost=float(np.sum((unreserved[:, t] - served[:, t]) * dt)),
            )
        series = self._series(edges, dt, horizon, bucket, demand, served, goodput, waits,
                              served_req, sums[:, cols.up])
        return Outcome(results, series)

    def _queues(
        self, sums: np.ndarray, cols: _Columns, served: np.ndarray, dep_cap: np.ndarray,
        out_len: np.ndarray, agg: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean wait of each tenant (s), chance of waiting per deployment, and each
        tenant's prefill time at its deployment's mean replica speed (s)."""
        sv = self.serving
        n_k = sums.shape[0]
        waits = np.zeros_like(served)
        chance = np.zeros((n_k, len(sv.deployments)))
        prefill = np.zeros_like(served)
        for d in range(len(sv.deployments)):
            mine = [t for t, tenant in enumerate(sv.tenants) if tenant.deployment == d]
            cap = dep_cap[:, d]
            slots = sums[:, cols.slots[d]]
            up = sums[:, cols.up[d]]
            lam = served[:, mine] / out_len[mine]  # requests per second
            with np.errstate(divide="ignore", invalid="ignore"):
                mean_out = np.where(lam.sum(1) > 0, served[:, mine].sum(1) / lam.sum(1), 1.0)
                rate = np.where(cap > 0, cap / mean_out, 1.0)  # c mu, requests per second
                rho = np.where((cap > 0)[:, None], served[:, mine] / cap[:, None], 0.0)
                mean_speed = np.where(up > 0, cap / (up * agg[d]), 1.0)
            c = erlang_c(np.rint(slots), rho.sum(1) * np.rint(slots))
            chance[:, d] = c
            levels = sorted({sv.tenants[t].spec.priority for t in mine}, reverse=True)
            tiers = [[i for i, t in enumerate(mine) if sv.tenants[t].spec.priority == lv]
                     for lv in levels]
            per_tier = priority_waits(c, rate, [rho[:, tier].sum(1) for tier in tiers])
            for tier, w in zip(tiers, per_tier, strict=True):
                for i in tier:
                    waits[:, mine[i]] = w
                    prefill[:, mine[i]] = sv.tenants[mine[i]].ttft_s / mean_speed
        return waits, chance, prefill

    def _series(
        self, edges: np.ndarray, dt: np.ndarray, horizon: float, bucket: float,
        demand: np.ndarray, served: np.ndarray, goodput: np.ndarray, waits: np.ndarray,
        served_req: np.ndarray, up: np.ndarray,
    ) -> list[MetricSeries]:
        """Per-bucket means: tokens/s demanded, served, within SLO and lost, and the mean
        wait per tenant; replicas serving per deployment."""
        n_b = max(1, math.ceil(horizon / bucket - 1e-9))
        b = np.minimum((edges / bucket + 1e-9).astype(np.int64), n_b - 1)
        length = np.bincount(b, weights=dt, minlength=n_b)

        def mean(values: np.ndarray, weights: np.ndarray = dt) -> tuple[float, ...]:
            num = np.bincount(b, weights=values * weights, minlength=n_b)
            den = np.bincount(b, weights=weights, minlength=n_b) if weights is not dt else length
            with np.errstate(divide="ignore", invalid="ignore"):
                return tuple(np.where(den > 0, num / den, math.nan).tolist())

        out = []
        for t, tenant in enumerate(self.serving.tenants):
            scope = f"hall.tenants.{tenant.name}"
            for name, values in (
                ("tokens_demanded_per_s", demand[:, t]), ("tokens_served_per_s", served[:, t]),
                ("goodput_per_s", goodput[:, t]),
                ("tokens_lost_per_s", demand[:, t] - served[:, t]),
            ):
                out.append(MetricSeries(scope, name, 0.0, bucket, horizon, mean(values)))
            out.append(MetricSeries(scope, "delay_mean_s", 0.0, bucket, horizon,
                                    mean(waits[:, t], served_req[:, t] * dt)))
        for d, dep in enumerate(self.serving.deployments):
            out.append(MetricSeries(f"hall.deployments.{dep.name}", "replicas_available", 0.0,
                                    bucket, horizon, mean(up[:, d])))
        return out


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else math.nan


class _Columns:
    """Columns of the per-interval sums: pool capacities (a pool per tenant, its
    reservation, then one shared pool per deployment), missing capacity per
    (deployment, cause), slots and replicas serving per deployment, and the capacity
    fast enough for each tenant's TPOT."""

    def __init__(self, n_t: int, n_d: int, n_c: int) -> None:
        self.n_t, self.n_d, self.n_c = n_t, n_d, n_c
        self.n_pools = n_t + n_d
        self.caps = list(range(self.n_pools))
        start = self.n_pools
        self.missing = list(range(start, start + n_d * n_c))
        start += n_d * n_c
        self.slots = list(range(start, start + n_d))
        start += n_d
        self.up = list(range(start, start + n_d))
        start += n_d
        self.fast = list(range(start, start + n_t))
        self.n = start + n_t

    def pool(self, t: int) -> int:
        return t

    def shared(self, d: int) -> int:
        return self.n_t + d

    def missing_col(self, d: np.ndarray, c: np.ndarray) -> np.ndarray:
        return self.n_pools + d * self.n_c + c


def _interval_sums(
    sv: Serving, cols: _Columns, causes: list[str], breaks: np.ndarray,
    t: np.ndarray, r: np.ndarray, speed: np.ndarray, cause: np.ndarray,
) -> np.ndarray:
    """(intervals, columns): each column's value in each interval, from the deltas each
    log entry makes to it (a replica's entry replaces its previous one)."""
    n_k = len(breaks) - 1
    keep = t < breaks[-1]
    t, r, speed, cause = t[keep], r[keep], speed[keep], cause[keep]
    prev = previous_entry(r)
    has_prev = prev >= 0
    p = np.maximum(prev, 0)
    old_speed = np.where(has_prev, speed[p], 0.0)
    cause_id = {c: i for i, c in enumerate(causes)}
    cid = np.array([cause_id.get(c, -1) for c in cause.tolist()], dtype=np.int64)
    old_cid = np.where(has_prev, cid[p], -1)
    dep = np.asarray(sv.replicas.deployment, dtype=np.int64)[r]
    agg = np.array([d.tokens_per_s for d in sv.deployments])[dep]
    batch = np.array([d.spec.batch for d in sv.deployments], dtype=float)[dep]
    holder = np.full(sv.replicas.n, -1, dtype=np.int64)
    for i, tenant in enumerate(sv.tenants):
        holder[list(tenant.reserved)] = i
    pool = np.where(holder[r] >= 0, holder[r], cols.n_t + dep)
    k = np.searchsorted(breaks, t, side="right") - 1
    on, was_on = (speed > 0).astype(float), (old_speed > 0).astype(float)
    parts = [
        (pool, agg * (speed - old_speed), np.ones_like(t, dtype=bool)),
        (cols.missing_col(dep, np.maximum(cid, 0)), agg * (1.0 - speed), cid >= 0),
        (cols.missing_col(dep, np.maximum(old_cid, 0)), -agg * (1.0 - old_speed), old_cid >= 0),
        (cols.slots[0] + dep, batch * (on - was_on), np.ones_like(t, dtype=bool)),
        (cols.up[0] + dep, on - was_on, np.ones_like(t, dtype=bool)),
    ]
    for i, tenant in enumerate(sv.tenants):
        d = tenant.deployment
        floor = 1.0 / (sv.deployments[d].user_tps * tenant.spec.tpot * SECONDS_PER_HOUR)
        fast, was_fast = speed * (speed >= floor), old_speed * (old_speed >= floor)
        parts.append((np.full_like(r, cols.fast[i]), agg * (fast - was_fast), dep == d))
    col = np.concatenate([c[m] for c, _, m in parts])
    weight = np.concatenate([w[m] for _, w, m in parts])
    at = np.concatenate([k[m] for _, _, m in parts])
    jumps = np.bincount(at * cols.n + col, weights=weight, minlength=n_k * cols.n)
    sums = np.cumsum(jumps.reshape(n_k, cols.n), axis=0)
    sums[np.abs(sums) < _DUST * np.max(np.abs(sums), axis=0, initial=0.0)] = 0.0
    return sums
