"""What a layer of the model adds to a hall-year: a scenario with and without its section.

Role: the measurement behind the "serving" and "facility" sections of
`python -m bench` (issue 9: the hall-year with fluid serving within 1.5x of
the hall-year without; issue 11: the same for the facility). The shipped
scenario (`serving.toml`, `facility.toml`) is the default hall plus one
section, so removing that section gives the same hall with the same seed;
both runs record into a `ListSink` as a real run does. The runs alternate,
so a busy neighbour on the machine slows both alike; the figure is the best
run with the layer over the best run without, with the median of the
rounds' ratios.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from twin.engine import simulate
from twin.records import ListSink
from twin.scenario import Scenario, load_scenario

__all__ = ["SCENARIOS", "TARGET_RATIO", "LayerOverhead", "layer_overhead"]

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
TARGET_RATIO = 1.5


@dataclass(frozen=True)
class LayerOverhead:
    """Wall seconds of alternating rounds: the hall alone, the hall with the layer."""

    section: str
    plain: tuple[float, ...]
    layered: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.layered) / min(self.plain)

    @property
    def median(self) -> float:
        return statistics.median(w / p for w, p in zip(self.layered, self.plain, strict=True))

    def as_dict(self) -> dict[str, object]:
        return {
            "section": self.section, "plain_s": list(self.plain), "with_s": list(self.layered),
            "ratio_best": self.best, "ratio_median": self.median,
            "target_ratio": TARGET_RATIO, "meets_target": self.best <= TARGET_RATIO,
        }


def _wall(scenario: Scenario) -> float:
    started = time.perf_counter()
    simulate(scenario, seed=1, sink=ListSink())
    return time.perf_counter() - started


def layer_overhead(scenario: Scenario, section: str, rounds: int = 5) -> LayerOverhead:
    """`rounds` alternating hall-years of `scenario` without and with its `section`
    (one uncounted pair first: imports and first-touch costs)."""
    document = scenario.document()
    del document[section]
    plain = Scenario.model_validate(document)
    _wall(plain), _wall(scenario)
    walls = [(_wall(plain), _wall(scenario)) for _ in range(rounds)]
    return LayerOverhead(section, tuple(p for p, _ in walls), tuple(w for _, w in walls))


def shipped(name: str) -> Scenario:
    """A shipped scenario by file name."""
    return load_scenario(SCENARIOS / name)
