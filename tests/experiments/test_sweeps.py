"""Sweeps end to end, without a store: executors agree to the bit, common random
numbers shrink the variance of a difference, --ci-width adds replications, and
the 95 % interval covers a closed-form availability about 95 % of the time."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from test_availability import LAM, MU, birth_death, exponential, k_of_n

from twin.experiments.design import Level, factorial, level_of
from twin.experiments.executors import InProcess, ProcessPool
from twin.experiments.stats import parse_target
from twin.experiments.sweep import Plan, SweepResults, run_sweep

SMALL = Path(__file__).resolve().parents[2] / "scenarios" / "small.toml"


def two_of_three(crews: int, until: float = 2_000.0) -> Level:
    """One system, 2 of 3 units needed, exponential lives (mean 100 h) and repairs (10 h)."""
    scenario = k_of_n(3, 2, exponential(100), exponential(10), 1, crews=crews)
    return level_of(0, (), (), scenario, until)


def same(a: SweepResults, b: SweepResults) -> bool:
    """Every KPI of every replication equal to the bit (NaN equal to NaN)."""
    return a.kpis.keys() == b.kpis.keys() and all(
        a.kpis[key].keys() == b.kpis[key].keys()
        and all(
            x == y or (math.isnan(x) and math.isnan(y))
            for x, y in zip(a.kpis[key].values(), b.kpis[key].values(), strict=True)
        )
        for key in a.kpis
    )


@pytest.fixture(scope="module")
def small_plan() -> Plan:
    levels = factorial(SMALL, ["run.until=10d"], [])
    return Plan(tuple(levels), seed=11, replications=4, max_replications=4)


@pytest.fixture(scope="module")
def in_process(small_plan: Plan) -> SweepResults:
    return run_sweep(small_plan, InProcess())


def test_a_process_pool_gives_the_same_bits_as_this_process(
    small_plan: Plan, in_process: SweepResults
) -> None:
    pool = ProcessPool(2)
    try:
        pooled = run_sweep(small_plan, pool)
    finally:
        pool.close()
    assert same(pooled, in_process)
    assert in_process.summary(0, "availability") == pooled.summary(0, "availability")
    # and the seeds did make the replications differ
    assert len({kpis["failures.cores"] for kpis in in_process.kpis.values()}) > 1


def test_a_dask_local_cluster_gives_the_same_bits_as_this_process(
    small_plan: Plan, in_process: SweepResults
) -> None:
    distributed = pytest.importorskip("distributed")
    from twin.experiments.executors import DaskCluster

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://",
        host="127.0.0.1", dashboard_address=None,
    ) as cluster:  # fmt: skip
        executor = DaskCluster(cluster.scheduler_address)
        try:
            on_dask = run_sweep(small_plan, executor)
        finally:
            executor.close()
    assert same(on_dask, in_process)


def test_common_random_numbers_shrink_the_variance_of_a_difference() -> None:
    # 2 of 3 units with one crew or two: replication i of both levels shares its
    # seed, so their failures coincide and the paired difference varies far less
    # than the difference of two independent runs (var A + var B).
    one, two = two_of_three(crews=1), two_of_three(crews=2)
    two = level_of(1, (), (), two.scenario)
    crn = run_sweep(Plan((one, two), seed=5, replications=30, max_replications=30), InProcess())
    other = run_sweep(Plan((two_of_three(crews=2),), seed=6, replications=30,
                           max_replications=30), InProcess())  # fmt: skip
    paired = crn.comparisons("availability")[0].summary
    independent = [b - a for a, b in zip(crn.values(0, "availability"),
                                         other.values(0, "availability"), strict=True)]  # fmt: skip
    var_crn = paired.sd**2
    var_independent = float(sum((d - sum(independent) / 30) ** 2 for d in independent) / 29)
    assert paired.mean > 0  # a second crew helps
    # tolerance: with 30 pairs each, a variance ratio above 2.5 has p < 0.01 under
    # equal variances (F with 29 and 29 degrees of freedom)
    assert var_crn < var_independent / 2.5


def test_ci_width_adds_replications_until_the_target_is_met() -> None:
    target = parse_target("availability=0.006")
    plan = Plan((two_of_three(1),), seed=3, replications=4, max_replications=200,
                targets=(target,))  # fmt: skip
    results = run_sweep(plan, InProcess())
    summary = results.summary(0, "availability")
    assert results.replications > 4 and summary.n == results.replications
    assert target.met(summary)
    capped = run_sweep(
        Plan((two_of_three(1),), seed=3, replications=4, max_replications=9,
             targets=(parse_target("availability=1e-6"),)), InProcess(),
    )  # fmt: skip
    assert capped.replications == 9 and not parse_target("availability=1e-6").met(
        capped.summary(0, "availability")
    )


def test_an_unknown_target_kpi_is_refused_at_the_first_outcome() -> None:
    from twin.errors import ScenarioError

    plan = Plan((two_of_three(1),), seed=3, replications=50, max_replications=50,
                targets=(parse_target("availabilty=1%"),))  # fmt: skip
    seen = []
    with pytest.raises(ScenarioError, match="availabilty"):
        run_sweep(plan, InProcess(), progress=lambda done, planned, results: seen.append(done))
    assert seen == []


def coverage(sweeps: int, replications: int) -> float:
    """Share of `sweeps` sweeps whose 95 % interval holds the chain's availability."""
    level = two_of_three(crews=1)
    _, exact, _ = birth_death(3, 2, LAM, MU, crews=1)  # 0.95168
    held = 0
    for m in range(sweeps):
        plan = Plan((level,), seed=1000 + m, replications=replications,
                    max_replications=replications)  # fmt: skip
        s = run_sweep(plan, InProcess()).summary(0, "availability")
        held += s.low <= exact <= s.high
    return held / sweeps


def test_the_interval_covers_the_closed_form_availability() -> None:
    # 60 sweeps of 8 (~2.5 s): the share is binomial around 0.95 (sd 0.028); the
    # band 0.90-0.99 is ~1.6 sd wide on each side (the seeds are fixed: 0.95 here).
    # A 2,000 h run from all up is biased by ~1e-4, far inside a half-width of ~0.02.
    assert 0.90 <= coverage(60, 8) <= 0.99


@pytest.mark.slow
def test_the_interval_covers_the_closed_form_availability_over_many_sweeps() -> None:
    # 500 sweeps of 10 (~25 s): sd of the share 0.0097, the band ~4 sd on each side
    assert 0.90 <= coverage(500, 10) <= 0.99


def test_a_scheduler_without_dask_installed_is_a_clear_bad_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from twin.errors import ScenarioError
    from twin.experiments.executors import executor

    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if absent
    with pytest.raises(ScenarioError, match=r"pip install 'wafertwin\[dask\]'") as err:
        executor(None, "tcp://127.0.0.1:8786")
    assert err.value.exit_code == 2 and err.value.source == "--scheduler"


def test_two_levels_of_the_same_scenario_both_run_on_dask() -> None:
    # `twin compare A A` (an A/A check): the levels' tasks carry the same document and
    # seeds, and must still be distinct Dask tasks, else one level's futures are lost
    distributed = pytest.importorskip("distributed")
    from twin.experiments.executors import DaskCluster

    base = factorial(SMALL, ["run.until=2d"], [])[0]
    plan = Plan((base, level_of(1, (), base.overrides, base.scenario)), seed=5,
                replications=2, max_replications=2)  # fmt: skip
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
        host="127.0.0.1", dashboard_address=None,
    ) as cluster:  # fmt: skip
        executor = DaskCluster(cluster.scheduler_address)
        try:
            results = run_sweep(plan, executor)
        finally:
            executor.close()
    assert sorted(results.kpis) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    first, second = results.kpis[(0, 1)], results.kpis[(1, 1)]
    assert all(x == y or (math.isnan(x) and math.isnan(y))
               for x, y in zip(first.values(), second.values(), strict=True))
