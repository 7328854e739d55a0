"""Run a sweep: every level for N replications, more until the intervals are narrow
enough, each outcome committed as it arrives.

`run_sweep` knows what is already done (`done`: the KPIs of replications a
previous attempt committed), runs only what is missing, and hands each new
outcome to the `Ledger` (the store), which commits it at most once. With
interval targets it adds replications in batches: after each batch, the
replications each unmet target needs at the estimated standard deviation,
at most `max_replications`. The summaries are computed from the KPIs in
(level, replication) order, whichever order they arrived in, so the numbers
do not depend on the executor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from twin.errors import ScenarioError
from twin.experiments.design import Level, replication_seed
from twin.experiments.executors import Executor
from twin.experiments.replication import Outcome, Task
from twin.experiments.stats import (
    Difference,
    Summary,
    Target,
    compare_levels,
    needed,
    parse_target,
    rank_levels,
    summarize,
)

__all__ = ["Plan", "Ledger", "Progress", "SweepResults", "run_sweep", "settings"]

Key = tuple[int, int]  # (level, replication)
KPIs = Mapping[str, float]


@dataclass(frozen=True)
class Plan:
    """A sweep's definition: its levels, the entropy of its seeds, how many
    replications (at first, and at most) and the interval targets."""

    levels: tuple[Level, ...]
    seed: int
    replications: int
    max_replications: int
    targets: tuple[Target, ...] = ()
    record: str = "kpis"

    def tasks(self, replications: int, done: Mapping[Key, object]) -> list[Task]:
        """The tasks of the first `replications` replications of each level not in `done`,
        replication-major (every level of replication i before i + 1)."""
        documents = [level.document for level in self.levels]
        return [
            Task(level.index, i, replication_seed(self.seed, i), documents[level.index],
                 self.record)
            for i in range(replications)
            for level in self.levels
            if (level.index, i) not in done
        ]  # fmt: skip


def settings(
    replications: int,
    max_replications: int | None = None,
    targets: Sequence[str] = (),
    *,
    source: str = "--max-replications",
    key: str = "",
) -> dict[str, object]:
    """A plan's settings as the store keeps them: the first and the most replications
    per level (by default 10 times the first with targets, else the first) and the
    ``--ci-width`` targets, checked. A most that nothing would use (no target) or
    below the first is a `ScenarioError` from `source` (`key`)."""
    if max_replications is not None and (not targets or max_replications < replications):
        expected = (f"at least the first replications ({replications})" if targets
                    else "interval targets to use it (--ci-width, ci_width): the most "
                    "replications they may add")  # fmt: skip
        raise ScenarioError(source, key, expected, max_replications)
    parsed = [parse_target(text) for text in targets]
    default = 10 * replications if parsed else replications
    return {
        "replications": replications,
        "max_replications": max(replications, max_replications or default),
        "targets": [str(target) for target in parsed],
    }


class Ledger(Protocol):
    """Where outcomes go: `commit` stores one replication at most once (False if it
    was there already); `extend` records a raised replication count."""

    def commit(self, outcome: Outcome) -> bool: ...

    def extend(self, replications: int) -> None: ...


class Progress(Protocol):
    """Told of each outcome: replications done and planned, and the results so far."""

    def __call__(self, done: int, planned: int, results: SweepResults) -> None: ...


@dataclass
class SweepResults:
    """The KPIs of every replication of a sweep, by (level, replication)."""

    levels: tuple[Level, ...]
    replications: int
    kpis: dict[Key, KPIs] = field(default_factory=dict)

    def values(self, level: int, kpi: str) -> list[float]:
        """`kpi` of each replication of `level`, in replication order (NaN if absent)."""
        rows = sorted((rep, kpis) for (lvl, rep), kpis in self.kpis.items() if lvl == level)
        return [float(kpis.get(kpi, math.nan)) for _, kpis in rows]

    def kpi_names(self) -> list[str]:
        """Every KPI, by name: the order of a fresh run's KPIs and that of KPIs read back
        from the store (a resume) differ, and what a sweep prints must not."""
        return sorted({name for kpis in self.kpis.values() for name in kpis})

    def summary(self, level: int, kpi: str) -> Summary:
        return summarize(self.values(level, kpi))

    def summaries(self, level: int) -> dict[str, Summary]:
        return {kpi: self.summary(level, kpi) for kpi in self.kpi_names()}

    def completed(self, level: int) -> int:
        return sum(1 for lvl, _ in self.kpis if lvl == level)

    def paired(self, kpi: str) -> list[list[float]]:
        """`kpi` of each level (NaN if absent) over the replications every level has,
        in replication order: the pairs of common random numbers."""
        common = set.intersection(
            *({rep for lvl, rep in self.kpis if lvl == level.index} for level in self.levels)
        )
        return [
            [float(self.kpis[(level.index, rep)].get(kpi, math.nan)) for rep in sorted(common)]
            for level in self.levels
        ]

    def comparisons(self, kpi: str) -> list[Difference]:
        """Paired differences of `kpi` between every two levels, over the replications
        every level has (Holm-adjusted within the KPI)."""
        return compare_levels(kpi, self.paired(kpi))

    def ranking(self, kpi: str) -> list[int]:
        """Levels by their mean of `kpi`, highest first."""
        return rank_levels({lvl.index: self.summary(lvl.index, kpi).mean for lvl in self.levels})


def run_sweep(
    plan: Plan,
    executor: Executor,
    *,
    ledger: Ledger | None = None,
    done: Mapping[Key, KPIs] | None = None,
    replications: int | None = None,
    progress: Progress | None = None,
    check_kpis: Callable[[Sequence[str]], None] | None = None,
) -> SweepResults:
    """Run what `plan` still lacks (`done`: what is committed; `replications`: the count
    reached so far, default the plan's) and return every replication's KPIs.

    `check_kpis` is called with the KPI names of the first outcome (to refuse an
    unknown KPI before the whole sweep has run)."""
    results = SweepResults(plan.levels, replications or plan.replications, dict(done or {}))
    if plan.targets and results.kpis:
        _check_targets(plan.targets, results.kpi_names())
    checked = bool(results.kpis)
    while True:
        tasks = plan.tasks(results.replications, results.kpis)
        planned = len(results.kpis) + len(tasks)
        for outcome in executor.run(tasks):
            if not checked:
                names = list(outcome.result.kpis)
                _check_targets(plan.targets, names)
                if check_kpis is not None:
                    check_kpis(names)
                checked = True
            if ledger is not None:
                ledger.commit(outcome)
            results.kpis[(outcome.level, outcome.replication)] = outcome.result.kpis
            if progress is not None:
                progress(len(results.kpis), planned, results)
        more = _more_replications(plan, results)
        if more <= results.replications:
            return results
        results.replications = more
        if ledger is not None:
            ledger.extend(more)


def _check_targets(targets: Sequence[Target], names: Sequence[str]) -> None:
    for target in targets:
        if target.kpi not in names:
            raise ScenarioError(
                "--ci-width", target.kpi, f"a KPI of the scenario (one of {', '.join(names)})"
            )


def _more_replications(plan: Plan, results: SweepResults) -> int:
    """The replication count the unmet targets call for (the current one if none)."""
    current = results.replications
    wanted = current
    for level in plan.levels:
        for target in plan.targets:
            summary = results.summary(level.index, target.kpi)
            if not target.met(summary):
                wanted = max(wanted, needed(summary, target), current + 1)
    return min(wanted, max(plan.max_replications, current))
