"""Fluid serving: tokens as a flow, allocated exactly between changes (docs/serving.md).

Between two changes (a replica's speed or cause, an hour of demand, a metric
bucket's edge) every rate is constant. After the run the replicas' log is
turned into per-interval sums (each pool's capacity in replicas' worth of
speed, missing capacity by cause, busy slots, capacity fast enough for each
tenant's TPOT) by cumulating its deltas, and every interval is solved at once
with numpy. Work is counted in replica-seconds at full speed: a request takes
its prefill (alone on the replica) plus its share of the batch's decode
steps, output / aggregate tokens per second (`core.Tenant.work_s`).

- served: `allocation.allocate` of the admitted capacity (``admission`` x
  capacity) to the tenants' work asked, turned into output tokens;
- lost: the same allocation with every replica at full speed serves
  ``full``; ``demand - full`` is overload, ``full - served`` is lost to
  failures, split among causes in proportion to the deployment's capacity
  missing for each cause in that interval (a replica down: all of it, to
  its outage's trigger; slowed: 1 - speed, to the throttle's blame or
  ``cores``);
- reservation cost: the allocation with no reservation, less served;
- delays: `queueing` per deployment (servers = slots of its serving
  replicas, utilisation = work served / capacity), Cobham's priority waits;
  TTFT met when wait + prefill + one decode step at the replicas' mean speed
  is within the SLO, averaged over the tenant's prompt lengths; TPOT met for
  the tokens made on replicas fast enough; goodput = served x P(TTFT met) x
  P(TPOT met).

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
        t_log, r_log, speed, cause = sv.replicas.log()
        edges = np.unique(np.concatenate([
            np.arange(math.ceil(horizon)), np.arange(0.0, horizon, bucket), t_log[t_log < horizon],
        ]))
        dt = np.diff(np.append(edges, horizon)) * SECONDS_PER_HOUR  # seconds
        causes = sv.replicas.causes[1:]  # number i + 1 in the log
        cols = _Columns(len(tenants), len(deps), len(causes))
        sums = _interval_sums(sv, cols, np.append(edges, horizon), t_log, r_log, speed, cause)
        pools = Pools(
            deployment=[t.deployment for t in tenants],
            holds=[cols.pool(i) if len(t.reserved) else -1 for i, t in enumerate(tenants)],
            priority=[t.spec.priority for t in tenants],
            shared=[cols.shared(d) for d in range(len(deps))],
        )
        rates = np.stack([hourly_rates(t.spec, math.ceil(horizon)) for t in tenants], axis=1)
        requests = rates[np.floor(edges).astype(np.int64)]  # (intervals, tenants) per second
        out_len = np.array([t.output_tokens for t in tenants])
        work = np.array([t.work_s for t in tenants])  # replica-seconds per request
        demand = requests * out_len  # output tokens per second
        busy, served, full, unreserved = self._allocations(
            requests * work, demand, sums[:, cols.caps], pools)
        pool_dep = np.array([*pools.deployment, *range(len(deps))])
        dep_cap = np.stack(
            [sums[:, cols.caps][:, pool_dep == d].sum(1) for d in range(len(deps))], axis=1)
        waits, chance, mean_speed = self._queues(sums, cols, busy, dep_cap, work)
        ttft_ok = self._ttft_met(waits, chance, mean_speed)
        dep_of = np.array(pools.deployment)
        with np.errstate(divide="ignore", invalid="ignore"):
            tpot_ok = np.where(dep_cap[:, dep_of] > 0,
                               sums[:, cols.fast] / dep_cap[:, dep_of], 0.0)
        goodput = served * ttft_ok * np.clip(tpot_ok, 0.0, 1.0)
        missing = sums[:, cols.missing].reshape(len(edges), len(deps), len(causes))
        total_missing = missing.sum(axis=2, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            split = np.where(total_missing > 0, missing / total_missing, 0.0)
        served_req = busy / work
        results = {}
        for t, tenant in enumerate(tenants):
            d = tenant.deployment

            def total(rate: np.ndarray) -> float:
                return float(np.sum(rate * dt))

            lost = {c: total(np.maximum(full[:, t] - served[:, t], 0.0) * split[:, d, i])
                    for i, c in enumerate(causes)}
            lost[OVERLOAD] = total(np.maximum(demand[:, t] - full[:, t], 0.0))
            weight = served_req[:, t] * dt
            s_tok = total(served[:, t])
            results[tenant.name] = TenantOutcome(
                demanded=total(demand[:, t]),
                served=s_tok,
                goodput=total(goodput[:, t]),
                ttft_attainment=_ratio(total(served[:, t] * ttft_ok[:, t]), s_tok),
                tpot_attainment=_ratio(total(served[:, t] * np.clip(tpot_ok[:, t], 0, 1)), s_tok),
                delay_mean_s=_ratio(np.sum(waits[:, t] * weight), np.sum(weight)),
                delay_p99_s=mixture_quantile(0.99, weight, chance[:, d], waits[:, t]),
                lost=lost,
                reservation_cost=total(unreserved[:, t] - served[:, t]),
            )
        series = self._series(edges, dt, horizon, bucket, demand, served, goodput, waits,
                              served_req, sums[:, cols.up])
        return Outcome(results, series)

    def _allocations(
        self, asked: np.ndarray, demand: np.ndarray, cap: np.ndarray, pools: Pools,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Work served (replicas kept busy), and output tokens/s served, served with every
        replica at full speed, and served with no reservation, per interval and tenant.
        `asked`: work asked; `demand`: the output tokens/s it makes; `cap`: each pool's
        capacity (replicas' worth of speed). Tokens are the demand times the share of
        the work served: all of it serves the demand exactly (work x tokens per unit of
        work would round a hair above it)."""

        def tokens(work: np.ndarray) -> np.ndarray:
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(asked > 0, demand * (work / asked), 0.0)

        sv = self.serving
        a, lend = sv.spec.admission, sv.spec.lend_reserved
        full_cap = np.zeros(cap.shape[1])  # replicas in each pool
        for t, tenant in enumerate(sv.tenants):
            if pools.holds[t] >= 0:
                full_cap[pools.holds[t]] = len(tenant.reserved)
        for d, dep in enumerate(sv.deployments):
            full_cap[pools.shared[d]] = dep.spec.replicas - sum(
                len(t.reserved) for t in sv.tenants if t.deployment == d)
        busy = allocate(asked, a * cap, pools, lend)
        full = allocate(asked, np.broadcast_to(a * full_cap, cap.shape), pools, lend)
        if not any(h >= 0 for h in pools.holds):
            return busy, tokens(busy), tokens(full), tokens(busy)  # nothing to dissolve
        merged = cap.copy()
        for t, pool in enumerate(pools.holds):
            if pool >= 0:
                merged[:, pools.shared[pools.deployment[t]]] += merged[:, pool]
                merged[:, pool] = 0.0
        unreserved = allocate(asked, a * merged, pools.merged(), lend)
        return busy, tokens(busy), tokens(full), tokens(unreserved)

    def _ttft_met(
        self, waits: np.ndarray, chance: np.ndarray, mean_speed: np.ndarray
    ) -> np.ndarray:
        """Share of each tenant's requests whose first token met its SLO, per interval:
        wait + prefill + one decode step at the replicas' mean speed, over its prompts."""
        sv = self.serving
        ttft_ok = np.empty_like(waits)
        for t, tenant in enumerate(sv.tenants):
            d = tenant.deployment
            first = np.sort(tenant.prefill_s + sv.deployments[d].step_s)  # at full speed
            slo = tenant.spec.ttft * SECONDS_PER_HOUR
            # where no request waits, the prompts late are those whose first token takes
            # longer than the SLO; where some wait, the wait's tail for each prompt
            late = 1.0 - np.searchsorted(first, slo * mean_speed[:, d], side="right") / len(first)
            waiting = chance[:, d] > 0
            x = slo - first / mean_speed[waiting, d, None]
            late[waiting] = wait_exceeds(
                x, chance[waiting, d, None], waits[waiting, t, None]).mean(axis=1)
            ttft_ok[:, t] = 1.0 - late
        return ttft_ok

    def _queues(
        self, sums: np.ndarray, cols: _Columns, busy: np.ndarray, dep_cap: np.ndarray,
        work: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean wait of each tenant (s) and, per deployment, the chance of waiting and
        the serving replicas' mean speed (1 where none serves)."""
        sv = self.serving
        n_k = sums.shape[0]
        waits = np.zeros_like(busy)
        chance = np.zeros((n_k, len(sv.deployments)))
        mean_speed = np.ones((n_k, len(sv.deployments)))
        for d in range(len(sv.deployments)):
            mine = [t for t, tenant in enumerate(sv.tenants) if tenant.deployment == d]
            cap = dep_cap[:, d]
            slots = sums[:, cols.slots[d]]
            up = sums[:, cols.up[d]]
            lam = busy[:, mine] / work[mine]  # requests per second
            with np.errstate(divide="ignore", invalid="ignore"):
                mean_work = np.where(lam.sum(1) > 0, busy[:, mine].sum(1) / lam.sum(1), 1.0)
                rate = np.where(cap > 0, cap / mean_work, 1.0)  # c mu, requests per second
                rho = np.where((cap > 0)[:, None], busy[:, mine] / cap[:, None], 0.0)
                mean_speed[:, d] = np.where(up > 0, cap / up, 1.0)
            c = erlang_c(np.rint(slots), rho.sum(1) * np.rint(slots))
            chance[:, d] = c
            levels = sorted({sv.tenants[t].spec.priority for t in mine}, reverse=True)
            tiers = [[i for i, t in enumerate(mine) if sv.tenants[t].spec.priority == lv]
                     for lv in levels]
            per_tier = priority_waits(c, rate, [rho[:, tier].sum(1) for tier in tiers])
            for tier, w in zip(tiers, per_tier, strict=True):
                for i in tier:
                    waits[:, mine[i]] = w
        return waits, chance, mean_speed

    def _series(
        self, edges: np.ndarray, dt: np.ndarray, horizon: float, bucket: float,
        demand: np.ndarray, served: np.ndarray, goodput: np.ndarray, waits: np.ndarray,
        served_req: np.ndarray, up: np.ndarray,
    ) -> list[MetricSeries]:
        """Per-bucket means: tokens/s demanded, served, within SLO and lost, and the mean
        wait per tenant; replicas serving per deployment."""
        n_b = max(1, math.ceil(horizon / bucket - 1e-9))
        b = np.minimum((edges / bucket + 1e-9).astype(np.int64), n_b - 1)
        starts = np.searchsorted(b, np.arange(n_b))  # every bucket's start is an edge here
        length = np.add.reduceat(dt, starts)
        timed = np.concatenate([demand, served, goodput, demand - served, up], axis=1)
        requests = served_req * dt[:, None]  # the weights of the mean wait
        waited = np.add.reduceat(waits * requests, starts, axis=0)
        counted = np.add.reduceat(requests, starts, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            means = np.concatenate([
                np.add.reduceat(timed * dt[:, None], starts, axis=0) / length[:, None],
                np.where(counted > 0, waited / counted, math.nan),
            ], axis=1).T.tolist()  # one list per series: 4 per tenant, 1 per deployment, waits
        n_t, n_d = len(self.serving.tenants), up.shape[1]
        names = ("tokens_demanded_per_s", "tokens_served_per_s", "goodput_per_s",
                 "tokens_lost_per_s")
        out = []
        for t, tenant in enumerate(self.serving.tenants):
            scope = f"hall.tenants.{tenant.name}"
            for i, name in enumerate(names):
                row = tuple(means[i * n_t + t])
                out.append(MetricSeries(scope, name, 0.0, bucket, horizon, row))
            out.append(MetricSeries(scope, "delay_mean_s", 0.0, bucket, horizon,
                                    tuple(means[4 * n_t + n_d + t])))
        for d, dep in enumerate(self.serving.deployments):
            out.append(MetricSeries(f"hall.deployments.{dep.name}", "replicas_available", 0.0,
                                    bucket, horizon, tuple(means[4 * n_t + d])))
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
    sv: Serving, cols: _Columns, breaks: np.ndarray,
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
    cid = cause - 1  # -1: full speed, no cause
    old_cid = np.where(has_prev, cid[p], -1)
    dep = np.asarray(sv.replicas.deployment, dtype=np.int64)[r]
    batch = np.array([d.spec.batch for d in sv.deployments], dtype=float)[dep]
    holder = np.full(sv.replicas.n, -1, dtype=np.int64)
    for i, tenant in enumerate(sv.tenants):
        holder[list(tenant.reserved)] = i
    pool = np.where(holder[r] >= 0, holder[r], cols.n_t + dep)
    k = np.searchsorted(breaks, t, side="right") - 1
    on, was_on = (speed > 0).astype(float), (old_speed > 0).astype(float)
    parts = [
        (pool, speed - old_speed, np.ones_like(t, dtype=bool)),
        (cols.missing_col(dep, np.maximum(cid, 0)), 1.0 - speed, cid >= 0),
        (cols.missing_col(dep, np.maximum(old_cid, 0)), old_speed - 1.0, old_cid >= 0),
        (cols.slots[0] + dep, batch * (on - was_on), np.ones_like(t, dtype=bool)),
        (cols.up[0] + dep, on - was_on, np.ones_like(t, dtype=bool)),
    ]
    for i, tenant in enumerate(sv.tenants):
        d = tenant.deployment
        floor = 1.0 / (sv.deployments[d].user_tps * tenant.spec.tpot * SECONDS_PER_HOUR)
        fast, was_fast = speed * (speed >= floor), old_speed * (old_speed >= floor)
        parts.append((np.full_like(r, cols.fast[i]), fast - was_fast, dep == d))
    col = np.concatenate([c[m] for c, _, m in parts])
    weight = np.concatenate([w[m] for _, w, m in parts])
    at = np.concatenate([k[m] for _, _, m in parts])
    jumps = np.bincount(at * cols.n + col, weights=weight, minlength=n_k * cols.n)
    sums = np.cumsum(jumps.reshape(n_k, cols.n), axis=0)
    caps = sums[:, cols.caps]  # slots and replicas up are sums of integers: exact
    caps[np.abs(caps) < _DUST * np.max(np.abs(caps), axis=0, initial=0.0)] = 0.0
    sums[:, cols.caps] = caps
    return sums
