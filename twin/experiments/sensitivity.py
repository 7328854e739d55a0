"""Which parameters move a KPI: Morris elementary effects, by SALib.

Each ``--param KEY=LOW:HIGH[ UNIT]`` is a scenario key and its range (a unit,
when given, is written after both numbers, as the scenario writes a
quantity; two whole numbers without a unit make an integer key, rounded at
each point).
SALib draws Morris trajectories over the ranges (`morris_design`); every
distinct point is a level of one sweep, run for R replications on the same
seeds (common random numbers, so an elementary effect is not buried in
replication noise), and the KPI's mean over them is the point's value.
SALib's Morris analysis then gives each parameter mu* (mean absolute
elementary effect, in KPI units per whole range), a bootstrap 95 % interval
of mu*, mu and sigma (spread of the effects: interaction or curvature); the
parameters rank by mu*. SALib is an optional dependency
(``pip install 'wafertwin[sensitivity]'``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.errors import ScenarioError

__all__ = ["Param", "Effect", "parse_param", "morris_design", "morris_effects"]

_RANGE = re.compile(r"^\s*([-+0-9.eE]+)\s*:\s*([-+0-9.eE]+)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Param:
    """A scenario key, its range and unit; `integer` keys are rounded."""

    key: str
    low: float
    high: float
    unit: str
    integer: bool

    def assignment(self, x: float) -> str:
        """The ``--set`` text giving the key the value `x`."""
        value: float = round(x) if self.integer else float(x)
        return f'{self.key}="{value!r} {self.unit}"' if self.unit else f"{self.key}={value!r}"


def parse_param(text: str) -> Param:
    """``KEY=LOW:HIGH`` or ``KEY=LOW:HIGH UNIT`` as a `Param`."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    match = _RANGE.match(raw)
    expected = "KEY=LOW:HIGH or KEY=LOW:HIGH UNIT with LOW < HIGH, e.g. repair.crews=2:8"
    if not sep or not key or any(not part for part in key.split(".")) or match is None:
        raise ScenarioError("--param", text, expected)
    try:
        low, high = float(match[1]), float(match[2])
    except ValueError:
        raise ScenarioError("--param", text, expected) from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ScenarioError("--param", text, expected)
    whole = all(re.fullmatch(r"[-+]?\d+", part) for part in (match[1], match[2]))
    integer = whole and not match[3]
    return Param(key, low, high, match[3], integer)


def _salib() -> tuple[Any, Any]:
    try:
        from SALib.analyze import morris as analyze
        from SALib.sample import morris as sample
    except ImportError:
        raise ScenarioError(
            "twin sensitivity", "", "SALib installed (pip install 'wafertwin[sensitivity]')"
        ) from None
    return sample, analyze


def _problem(params: Sequence[Param]) -> dict[str, Any]:
    return {
        "num_vars": len(params),
        "names": [p.key for p in params],
        "bounds": [[p.low, p.high] for p in params],
    }


def morris_design(
    params: Sequence[Param], trajectories: int, levels: int, seed: int
) -> np.ndarray:
    """The Morris design: `trajectories` x (k + 1) points over `levels` grid levels."""
    keys = [p.key for p in params]
    if len(set(keys)) < len(keys) or not params:
        raise ScenarioError("--param", ", ".join(keys), "one --param per key, at least one")
    sample, _ = _salib()
    design: np.ndarray = sample.sample(_problem(params), trajectories, num_levels=levels,
                                       seed=seed)  # fmt: skip
    return design


@dataclass(frozen=True)
class Effect:
    """A parameter's Morris statistics for one KPI."""

    key: str
    mu_star: float
    mu_star_conf: float
    mu: float
    sigma: float


def morris_effects(
    params: Sequence[Param], design: np.ndarray, values: np.ndarray, levels: int, seed: int
) -> list[Effect]:
    """Each parameter's mu*, its 95 % bootstrap half-width, mu and sigma, by mu* descending."""
    _, analyze = _salib()
    result = analyze.analyze(
        _problem(params), design, np.asarray(values, dtype=float), num_levels=levels,
        conf_level=0.95, num_resamples=1000, seed=seed,
    )  # fmt: skip
    effects = [
        Effect(p.key, float(result["mu_star"][i]), float(result["mu_star_conf"][i]),
               float(result["mu"][i]), float(result["sigma"][i]))  # fmt: skip
        for i, p in enumerate(params)
    ]
    return sorted(effects, key=lambda e: -e.mu_star)
