"""What a replication of a training job costs: a gang job on 1k, 4k and 16k nodes.

Role: the measurement behind the "training" section of `python -m bench`
(issue 12: a job on 4,096 nodes over a simulated year with about 10,000
failures in at most 1 s a replication; the cost grows with the number of
events, not with nodes x failures). Each job runs for a year in the hall
`hall` gives for its size, for more work than a year holds, so it computes,
checkpoints and recovers all year. A replication is timed in its phases
(build, the event loop, what follows it) and beside its events (failures,
the job's interruptions, SimPy events), so the cost per event can be read at
each size; the same hall without the job runs alternately, for the job's
own share; and at 4k nodes the failure clocks run at half and twice the
speed, so the cost can be seen to follow the events at a fixed size.

`hall` is the one place that says which hall, by `kind`: the wafer-scale
default hall (`scenarios/hall.toml`, its failure clocks `LIFE_FACTOR` times
slower) or the GPU hall (`scenarios/gpu-hall.toml`, 8-GPU nodes failing as
the Llama 3 run's: a node is a node), at its published rates and with its
failure clocks `GPU_SPEEDUP` times faster.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.scenarios import changed, default_hall, faster, gpu_hall, scaled_hall
from twin.engine import simulate
from twin.scenario import Scenario

__all__ = [
    "JOB_SIZES", "TARGET_NODES", "TARGET_S", "LIFE_FACTOR", "GPU_SPEEDUP", "GPU_LIFE_FACTORS",
    "HALLS", "Replication", "TrainingCost", "hall", "slower", "training_hall", "training_cost",
]

JOB_SIZES = (1024, 4096, 16384)
TARGET_NODES = 4096
TARGET_S = 1.0  # wall seconds a replication, at TARGET_NODES

# Every failure clock of the default hall (component lives, run-time core failures,
# wafer failures) runs this many times slower in the bench's hall: its 6,120
# systems, the hall of the 4,096-node job, then have ~10,000 failures a year
# (~33,500 at the default rates, ~5.5 a system-year: mostly core failures).
LIFE_FACTOR = 3.3
# The GPU hall's failure clocks run this many times faster in its second block of rows:
# the job's 4,096 nodes then fail ~10,000 times a year (5,665 at the published 3.79 per
# 1,000 node-days). Its hall, 6,900 nodes, fails ~9,500 times a year at the published
# rates and ~16,900 sped up.
GPU_SPEEDUP = 1.77
GPU_LIFE_FACTORS = (1.0, 1.0 / GPU_SPEEDUP)  # the published rates, then sped up
SPARE_SHARE = 1.25  # the hall holds the job with at least a quarter more systems

# the shipped hall each kind of job runs in
HALLS: dict[str, Callable[[], Scenario]] = {"wafer": default_hall, "gpu": gpu_hall}


def slower(base: Scenario, factor: float) -> Scenario:
    """`base` with every failure clock (units, and the wafer's if it has one) `factor`
    times slower: lives times `factor` (below 1: faster)."""
    doc = base.document()
    changes: dict[str, Any] = {"components": {
        name: {"failure": faster(doc["components"][name]["failure"], 1.0 / factor)}
        for name in base.components
    }}
    if base.wafer is not None:
        changes["wafer"] = {
            "core_failures": faster(doc["wafer"]["core_failures"], 1.0 / factor),
            "failure": faster(doc["wafer"]["failure"], 1.0 / factor),
        }
    return changed(base, changes)


def hall(nodes: int, life_factor: float = LIFE_FACTOR, kind: str = "wafer") -> Scenario:
    """The hall a job of `nodes` runs in, without the job: the shipped hall of `kind`
    (`HALLS`) with its failure clocks `life_factor` times slower, scaled (rows, crews,
    spares) to hold `SPARE_SHARE` times the job's systems. A year."""
    base = slower(HALLS[kind](), life_factor)
    return scaled_hall(math.ceil(SPARE_SHARE * nodes / base.systems), base)


def training_hall(
    nodes: int, life_factor: float = LIFE_FACTOR, kind: str = "wafer"
) -> tuple[Scenario, Scenario]:
    """The hall of a job of `nodes`, without and with the job: more work than a year
    holds, a checkpoint every 2 h, a standby per 256 nodes."""
    plain = hall(nodes, life_factor, kind)
    job = {
        "systems": nodes, "work": "1 y", "checkpoint_interval": "2 h",
        "checkpoint_cost": "5 min", "restart_cost": "20 min",
        "standbys": nodes // 256, "host_selection": "30 min",
    }
    return plain, changed(plain, {"training": job}, name=f"training-{nodes}")


@dataclass(frozen=True)
class Replication:
    """One timed replication: wall seconds by phase, and what happened in it."""

    wall_s: float  # the whole `simulate` call
    build_s: float
    run_s: float
    post_s: float
    events: int  # SimPy events scheduled
    failures: int  # every `failures.*` KPI: units, core failures, wafers
    interruptions: int  # the job's (0 without a job)

    @classmethod
    def of(cls, scenario: Scenario, seed: int = 1, until: float | None = None) -> Replication:
        phases: dict[str, float] = {}
        result = simulate(scenario, seed=seed, until=until, phases=phases)
        kpis = result.kpis
        return cls(
            result.wall_s, phases["build"], phases["run"], phases["post"], int(phases["events"]),
            int(sum(v for k, v in kpis.items() if k.startswith("failures."))),
            int(kpis.get("training.interruptions", 0.0)),
        )

    @property
    def us_per_failure(self) -> float:
        """Wall microseconds of the replication per failure."""
        return 1e6 * self.wall_s / self.failures

    @property
    def us_per_event(self) -> float:
        """Microseconds of the event loop per SimPy event."""
        return 1e6 * self.run_s / self.events

    def as_dict(self) -> dict[str, Any]:
        return {
            "wall_s": self.wall_s, "build_s": self.build_s, "run_s": self.run_s,
            "post_s": self.post_s, "events": self.events, "failures": self.failures,
            "interruptions": self.interruptions, "us_per_failure": self.us_per_failure,
            "us_per_event": self.us_per_event,
        }


def _best(runs: list[Replication]) -> Replication:
    return min(runs, key=lambda r: r.wall_s)


@dataclass(frozen=True)
class TrainingCost:
    """The best of several replications of a job of `nodes`, and of its hall alone."""

    kind: str  # the hall's, a key of `HALLS`
    nodes: int
    hall_systems: int
    life_factor: float
    job: Replication
    plain: Replication

    @property
    def ms_per_system_built(self) -> float:
        return 1e3 * self.job.build_s / self.hall_systems

    def as_dict(self) -> dict[str, Any]:
        return {
            "hall": self.kind, "nodes": self.nodes, "hall_systems": self.hall_systems,
            "life_factor": self.life_factor, "job": self.job.as_dict(),
            "plain": self.plain.as_dict(), "job_s": self.job.wall_s - self.plain.wall_s,
            "ms_per_system_built": self.ms_per_system_built,
        }


def training_cost(
    nodes: int, rounds: int = 3, life_factor: float = LIFE_FACTOR, seed: int = 1,
    kind: str = "wafer", until: float | None = None,
) -> TrainingCost:
    """Best of `rounds` alternating replications without and with the job (the same
    seed: the same work each time), for a year or `until` hours."""
    plain, job = training_hall(nodes, life_factor, kind)
    plains, jobs = [], []
    for _ in range(rounds):
        plains.append(Replication.of(plain, seed, until))
        jobs.append(Replication.of(job, seed, until))
    return TrainingCost(kind, nodes, plain.systems, life_factor, _best(jobs), _best(plains))
