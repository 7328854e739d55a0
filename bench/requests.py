"""Request-level serving speed: requests simulated per wall second on one core.

Role: the `requests` section of `python -m bench` (issue 9's target: at least
100,000 requests per wall second). Two measurements, each the best and the
median of a few runs:

- `run`: the shipped serving hall (`scenarios/serving.toml`: 1,020 systems,
  three deployments, three tenants, ~20,000 requests a second at night)
  with `fidelity = "request"`, through `twin.engine.simulate` like `twin run
  --fidelity request --no-store`: the hall's own mechanisms, the requests and
  the outcome (percentiles included), start to end, for a horizon that
  brings about `requests` requests;
- `kernel`: the continuous-batching kernel alone (`batching.RequestServer`),
  one deployment of Llama 3.3 70B at 16 bit, batch 64, 32 replicas, Poisson
  arrivals at 80 % of its admitted work, one replica slowed to half speed and
  one down for a tenth of the run: what a request costs without the hall.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import simpy

from twin.compute import catalogue
from twin.engine import simulate
from twin.rng import Streams
from twin.scenario import load_scenario
from twin.workloads.serving.batching import BatchSpeed, Flow, RequestServer
from twin.workloads.serving.core import SECONDS_PER_HOUR as HOUR_S
from twin.workloads.serving.lengths import ExponentialLengths, LognormalLengths

__all__ = ["RequestSpeed", "scenario_speed", "kernel_speed"]

SERVING_TOML = Path(__file__).resolve().parent.parent / "scenarios" / "serving.toml"
MODEL, BATCH, CONTEXT, REPLICAS, LOAD = "llama-3.3-70b", 64, 8192, 32, 0.8
PROMPT = LognormalLengths(median=1000.0, sigma=0.8)
OUTPUT = ExponentialLengths(mean=300.0)
TENANTS = ("chat", "code", "batch")


@dataclass(frozen=True)
class RequestSpeed:
    """Wall and CPU seconds of runs of about `requests` requests each (CPU: what one
    core spent, the wall time of a machine no one else uses)."""

    what: str
    requests: int
    walls: tuple[float, ...]
    cpus: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.walls)

    @property
    def median(self) -> float:
        return float(np.median(self.walls))

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "best_s": self.best, "median_s": self.median,
                "requests_per_s_best": self.requests / self.best,
                "requests_per_s_median": self.requests / self.median,
                "requests_per_cpu_s_best": self.requests / min(self.cpus)}


def scenario_speed(requests: int = 1_000_000, repeats: int = 3) -> RequestSpeed:
    """The serving hall at request fidelity, end to end, for ~`requests` requests."""
    scenario = load_scenario(SERVING_TOML, ["serving.fidelity=request"])
    assert scenario.serving is not None
    per_s = sum(t.requests_per_s for t in scenario.serving.tenants.values())
    hours = requests / per_s / HOUR_S
    walls, cpus, counts = [], [], []
    for _ in range(repeats):
        started, cpu = time.perf_counter(), time.process_time()
        result = simulate(scenario, until=hours)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
        counts.append(int(sum(v for k, v in result.kpis.items()
                              if k.startswith("serving.requests.") and k.count(".") == 2)))
    return RequestSpeed("serving.toml, request fidelity, end to end", counts[0], tuple(walls),
                        tuple(cpus))


def kernel_speed(requests: int = 1_000_000, repeats: int = 3, seed: int = 1) -> RequestSpeed:
    """The kernel alone on one deployment (see the module) for ~`requests` requests."""
    speed = BatchSpeed.of(catalogue()[MODEL], bits=16, kv_bits=None, batch=BATCH,
                          context=CONTEXT, speculative=None, systems=None)
    prompts = PROMPT.sample(np.random.default_rng(seed), 100_000).astype(float)
    work_s = float(speed.prefill_s(prompts).mean()) + (
        OUTPUT.mean() * speed.step_s[-1] / speed.tokens_per_step[-1] / BATCH)
    rate_h = LOAD * 0.95 * REPLICAS / work_s * HOUR_S
    hours = requests / rate_h
    runs = [_kernel_run(speed, hours, rate_h / len(TENANTS), seed) for _ in range(repeats)]
    return RequestSpeed("kernel alone, 32 replicas of batch 64", runs[0][0],
                        tuple(w for _, w, _ in runs), tuple(c for _, _, c in runs))


def _kernel_run(speed: BatchSpeed, hours: float, per_tenant_h: float,
                seed: int) -> tuple[int, float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    env = simpy.Environment()
    flows = [Flow(t, 0, 0, PROMPT.sample, OUTPUT.sample) for t in TENANTS]
    server = RequestServer(env, [speed], [0] * REPLICAS, flows, Streams(seed), admission=0.95)
    for f in range(len(flows)):
        server.set_rate(f, per_tenant_h)

    def troubles():  # type: ignore[no-untyped-def]
        yield env.timeout(0.3 * hours)
        server.set_speed(0, 0.5)
        server.set_speed(1, 0.0, "psu")
        yield env.timeout(0.1 * hours)
        server.set_speed(0, 1.0)
        server.set_speed(1, 1.0)

    env.process(troubles())
    env.run(until=hours)
    server.first_tokens()
    server.made()
    return len(server.arrived), time.perf_counter() - started, time.process_time() - cpu
