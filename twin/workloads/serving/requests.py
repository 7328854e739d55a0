"""Request-level serving (``serving.fidelity = "request"``): a run's requests one by one.

The alternative to the fluid model (`fluid.FluidServing`) for short
horizons. `RequestServing` builds the continuous-batching kernel
(`batching.RequestServer`) on a run's `core.Serving`: one `BatchSpeed` per
deployment from `twin.compute`, one flow per tenant; it tells the kernel of
every change of a replica's speed (a `Replicas` listener, with the cause of
an outage) and of every tenant's rate (on the hour, `demand.rate_at`), and
after the run turns the requests into the same `core.Outcome` the fluid
model gives, plus latency percentiles the fluid model cannot give.

How the outcome is counted (docs/serving.md, *Request-level serving*):
demanded is the output tokens of every request that arrived; served the
tokens made by the horizon (a request in flight counts what it made), less
those wasted by a replica failure; goodput the tokens made by requests
that met both SLOs (so far, for a request in flight at the horizon: its
first token in time and its time per token until then, so a request cut
by the horizon is no miss); lost the tokens turned away by admission
(overload) and those wasted, by the cause of the outage that wasted them (a retried
request is served again later, so lost is not demanded - served: what is
still queued or decoding at the horizon is neither). The TTFT attainment
weighs each request's tokens by whether its first token met the SLO; the
TPOT attainment by whether its time per output token so far did. Delays
are queueing waits (arrival to prefill start) of the requests that started.
The reservation's cost needs a run without it: NaN here.
"""

from __future__ import annotations

import math

import numpy as np
import simpy

from twin.compute import Speculative, catalogue
from twin.metrics import bucket_edges, bucket_integrals
from twin.records import MetricSeries
from twin.rng import Streams
from twin.workloads.serving.batching import BatchSpeed, Flow, RequestServer
from twin.workloads.serving.core import (
    OVERLOAD,
    SECONDS_PER_HOUR,
    Outcome,
    Serving,
    TenantOutcome,
    previous_entry,
)
from twin.workloads.serving.demand import rate_at

__all__ = ["RequestServing", "PERCENTILES"]

PERCENTILES = (50, 90, 99)


class RequestServing:
    """The request-level model of a run's serving: built before the run, read after."""

    def __init__(self, env: simpy.Environment, serving: Serving, streams: Streams) -> None:
        self.env, self.serving = env, serving
        spec = serving.spec
        models = catalogue(spec.models)
        speeds = []
        for dep in serving.deployments:
            given = dep.spec
            s = given.speculative
            draft = None if s is None else Speculative(models[s.draft], s.tokens, s.acceptance)
            speeds.append(BatchSpeed.of(
                models[given.model], bits=given.bits, kv_bits=given.kv_bits, batch=given.batch,
                context=given.context, speculative=draft, systems=int(dep.perf.systems),
                hardware=serving.hardware,
            ))
        flows = [
            Flow(t.name, t.deployment, t.spec.priority, t.spec.prompt.sample,
                 t.spec.output.sample, tuple(t.reserved))
            for t in serving.tenants
        ]
        replicas = serving.replicas
        self.server = RequestServer(
            env, speeds, replicas.deployment, flows, streams,
            admission=spec.admission, lend=spec.lend_reserved,
        )
        for r in range(replicas.n):
            self._replica_changed(r)
        replicas.listeners.append(self._replica_changed)
        env.process(self._demand())

    def _replica_changed(self, r: int) -> None:
        replicas = self.serving.replicas
        self.server.set_speed(r, replicas.speed[r], replicas.cause[r])

    def _demand(self):  # type: ignore[no-untyped-def]
        """Each tenant's rate, hour by hour (`demand.rate_at` is constant within one)."""
        tenants = self.serving.tenants
        hour = 0
        while True:
            for f, tenant in enumerate(tenants):
                self.server.set_rate(f, rate_at(tenant.spec, hour) * SECONDS_PER_HOUR)
            if all(t.spec.profile == "flat" for t in tenants):
                return
            hour += 1
            yield self.env.timeout(hour - self.env.now)

    # -- after the run -----------------------------------------------------------------
    def outcome(self, horizon: float, bucket: float) -> Outcome:
        """Per tenant totals (see the module) and hourly series, as of `horizon`."""
        sv, srv = self.serving, self.server
        r = _Requests(srv)
        results = {}
        for f, tenant in enumerate(sv.tenants):
            mine = r.flow == f
            served = float(r.made[mine].sum())
            ttft_ok = r.ttft <= tenant.spec.ttft * SECONDS_PER_HOUR
            tpot_ok = r.tpot <= tenant.spec.tpot * SECONDS_PER_HOUR
            good = mine & ttft_ok & tpot_ok
            waits = r.wait[mine & ~np.isnan(r.wait)]
            lost = dict(srv.wasted[f])
            lost[OVERLOAD] = float(r.output[srv.rejected[f]].sum())
            results[tenant.name] = TenantOutcome(
                demanded=float(r.output[mine].sum()),
                served=served,
                goodput=float(r.made[good].sum()),
                ttft_attainment=_ratio(float(r.made[mine & ttft_ok].sum()), served),
                tpot_attainment=_ratio(float(r.made[mine & tpot_ok].sum()), served),
                delay_mean_s=float(waits.mean()) if waits.size else math.nan,
                delay_p99_s=float(np.percentile(waits, 99)) if waits.size else math.nan,
                lost=lost,
                reservation_cost=math.nan,
            )
        return Outcome(results, self._series(r, horizon, bucket), self._latency_kpis(r))

    def _latency_kpis(self, r: _Requests) -> dict[str, float]:
        """TTFT and TPOT percentiles per tenant (seconds), and its requests (arrived),
        completed, turned away and retried: ``serving.ttft_p99_s.<tenant>``,
        ``serving.requests_completed.<tenant>`` etc."""
        k: dict[str, float] = {}
        for f, tenant in enumerate(self.serving.tenants):
            mine = r.flow == f
            ttft = r.ttft[mine & ~np.isnan(r.ttft)]
            tpot = r.tpot[mine & r.done & (r.output > 1.0)]
            for name, values in (("ttft", ttft), ("tpot", tpot)):
                points = np.percentile(values, PERCENTILES) if values.size else [math.nan] * 3
                for p, v in zip(PERCENTILES, points, strict=True):
                    k[f"serving.{name}_p{p}_s.{tenant.name}"] = float(v)
            k[f"serving.requests.{tenant.name}"] = float(mine.sum())
            k[f"serving.requests_completed.{tenant.name}"] = float((mine & r.done).sum())
            k[f"serving.requests_turned_away.{tenant.name}"] = float(
                len(self.server.rejected[f]))
            k[f"serving.requests_retried.{tenant.name}"] = float(self.server.retried[f])
        return k

    def _series(self, r: _Requests, horizon: float, bucket: float) -> list[MetricSeries]:
        """Per-bucket means like the fluid model's: tokens/s demanded (by arrival),
        served and within SLO (by the end of the request, or the horizon), turned away
        (by arrival), the mean wait (by start); replicas serving per deployment."""
        edges = bucket_edges(horizon, bucket)
        seconds = np.diff(edges) * SECONDS_PER_HOUR
        n_b = len(seconds)

        def at(t: np.ndarray) -> np.ndarray:
            return np.clip(np.searchsorted(edges, t, side="right") - 1, 0, n_b - 1)

        arrival_b, start_b = at(r.arrived), at(np.nan_to_num(r.started, nan=horizon))
        end_b = at(np.where(r.done, r.finished, horizon))
        turned = np.zeros(len(r.output), dtype=bool)
        out = []
        for f, tenant in enumerate(self.serving.tenants):
            mine = r.flow == f
            turned[:] = False
            turned[self.server.rejected[f]] = True
            good = mine & (r.ttft <= tenant.spec.ttft * SECONDS_PER_HOUR) & (
                r.tpot <= tenant.spec.tpot * SECONDS_PER_HOUR)
            started = mine & ~np.isnan(r.wait)
            sums = {
                "tokens_demanded_per_s": np.bincount(arrival_b[mine], r.output[mine], n_b),
                "tokens_served_per_s": np.bincount(end_b[mine], r.made[mine], n_b),
                "goodput_per_s": np.bincount(end_b[good], r.made[good], n_b),
                "tokens_lost_per_s": np.bincount(arrival_b[turned], r.output[turned], n_b),
            }
            scope = f"hall.tenants.{tenant.name}"
            for name, total in sums.items():
                out.append(MetricSeries(scope, name, 0.0, bucket, horizon,
                                        tuple((total / seconds).tolist())))
            count = np.bincount(start_b[started], minlength=n_b)
            wait = np.bincount(start_b[started], r.wait[started], n_b)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean_wait = np.where(count > 0, wait / count, math.nan)
            out.append(MetricSeries(scope, "delay_mean_s", 0.0, bucket, horizon,
                                    tuple(mean_wait.tolist())))
        t, rep, speed, _ = self.serving.replicas.log()
        on = (speed > 0).astype(float)
        prev = previous_entry(rep)
        delta = on - np.where(prev >= 0, on[np.maximum(prev, 0)], 0.0)
        dep = np.asarray(self.serving.replicas.deployment, dtype=np.int64)[rep]
        up = bucket_integrals(t, dep, delta, len(self.serving.deployments), edges)
        for d, deployment in enumerate(self.serving.deployments):
            out.append(MetricSeries(f"hall.deployments.{deployment.name}", "replicas_available",
                                    0.0, bucket, horizon, tuple((up[d] / np.diff(edges)).tolist())))
        return out


class _Requests:
    """The kernel's per-request arrays as numpy, with TTFT, TPOT (so far) and wait in
    seconds (NaN where there is none yet)."""

    def __init__(self, srv: RequestServer) -> None:
        now = srv.env.now
        self.flow = np.frombuffer(srv.flow, dtype=np.int64)
        self.arrived = np.frombuffer(srv.arrived)
        self.output = np.frombuffer(srv.output)
        self.started = np.frombuffer(srv.started)
        self.finished = np.frombuffer(srv.finished)
        self.done = ~np.isnan(self.finished)
        self.made = srv.made()
        first = srv.first_tokens()
        self.ttft = (first - self.arrived) * SECONDS_PER_HOUR
        self.wait = (self.started - self.arrived) * SECONDS_PER_HOUR
        last = np.where(self.done, self.finished, now)
        with np.errstate(invalid="ignore", divide="ignore"):
            # per output token after the first; a request of one token meets any TPOT
            per_token = (last - first) * SECONDS_PER_HOUR / (self.made - 1.0)
            self.tpot = np.where(self.made > 1.0, per_token,
                                 np.where(np.isnan(first), math.nan, 0.0))


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan
