"""What a sweep runs: its levels (the full factorial of its factors) and each
replication's seed.

A factor is ``KEY=V1,V2,...``: a scenario key and the values it takes, each
written as ``--set`` would take it. The levels are every combination, the
first factor varying slowest; level 0 takes the first value of each. Seeds:
replication i's seed is drawn from the i-th child of the sweep's
`numpy.random.SeedSequence` (spawn key ``(i,)``, what `SeedSequence.spawn`
gives), independent of the level, so replication i of every level shares its
random streams (common random numbers) and its seed does not depend on where,
when or in which order it runs.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin.errors import ScenarioError
from twin.records import run_name
from twin.scenario import MAX_SEED, Scenario, load_scenario, scale_scenario

__all__ = [
    "Factor", "Level", "parse_factor", "factorial", "levels_for", "level_of", "replication_seed",
]


@dataclass(frozen=True)
class Factor:
    """A scenario key and the values a sweep gives it (as ``--set`` text)."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Level:
    """One combination of factor values: its assignments and the scenario they resolve to.

    `overrides` are every ``--set`` that made the scenario (the sweep's own,
    then the level's assignments), kept with each run for its provenance."""

    index: int
    assignments: tuple[str, ...]
    overrides: tuple[str, ...]
    scenario: Scenario

    @property
    def document(self) -> str:
        """The resolved scenario as canonical JSON text (what a replication task carries)."""
        return json.dumps(self.scenario.document(), sort_keys=True, separators=(",", ":"))

    @property
    def name(self) -> str:
        """The name its runs go by (`twin.records.run_name`)."""
        scenario = self.scenario
        return run_name(scenario.name, scenario.digest(), None, bool(self.overrides))


def parse_factor(text: str) -> Factor:
    """``KEY=V1,V2,...`` as a `Factor`; a `ScenarioError` from ``--factor`` if malformed."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    values = tuple(value.strip() for value in raw.split(","))
    expected = "KEY=V1,V2,... with a dotted KEY and at least one non-empty value"
    if not sep or not key or any(not part for part in key.split(".")) or not all(values):
        raise ScenarioError("--factor", text, expected)
    if len(set(values)) < len(values):
        raise ScenarioError("--factor", key, "each value once", raw)
    return Factor(key, values)


def factorial(
    path: Path,
    overrides: Sequence[str],
    factors: Sequence[Factor],
    *,
    allow_outside: bool = False,
    until: float | None = None,
    scale: int = 1,
) -> list[Level]:
    """Every level of the full factorial of `factors` over the scenario at `path`
    with `overrides` (then `scale`d, as ``--scale`` does); `until` (hours) replaces
    the scenario's horizon."""
    keys = [factor.key for factor in factors]
    for key in keys:
        if keys.count(key) > 1:
            raise ScenarioError("--factor", key, "each KEY in one --factor only")
    choices = [[f"{factor.key}={value}" for value in factor.values] for factor in factors]
    return levels_for(path, overrides, list(itertools.product(*choices)),
                      allow_outside=allow_outside, until=until, scale=scale)  # fmt: skip


def levels_for(
    path: Path,
    overrides: Sequence[str],
    combinations: Sequence[Sequence[str]],
    *,
    allow_outside: bool = False,
    until: float | None = None,
    scale: int = 1,
) -> list[Level]:
    """A level per combination of assignments (a factorial's, a sensitivity design's)
    over the scenario at `path` with `overrides`, as `factorial` describes."""
    levels = []
    for index, assignments in enumerate(combinations):
        every = (*overrides, *assignments)
        scenario = scale_scenario(load_scenario(path, every, allow_outside=allow_outside), scale)
        marked = (*every, *([f"--scale {scale}"] if scale != 1 else []))
        levels.append(level_of(index, assignments, marked, scenario, until))
    return levels


def level_of(
    index: int,
    assignments: Sequence[str],
    overrides: Sequence[str],
    scenario: Scenario,
    until: float | None = None,
) -> Level:
    """A level of `scenario` (its horizon replaced by `until` hours if given)."""
    if until is not None:
        scenario = scenario.model_copy(
            update={"run": scenario.run.model_copy(update={"until": until})}
        )
    return Level(index, tuple(assignments), tuple(overrides), scenario)


def replication_seed(entropy: int, replication: int) -> int:
    """The seed of replication `replication` of the sweep whose SeedSequence has `entropy`."""
    child = np.random.SeedSequence(entropy, spawn_key=(replication,))
    high, low = (int(word) for word in child.generate_state(2, np.uint32))
    return ((high << 32) | low) & MAX_SEED
