"""Statistics of a sweep: each KPI's mean, standard deviation and 95 % Student-t
interval; interval-width targets; paired comparisons of levels with Holm's
correction.

A KPI that is NaN in a replication (a mean repair time with no repair) is
left out of that KPI's statistics, as SQL's aggregates skip NULL, so `n` is
per KPI. The t quantile and the t distribution's tail come from
`scipy.special` (a dependency; imported on first use, it takes ~0.2 s).

Comparisons: replication i of every level shares its seed, so the
differences between two levels are paired. For each KPI, every pair of
levels gets a paired t test of its mean difference; the p-values of one
KPI's pairs form a family and are adjusted by Holm's step-down method
(which controls the family-wise error rate at 5 % and is never less powerful
than Bonferroni's); a difference is significant when its adjusted p-value is
below 0.05.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from twin.errors import ScenarioError

__all__ = [
    "CONFIDENCE", "Summary", "Target", "Difference", "summarize", "t_quantile", "parse_target",
    "needed", "holm", "compare_levels", "rank_levels",
]

CONFIDENCE = 0.95
ALPHA = 1.0 - CONFIDENCE


def t_quantile(df: int, p: float = 0.5 + CONFIDENCE / 2) -> float:
    """The `p` quantile of Student's t with `df` degrees of freedom."""
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


def _t_tail(df: int, t: float) -> float:
    """Two-sided p-value of `t` under Student's t with `df` degrees of freedom."""
    from scipy.special import stdtr

    return float(2.0 * stdtr(df, -abs(t)))


@dataclass(frozen=True)
class Summary:
    """A KPI over replications: count, mean, sample standard deviation and the
    half-width of its 95 % interval (NaN when fewer than two values)."""

    n: int
    mean: float
    sd: float
    half_width: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width


def summarize(values: Sequence[float]) -> Summary:
    """The `Summary` of `values`, NaNs left out; sums in the given order, so the
    same values in the same order give the very same floats."""
    kept = [float(v) for v in values if not math.isnan(v)]
    n = len(kept)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan)
    mean = math.fsum(kept) / n
    if n == 1:
        return Summary(1, mean, math.nan, math.nan)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in kept) / (n - 1))
    return Summary(n, mean, sd, t_quantile(n - 1) * sd / math.sqrt(n))


@dataclass(frozen=True)
class Target:
    """``--ci-width KPI=X``: the widest half-width allowed for a KPI's interval,
    absolute or, with `relative`, a fraction of the magnitude of its mean."""

    kpi: str
    width: float
    relative: bool

    def allowed(self, summary: Summary) -> float:
        return self.width * abs(summary.mean) if self.relative else self.width

    def met(self, summary: Summary) -> bool:
        return summary.n >= 2 and summary.half_width <= self.allowed(summary)

    def __str__(self) -> str:
        width = f"{self.width * 100:g}%" if self.relative else f"{self.width:g}"
        return f"{self.kpi}={width}"


def parse_target(text: str) -> Target:
    """``KPI=X`` (absolute half-width) or ``KPI=X%`` (relative to the mean)."""
    kpi, sep, raw = text.partition("=")
    kpi, raw = kpi.strip(), raw.strip()
    relative = raw.endswith("%")
    try:
        width = float(raw.removesuffix("%"))
    except ValueError:
        width = math.nan
    if not sep or not kpi or not (width > 0 and math.isfinite(width)):
        raise ScenarioError(
            "--ci-width", text, "KPI=X or KPI=X% with X a positive number (a half-width)"
        )
    return Target(kpi, width / 100 if relative else width, relative)


def needed(summary: Summary, target: Target) -> int:
    """Replications the interval of `summary` would need to meet `target`, if the
    standard deviation stays as estimated (half-widths shrink as 1/sqrt(n))."""
    allowed = target.allowed(summary)
    if summary.n < 2 or not math.isfinite(summary.half_width):
        return 2 * max(summary.n, 1)
    if allowed <= 0:
        return summary.n * 4  # a relative target around a mean of 0: keep doubling
    return max(summary.n, math.ceil(summary.n * (summary.half_width / allowed) ** 2))


@dataclass(frozen=True)
class Difference:
    """Paired difference ``level_b - level_a`` of one KPI, with its 95 % interval,
    its paired t test's p-value and that p-value adjusted by Holm's method."""

    kpi: str
    level_a: int
    level_b: int
    summary: Summary
    p_value: float
    p_holm: float

    @property
    def significant(self) -> bool:
        return self.p_holm < ALPHA


def _paired(a: Sequence[float], b: Sequence[float]) -> tuple[Summary, float]:
    diffs = [y - x for x, y in zip(a, b, strict=True) if not (math.isnan(x) or math.isnan(y))]
    summary = summarize(diffs)
    if summary.n < 2:
        return summary, math.nan
    if summary.sd == 0.0:
        return summary, 1.0 if summary.mean == 0.0 else 0.0
    t = summary.mean / (summary.sd / math.sqrt(summary.n))
    return summary, _t_tail(summary.n - 1, t)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of one family of p-values (NaN stays NaN)."""
    order = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[i] = running
    return adjusted


def compare_levels(kpi: str, per_level: Sequence[Sequence[float]]) -> list[Difference]:
    """Every pair of levels of one KPI (values in replication order, the same
    replications in each level), Holm-adjusted within the KPI."""
    pairs = list(itertools.combinations(range(len(per_level)), 2))
    tests = [_paired(per_level[a], per_level[b]) for a, b in pairs]
    adjusted = holm([p for _, p in tests])
    return [
        Difference(kpi, a, b, summary, p, p_adj)
        for (a, b), (summary, p), p_adj in zip(pairs, tests, adjusted, strict=True)
    ]


def rank_levels(means: Mapping[int, float]) -> list[int]:
    """Levels by mean, highest first (NaN last); ties keep level order."""
    return sorted(means, key=lambda level: (math.isnan(means[level]), -means[level], level))
