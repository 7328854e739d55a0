"""Replicate the engine and the reference over seeds and compare their KPIs.

Role: the statistics shared by the agreement benchmark (`python -m bench
--only agreement`) and the oracle tests (tests/test_reference.py). Each
model is run once per seed (independent streams: the reference's never
coincide with the engine's), and for each KPI we report the mean, the
standard error and a t-based 95 % confidence interval of each model, whether
each model's mean lies in the other's interval, and the difference in units
of its standard error, ``z = (engine - reference) / sqrt(se_e^2 + se_r^2)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from bench.reference import run_reference
from twin.engine import simulate
from twin.scenario import Scenario

__all__ = [
    "Summary", "Agreement", "AgreementRun", "AGREEMENT_KPIS", "summarize", "replicate",
    "compare", "run_agreement", "engine_kpis", "reference_kpis",
]

Runner = Callable[[Scenario, int], dict[str, float]]


@dataclass(frozen=True)
class Summary:
    """Mean, standard error and t-based confidence interval of one KPI over seeds."""

    n: int
    mean: float
    sd: float
    se: float
    lo: float
    hi: float

    def contains(self, value: float) -> bool:
        return self.lo <= value <= self.hi


@dataclass(frozen=True)
class Agreement:
    """Engine vs reference on one KPI."""

    kpi: str
    reference: Summary
    engine: Summary

    @property
    def diff(self) -> float:
        return self.engine.mean - self.reference.mean

    @property
    def se_diff(self) -> float:
        return math.hypot(self.engine.se, self.reference.se)

    @property
    def z(self) -> float:
        if self.se_diff == 0.0:
            return 0.0 if self.diff == 0.0 else math.copysign(math.inf, self.diff)
        return self.diff / self.se_diff

    @property
    def engine_in_reference_ci(self) -> bool:
        return self.reference.contains(self.engine.mean)

    @property
    def reference_in_engine_ci(self) -> bool:
        return self.engine.contains(self.reference.mean)

    def within(self, k: float) -> bool:
        """|difference| at most `k` standard errors of the difference."""
        return abs(self.diff) <= k * self.se_diff

    def as_dict(self) -> dict[str, object]:
        return {
            "kpi": self.kpi,
            "reference": asdict(self.reference),
            "engine": asdict(self.engine),
            "diff": self.diff,
            "z": self.z,
            "engine_in_reference_ci": self.engine_in_reference_ci,
            "reference_in_engine_ci": self.reference_in_engine_ci,
        }


def summarize(values: Sequence[float], level: float = 0.95) -> Summary:
    """Mean and t-based confidence interval of independent replications."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    mean = float(x.mean())
    sd = float(x.std(ddof=1)) if n > 1 else math.nan
    se = sd / math.sqrt(n) if n > 1 else math.nan
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * se if n > 1 else math.nan
    return Summary(n, mean, sd, se, mean - half, mean + half)


def engine_kpis(scenario: Scenario, seed: int) -> dict[str, float]:
    return simulate(scenario, seed=seed).kpis


def reference_kpis(scenario: Scenario, seed: int, step_min: float = 1.0) -> dict[str, float]:
    return run_reference(scenario, seed=seed, step_min=step_min).kpis


def replicate(
    runner: Runner, scenario: Scenario, seeds: Iterable[int], kpis: Sequence[str]
) -> dict[str, list[float]]:
    """The values of `kpis` in one run per seed."""
    out: dict[str, list[float]] = {k: [] for k in kpis}
    for seed in seeds:
        values = runner(scenario, seed)
        for k in kpis:
            out[k].append(values[k])
    return out


def compare(
    reference: dict[str, list[float]], engine: dict[str, list[float]]
) -> list[Agreement]:
    """One `Agreement` per KPI present in both replication sets."""
    return [
        Agreement(k, summarize(reference[k]), summarize(engine[k]))
        for k in reference if k in engine
    ]


AGREEMENT_KPIS = (
    "availability", "capacity", "energy.it_mwh",
    "failures.psu", "failures.pump", "failures.fan", "failures.wafer", "failures.cores",
    "thermal.throttle_events", "thermal.trips", "thermal.throttle_h", "thermal.trip_h",
    "repair.escalated", "repair.wrong_unit", "spares.used.psu", "spares.used.pump",
    "spares.stockouts.pump", "spare_systems.used", "wafer.defect_cores",
)


@dataclass(frozen=True)
class AgreementRun:
    """Both models over the same seeds on one scenario, and what it cost."""

    scenario: str
    systems: int
    days: float
    seeds: int
    step_min: float
    engine_wall_s: float
    reference_wall_s: float
    rows: tuple[Agreement, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "scenario": self.scenario, "systems": self.systems, "days": self.days,
            "seeds": self.seeds, "step_min": self.step_min,
            "engine_wall_s": self.engine_wall_s, "reference_wall_s": self.reference_wall_s,
            "kpis": [row.as_dict() for row in self.rows],
        }


def run_agreement(
    scenario: Scenario,
    seeds: Sequence[int],
    kpis: Sequence[str] = AGREEMENT_KPIS,
    step_min: float = 1.0,
) -> AgreementRun:
    """Replicate both models on `scenario` over `seeds` and compare `kpis`."""
    started = time.perf_counter()
    engine = replicate(engine_kpis, scenario, seeds, kpis)
    engine_wall = time.perf_counter() - started
    started = time.perf_counter()
    reference = replicate(
        lambda sc, seed: reference_kpis(sc, seed, step_min), scenario, seeds, kpis
    )
    reference_wall = time.perf_counter() - started
    return AgreementRun(
        scenario=scenario.name,
        systems=scenario.systems,
        days=scenario.run.until / 24.0,
        seeds=len(seeds),
        step_min=step_min,
        engine_wall_s=engine_wall,
        reference_wall_s=reference_wall,
        rows=tuple(compare(reference, engine)),
    )
