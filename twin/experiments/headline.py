"""The headline figures of a hall, per replication and across a sweep's levels.

What a capacity planner reads first when two halls (or two designs of one)
are compared: tokens per second served, the training job's wall time and
goodput, availability, the job's interruptions per day, power in MW and
energy per million tokens. Each figure is computed per replication from
that replication's KPIs and its horizon (`figures`), so its interval is a
Student-t interval over replications like any KPI's (`stats.summarize`), and
two levels are compared pair by pair on the same seeds: the paired difference
``b - a`` (`stats.compare_levels`, Holm-adjusted over each figure's pairs) and
the ratio of the means ``b / a`` with a first-order (delta-method) interval.

A figure a scenario cannot have (tokens without serving, wall time without a
training job, facility power without a facility) is NaN in every replication,
so its summary has ``n = 0``: shown as "-", never as 0. docs/kpis.md
("Headline figures") defines each one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from twin.experiments.stats import Difference, Summary, summarize
from twin.experiments.sweep import SweepResults

__all__ = ["Figure", "FIGURES", "figures", "Row", "headline", "paired_ratio"]

NAN = math.nan
SERVED = "serving.tokens.served."


def _served(kpis: Mapping[str, float]) -> float:
    """Output tokens served to every tenant; NaN without serving."""
    tenants = [value for name, value in kpis.items() if name.startswith(SERVED)]
    return math.fsum(tenants) if tenants else NAN


def _tokens_per_s(kpis: Mapping[str, float], horizon_h: float) -> float:
    return _served(kpis) / (horizon_h * 3600.0)


def _wall_d(kpis: Mapping[str, float], horizon_h: float) -> float:
    return kpis.get("training.wall_h", NAN) / 24.0  # NaN: unfinished, or no job


def _goodput(kpis: Mapping[str, float], horizon_h: float) -> float:
    return kpis.get("training.goodput", NAN)


def _availability(kpis: Mapping[str, float], horizon_h: float) -> float:
    return kpis.get("availability", NAN)


def _interruptions_per_day(kpis: Mapping[str, float], horizon_h: float) -> float:
    """The job's interruptions over the time it ran: its wall time, or the whole
    horizon when it did not finish (the time over which they were counted)."""
    wall = kpis.get("training.wall_h", NAN)
    days = (horizon_h if math.isnan(wall) else wall) / 24.0
    return kpis.get("training.interruptions", NAN) / days


def _it_mw(kpis: Mapping[str, float], horizon_h: float) -> float:
    return kpis.get("power.it_mean_kw", NAN) / 1000.0


def _facility_mw(kpis: Mapping[str, float], horizon_h: float) -> float:
    return kpis.get("energy.facility_mwh", NAN) / horizon_h


def _per_mtok(energy_mwh: float, kpis: Mapping[str, float]) -> float:
    mtok = _served(kpis) / 1e6
    return energy_mwh * 1000.0 / mtok if mtok > 0 else NAN  # NaN > 0 is False too


def _it_kwh_per_mtok(kpis: Mapping[str, float], horizon_h: float) -> float:
    return _per_mtok(kpis.get("energy.it_mwh", NAN), kpis)


def _facility_kwh_per_mtok(kpis: Mapping[str, float], horizon_h: float) -> float:
    return _per_mtok(kpis.get("energy.facility_mwh", NAN), kpis)


@dataclass(frozen=True)
class Figure:
    """A headline figure: its name, what a table calls it, its unit, and its value in
    one replication from the replication's KPIs and horizon (hours); NaN when the
    scenario has no such thing."""

    name: str
    label: str
    unit: str
    value: Callable[[Mapping[str, float], float], float]


# In the order a table lists them.
FIGURES = (
    Figure("tokens_per_s", "tokens served", "tokens/s", _tokens_per_s),
    Figure("training_wall_d", "training wall time", "d", _wall_d),
    Figure("training_goodput", "training goodput", "fraction", _goodput),
    Figure("availability", "availability", "fraction", _availability),
    Figure("interruptions_per_day", "job interruptions", "per day", _interruptions_per_day),
    Figure("it_mw", "IT power", "MW", _it_mw),
    Figure("facility_mw", "facility power", "MW", _facility_mw),
    Figure("it_kwh_per_mtok", "IT energy per Mtok", "kWh", _it_kwh_per_mtok),
    Figure("facility_kwh_per_mtok", "facility energy per Mtok", "kWh", _facility_kwh_per_mtok),
)


def figures(kpis: Mapping[str, float], horizon_h: float) -> dict[str, float]:
    """Every headline figure of one replication, by name (NaN: the scenario lacks it)."""
    return {figure.name: float(figure.value(kpis, horizon_h)) for figure in FIGURES}


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> Summary:
    """The ratio R = mean(b) / mean(a) over the pairs where both are numbers, with a
    95 % interval: to first order (the delta method) the error of R is the mean of the
    residuals b_i - R a_i divided by mean(a), so the half-width is the residuals'
    Student-t half-width over |mean(a)|. NaN where mean(a) is 0."""
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if not (math.isnan(x) or math.isnan(y))]
    n = len(pairs)
    if n == 0:
        return Summary(0, NAN, NAN, NAN)
    mean_a = math.fsum(x for x, _ in pairs) / n
    mean_b = math.fsum(y for _, y in pairs) / n
    if mean_a == 0.0:
        return Summary(n, NAN, NAN, NAN)
    ratio = mean_b / mean_a
    residuals = summarize([y - ratio * x for x, y in pairs])
    return Summary(n, ratio, residuals.sd / abs(mean_a), residuals.half_width / abs(mean_a))


@dataclass(frozen=True)
class Row:
    """A figure across the levels of a sweep: its summary in each level, and for each
    pair of levels (a < b) the paired difference b - a and the ratio b / a."""

    figure: Figure
    levels: tuple[Summary, ...]
    differences: tuple[Difference, ...]
    ratios: tuple[Summary, ...]


def headline(results: SweepResults) -> list[Row]:
    """Every headline figure of a sweep, in `FIGURES` order: each level's figures per
    replication (from its KPIs and its scenario's horizon) summarized, and every pair
    of levels compared over the replications every level has."""
    horizons = {level.index: level.scenario.run.until for level in results.levels}
    derived = SweepResults(results.levels, results.replications, {
        key: figures(kpis, horizons[key[0]]) for key, kpis in results.kpis.items()
    })  # fmt: skip
    rows = []
    for figure in FIGURES:
        paired = derived.paired(figure.name)
        pairs = itertools.combinations(range(len(paired)), 2)
        rows.append(Row(
            figure,
            tuple(derived.summary(level.index, figure.name) for level in results.levels),
            tuple(derived.comparisons(figure.name)),
            tuple(paired_ratio(paired[a], paired[b]) for a, b in pairs),
        ))  # fmt: skip
    return rows
