"""Request-level serving speed: requests simulated per wall second on one core.

Role: the `requests` section of `python -m bench` (issue 9's target: at least
100,000 requests per wall second). It drives `RequestServer` alone, with no
hall around it, so the figure is the request model's own cost: a Llama 3.3
70B deployment at 16 bit (4 systems a replica, `twin.compute`), batch 64,
8k context, on 32 replicas, three tenants with the serving section's default
lengths (prompts lognormal, median 1,000 tokens, sigma 0.8; outputs
exponential, mean 300), Poisson arrivals at 80 % of the deployment's
capacity, and one replica slowed to half speed and one down for a tenth of
the run each, so the failure paths are timed too. Wall time covers building
the server, the run and the per-tenant summary (percentiles included).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import simpy

from twin.compute import catalogue
from twin.rng import Streams
from twin.workloads.serving.lengths import ExponentialLengths, LognormalLengths
from twin.workloads.serving.requests import HOUR_S, BatchSpeed, Flow, RequestServer

__all__ = ["RequestSpeed", "request_speed"]

MODEL, BATCH, CONTEXT, REPLICAS, LOAD = "llama-3.3-70b", 64, 8192, 32, 0.8
PROMPT = LognormalLengths(median=1000.0, sigma=0.8)
OUTPUT = ExponentialLengths(mean=300.0)
TENANTS = ("chat", "code", "batch")


@dataclass(frozen=True)
class RequestSpeed:
    """Wall seconds of `repeats` runs of the same `requests` (about) and their rate."""

    requests: int
    completed: int
    replicas: int
    batch: int
    load: float
    walls: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.walls)

    @property
    def median(self) -> float:
        return float(np.median(self.walls))

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "best_s": self.best, "median_s": self.median,
                "requests_per_s_best": self.requests / self.best,
                "requests_per_s_median": self.requests / self.median}


def capacity_per_h(speed: BatchSpeed, rng: np.random.Generator) -> float:
    """Requests per hour one replica finishes with its batch full: each takes its
    prefill alone and 1 / batch of the steps that make its output."""
    prompts = PROMPT.sample(rng, 100_000).astype(float)
    prefill_s = float(speed.prefill_s(prompts).mean())
    decode_s = OUTPUT.mean() * speed.step_s[-1] / speed.tokens_per_step[-1] / speed.batch
    return HOUR_S / (prefill_s + decode_s)


def _run(speed: BatchSpeed, hours: float, per_tenant_h: float, seed: int) -> tuple[int, int, float]:
    started = time.perf_counter()
    env = simpy.Environment()
    flows = [Flow(t, 0, 0, PROMPT.sample, OUTPUT.sample, 2.0, 0.05) for t in TENANTS]
    server = RequestServer(env, [speed], [0] * REPLICAS, flows, Streams(seed))
    for f in range(len(flows)):
        server.set_rate(f, per_tenant_h)

    def troubles():  # type: ignore[no-untyped-def]
        yield env.timeout(0.3 * hours)
        server.set_speed(0, 0.5)
        server.set_speed(1, 0.0)
        yield env.timeout(0.1 * hours)
        server.set_speed(0, 1.0)
        server.set_speed(1, 1.0)

    env.process(troubles())
    env.run(until=hours)
    summary = server.summary()
    wall = time.perf_counter() - started
    return sum(s.arrived for s in summary), sum(s.completed for s in summary), wall


def request_speed(requests: int = 1_000_000, repeats: int = 3, seed: int = 1) -> RequestSpeed:
    """Time `repeats` runs long enough for about `requests` requests."""
    model = catalogue()[MODEL]
    speed = BatchSpeed.of(model, bits=16, kv_bits=None, batch=BATCH, context=CONTEXT,
                          speculative=None, systems=None)
    rate_h = LOAD * REPLICAS * capacity_per_h(speed, np.random.default_rng(seed))
    hours = requests / rate_h
    runs = [_run(speed, hours, rate_h / len(TENANTS), seed) for _ in range(repeats)]
    return RequestSpeed(
        requests=runs[0][0], completed=runs[0][1], replicas=REPLICAS, batch=BATCH, load=LOAD,
        walls=tuple(w for _, _, w in runs),
    )
