"""`Serving`: the deployments, tenants and replicas of one run, and what a fidelity returns.

Built once in `twin.engine.build` from the scenario's ``[serving]`` section:
each deployment's performance at full speed (`twin.compute.evaluate`), each
tenant's demand, SLOs and reserved replicas, and the `Replicas` mechanism on
the fleet. A fidelity (`fluid.FluidServing` by default, the request-level
model of `requests` for ``fidelity = "request"``) turns them into an
`Outcome`: per tenant tokens demanded, served and within SLO, delays, lost
tokens by cause and the reservation's cost, plus hourly series. The KPIs are
named from an `Outcome` in one place (`outcome_kpis`), so both fidelities
give the same names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import simpy

from twin.compute import PLACEMENTS, GpuNode, Hardware, Perf, Speculative, catalogue, evaluate
from twin.compute.hardware import for_system
from twin.fleet import Fleet
from twin.mechanisms.thermal import Thermal
from twin.records import MetricSeries
from twin.scenario import DeploymentSpec, Scenario, ServingSpec, TenantSpec
from twin.workloads.serving.replicas import Replicas

__all__ = [
    "Serving", "Deployment", "Tenant", "Outcome", "TenantOutcome", "Fidelity", "OVERLOAD",
    "outcome_kpis", "previous_entry",
]

OVERLOAD = "overload"  # demand beyond what the deployment admits at full speed
PROMPT_POINTS = 16  # equally likely prompt lengths standing for a tenant's prompt law
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class Deployment:
    """A model served by replicas `first` .. `first + replicas - 1` of `Replicas`."""

    name: str
    spec: DeploymentSpec
    perf: Perf  # one replica at full speed (scalars)
    first: int

    @property
    def tokens_per_s(self) -> float:
        """Output tokens per second of one replica at full speed (all its slots busy)."""
        return float(self.perf.aggregate_tps)

    @property
    def user_tps(self) -> float:
        """Output tokens per second of one sequence at full speed."""
        return float(self.perf.user_tps)

    @property
    def step_s(self) -> float:
        """One decode step of the full batch at full speed (the first token follows one)."""
        return float(self.perf.step_s)


@dataclass(frozen=True)
class Tenant:
    """A customer of `deployment` (its number): demand, lengths, SLOs and reservation."""

    name: str
    spec: TenantSpec
    deployment: int
    # prefill time at full speed of `PROMPT_POINTS` equally likely prompt lengths
    prefill_s: np.ndarray
    # replica-seconds at full speed one request takes: its mean prefill (which runs
    # alone on the replica) and its share of the batch's decode steps, output /
    # aggregate tokens per second
    work_s: float
    reserved: range  # replica numbers it holds (empty: none)

    @property
    def output_tokens(self) -> float:
        return self.spec.output.mean()


class Serving:
    """Deployments and tenants of a scenario, with their replicas placed on the fleet."""

    def __init__(
        self, env: simpy.Environment, scenario: Scenario, fleet: Fleet, thermal: Thermal,
        domains: np.ndarray | None = None,
    ) -> None:
        """`domains`: the failure domains placement keeps replicas apart in (the
        facility's, `twin.facility.failure_domains`; None: the hall's rows)."""
        spec = scenario.serving
        assert spec is not None
        self.spec: ServingSpec = spec
        self.env = env
        # what a replica's systems compute with: CS-3 wafers or GPU nodes
        self.hardware = for_system(scenario.system.kind)
        models = catalogue(spec.models)
        self.deployments: list[Deployment] = []
        first = 0
        for name, given in spec.deployments.items():
            perf = _perf(models, given, 1.0, self.hardware)
            self.deployments.append(Deployment(name, given, perf, first))
            first += given.replicas
        index = {d.name: i for i, d in enumerate(self.deployments)}
        taken = [0] * len(self.deployments)
        self.tenants: list[Tenant] = []
        for name, tenant in spec.tenants.items():
            d = index[tenant.deployment]
            dep = self.deployments[d]
            prompts = tenant.prompt.quantiles(PROMPT_POINTS)
            perf = _perf(models, dep.spec, prompts, self.hardware)
            prefill = prompts / perf.prefill_tps
            work = float(prefill.mean()) + tenant.output.mean() / dep.tokens_per_s
            held = range(dep.first + taken[d], dep.first + taken[d] + tenant.reserved)
            taken[d] += tenant.reserved
            self.tenants.append(Tenant(name, tenant, d, prefill, work, held))
        self.replicas = Replicas(
            env, fleet, thermal, PLACEMENTS[spec.placement],
            [(d.name, d.spec.replicas, int(d.perf.systems)) for d in self.deployments],
            spec.load_time, domains,
        )


def _perf(models: dict, dep: DeploymentSpec, prompt: object,  # type: ignore[type-arg]
          hardware: Hardware | GpuNode) -> Perf:
    speculative = None
    if dep.speculative is not None:
        s = dep.speculative
        speculative = Speculative(models[s.draft], s.tokens, s.acceptance)
    return evaluate(
        models[dep.model], bits=dep.bits, kv_bits=dep.kv_bits, batch=dep.batch,
        context=dep.context, prompt=prompt, speculative=speculative, systems=dep.systems,
        hardware=hardware,
    )


@dataclass(frozen=True)
class TenantOutcome:
    """What one tenant got over the run (tokens are output tokens)."""

    demanded: float
    served: float
    goodput: float  # served within both SLOs
    ttft_attainment: float  # share of served tokens whose request met the TTFT SLO
    tpot_attainment: float  # share of served tokens produced within the TPOT SLO
    delay_mean_s: float  # mean queueing wait of its served requests
    delay_p99_s: float  # 99th percentile of that wait
    lost: dict[str, float]  # demand not served, by cause (OVERLOAD included)
    reservation_cost: float  # tokens it would have been served without any reservation, less served


@dataclass(frozen=True)
class Outcome:
    """What a fidelity returns: per tenant totals and hourly series."""

    tenants: dict[str, TenantOutcome]
    series: list[MetricSeries] = field(default_factory=list)
    kpis: dict[str, float] = field(default_factory=dict)  # a fidelity's own (request latency)


class Fidelity(Protocol):
    """A serving model: built on a `Serving` before the run, asked for its `Outcome`
    after it (series in buckets of `bucket` hours)."""

    def outcome(self, horizon: float, bucket: float) -> Outcome: ...


def outcome_kpis(
    serving: Serving, outcome: Outcome, causes: list[str], horizon: float, it_energy_kwh: float
) -> dict[str, float]:
    """The ``serving.*`` KPIs of a run (docs/kpis.md): every tenant, every cause in
    `causes` and `OVERLOAD`, zeros included."""
    k: dict[str, float] = {}
    served_total = 0.0
    for name, t in outcome.tenants.items():
        k[f"serving.tokens.demanded.{name}"] = t.demanded
        k[f"serving.tokens.served.{name}"] = t.served
        k[f"serving.tokens.goodput.{name}"] = t.goodput
        for cause in sorted({*causes, *t.lost} - {OVERLOAD}) + [OVERLOAD]:
            k[f"serving.tokens.lost.{name}.{cause}"] = t.lost.get(cause, 0.0)
        k[f"serving.slo_attainment.{name}"] = t.goodput / t.served if t.served > 0 else math.nan
        k[f"serving.ttft_attainment.{name}"] = t.ttft_attainment
        k[f"serving.tpot_attainment.{name}"] = t.tpot_attainment
        k[f"serving.delay_mean_s.{name}"] = t.delay_mean_s
        k[f"serving.delay_p99_s.{name}"] = t.delay_p99_s
        k[f"serving.reservation_cost.{name}"] = t.reservation_cost
        served_total += t.served
    up = replicas_up_hours(serving, horizon)
    for d, dep in enumerate(serving.deployments):
        k[f"serving.replicas_available.{dep.name}"] = up[d] / horizon
    k.update(outcome.kpis)
    k["serving.replica_downs"] = float(serving.replicas.downs)
    k["serving.failovers"] = float(serving.replicas.failovers)
    mtok = served_total / 1e6
    k["serving.energy_kwh_per_mtok"] = it_energy_kwh / mtok if mtok > 0 else math.nan
    return k


def replicas_up_hours(serving: Serving, horizon: float) -> np.ndarray:
    """Replica-hours serving (speed above 0) of each deployment over the run."""
    t, r, speed, _ = serving.replicas.log()
    up = (speed > 0).astype(float)
    prev = previous_entry(r)
    delta = up - np.where(prev >= 0, up[np.maximum(prev, 0)], 0.0)
    dep = np.asarray(serving.replicas.deployment, dtype=np.int64)[r]
    keep = t < horizon
    hours = np.bincount(dep[keep], weights=(delta * (horizon - t))[keep],
                        minlength=len(serving.deployments))
    return hours


def previous_entry(r: np.ndarray) -> np.ndarray:
    """For each log entry, the index of the same replica's entry before it (-1: none)."""
    order = np.lexsort((np.arange(len(r)), r))
    prev = np.full(len(r), -1, dtype=np.int64)
    same = r[order][1:] == r[order][:-1]
    prev[order[1:][same]] = order[:-1][same]
    return prev
