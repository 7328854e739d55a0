"""What the facility adds to a hall-year: `scenarios/facility.toml` against `hall.toml`.

Role: the measurement behind the "facility" section of `python -m bench`
(issue 11: the default hall-year with the facility on within 1.5x of the
hall-year without). `facility.toml` is the default hall plus every facility
default (power chain, cooling chain, energy), so the two runs simulate the
same hall with the same seed; both record into a `ListSink`. The runs
alternate, so a busy neighbour slows both alike; the figure is the best
facility run over the best plain one, with the median of the rounds' ratios.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from twin.engine import simulate
from twin.records import ListSink
from twin.scenario import Scenario, load_scenario

__all__ = ["FACILITY_TOML", "TARGET_RATIO", "FacilityOverhead", "facility_overhead"]

FACILITY_TOML = Path(__file__).resolve().parent.parent / "scenarios" / "facility.toml"
TARGET_RATIO = 1.5


@dataclass(frozen=True)
class FacilityOverhead:
    """Wall seconds of alternating rounds: the hall alone, the hall in its facility."""

    plain: tuple[float, ...]
    facility: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.facility) / min(self.plain)

    @property
    def median(self) -> float:
        return statistics.median(f / p for f, p in zip(self.facility, self.plain, strict=True))

    def as_dict(self) -> dict[str, object]:
        return {
            "plain_s": list(self.plain), "facility_s": list(self.facility),
            "ratio_best": self.best, "ratio_median": self.median,
            "target_ratio": TARGET_RATIO, "meets_target": self.best <= TARGET_RATIO,
        }


def _wall(scenario: Scenario) -> float:
    started = time.perf_counter()
    simulate(scenario, seed=1, sink=ListSink())
    return time.perf_counter() - started


def facility_overhead(rounds: int = 5) -> FacilityOverhead:
    """`rounds` alternating hall-years without and with the facility (one warm-up each)."""
    inside = load_scenario(FACILITY_TOML)
    document = inside.document()
    del document["facility"]
    plain = Scenario.model_validate(document)
    _wall(plain), _wall(inside)  # imports and first-touch costs out of the figures
    walls = [(_wall(plain), _wall(inside)) for _ in range(rounds)]
    return FacilityOverhead(tuple(p for p, _ in walls), tuple(f for _, f in walls))
