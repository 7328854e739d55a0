"""What a training job adds to a hall-year: a gang job on 1k, 4k and 16k systems.

Role: the measurement behind the "training" section of `python -m bench`
(issue 12: a job on 4,096 systems over a simulated year, its cost growing
with events, not with systems x failures). Each job runs on the default
hall scaled to hold it with room to spare (`scaled_hall`), for more work
than a year holds, so it computes, checkpoints and recovers all year; the
same hall without `[training]` runs alternately, and the job's cost is the
difference of the best walls of each.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from bench.scenarios import changed, scaled_hall
from twin.engine import simulate
from twin.scenario import Scenario

__all__ = ["JOB_SIZES", "TrainingCost", "training_cost", "training_hall"]

JOB_SIZES = (1024, 4096, 16384)


@dataclass(frozen=True)
class TrainingCost:
    """Best wall seconds of a hall-year without and with a job of `systems`."""

    systems: int
    hall_systems: int
    plain_s: float
    training_s: float
    interruptions: float

    def as_dict(self) -> dict[str, object]:
        return {
            "systems": self.systems, "hall_systems": self.hall_systems,
            "plain_s": self.plain_s, "training_s": self.training_s,
            "job_s": self.training_s - self.plain_s, "interruptions": self.interruptions,
        }


def training_hall(systems: int) -> tuple[Scenario, Scenario]:
    """The hall that holds a job of `systems` (and its standbys, one per 256) with a
    quarter more systems idle, without and with the job."""
    plain = scaled_hall(math.ceil(1.25 * systems / 1020))
    job = {
        "systems": systems, "work": "1 y", "checkpoint_interval": "2 h",
        "checkpoint_cost": "5 min", "restart_cost": "20 min",
        "standbys": systems // 256, "host_selection": "30 min",
    }
    return plain, changed(plain, {"training": job}, name=f"training-{systems}")


def training_cost(systems: int, rounds: int = 3) -> TrainingCost:
    """Best of `rounds` alternating hall-years without and with the job."""
    plain, job = training_hall(systems)
    walls: list[tuple[float, float]] = []
    interruptions = math.nan
    for _ in range(rounds):
        started = time.perf_counter()
        simulate(plain, seed=1)
        middle = time.perf_counter()
        interruptions = simulate(job, seed=1).kpis["training.interruptions"]
        walls.append((middle - started, time.perf_counter() - middle))
    return TrainingCost(
        systems, plain.systems, min(p for p, _ in walls), min(t for _, t in walls), interruptions,
    )
