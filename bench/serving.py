"""What fluid serving adds to a hall-year: `scenarios/serving.toml` against `hall.toml`.

Role: the measurement behind the "serving" section of `python -m bench`
(issue 9: the hall-year with fluid serving on within 1.5x of the hall-year
without). `serving.toml` is the default hall plus three deployments and
three tenants, so the two runs simulate the same hall with the same seed;
both record into a `ListSink` as a real run does. The runs alternate, so a
busy neighbour on the machine slows both alike; the figure is the best
serving run over the best plain one, with the median of the rounds' ratios.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from twin.engine import simulate
from twin.records import ListSink
from twin.scenario import Scenario, load_scenario

__all__ = ["SERVING_TOML", "TARGET_RATIO", "ServingOverhead", "serving_overhead"]

SERVING_TOML = Path(__file__).resolve().parent.parent / "scenarios" / "serving.toml"
TARGET_RATIO = 1.5


@dataclass(frozen=True)
class ServingOverhead:
    """Wall seconds of alternating rounds: the hall alone, the hall serving."""

    plain: tuple[float, ...]
    serving: tuple[float, ...]
    replicas: int
    tenants: int

    @property
    def best(self) -> float:
        return min(self.serving) / min(self.plain)

    @property
    def median(self) -> float:
        return statistics.median(s / p for s, p in zip(self.serving, self.plain, strict=True))

    def as_dict(self) -> dict[str, object]:
        return {
            "plain_s": list(self.plain), "serving_s": list(self.serving),
            "replicas": self.replicas, "tenants": self.tenants,
            "ratio_best": self.best, "ratio_median": self.median,
            "target_ratio": TARGET_RATIO, "meets_target": self.best <= TARGET_RATIO,
        }


def _wall(scenario: Scenario) -> float:
    started = time.perf_counter()
    simulate(scenario, seed=1, sink=ListSink())
    return time.perf_counter() - started


def serving_overhead(rounds: int = 5) -> ServingOverhead:
    """`rounds` alternating hall-years without and with serving (one warm-up each)."""
    served = load_scenario(SERVING_TOML)
    document = served.document()
    del document["serving"]
    plain = Scenario.model_validate(document)
    assert served.serving is not None
    _wall(plain), _wall(served)  # imports and first-touch costs out of the figures
    walls: list[tuple[float, float]] = [(_wall(plain), _wall(served)) for _ in range(rounds)]
    return ServingOverhead(
        tuple(p for p, _ in walls), tuple(s for _, s in walls),
        sum(d.replicas for d in served.serving.deployments.values()),
        len(served.serving.tenants),
    )
