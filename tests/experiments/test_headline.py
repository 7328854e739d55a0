"""The headline figures against numbers worked by hand: each figure of one
replication from its KPIs and horizon, "missing" (NaN) where the scenario lacks
it, their summaries and paired comparisons across levels, and the coverage of
the ratio's delta-method interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.experiments.design import level_of
from twin.experiments.headline import FIGURES, figures, headline, paired_ratio
from twin.experiments.stats import compare_levels, summarize, t_quantile
from twin.experiments.sweep import SweepResults
from twin.scenario import Scenario

HALL = {"availability": 0.99, "power.it_mean_kw": 2_500.0, "energy.it_mwh": 120.0}
SERVING = {"serving.tokens.served.chat": 3e11, "serving.tokens.served.api": 1.32e11,
           "serving.tokens.demanded.chat": 9e11, "serving.energy_kwh_per_mtok": 0.2778}
TRAINING = {"training.goodput": 0.8, "training.interruptions": 12.0}
FACILITY = {"energy.facility_mwh": 150.0, "facility.pue": 1.25}


def test_a_serving_hall_in_a_facility_has_its_rates_per_second_and_per_mtok() -> None:
    f = figures(HALL | SERVING | FACILITY, 48.0)
    served = 3e11 + 1.32e11  # the tenants' served tokens, not what they demanded
    assert f["tokens_per_s"] == pytest.approx(served / (48 * 3600), rel=1e-15)
    assert f["availability"] == 0.99
    assert f["it_mw"] == 2.5
    assert f["facility_mw"] == pytest.approx(150.0 / 48, rel=1e-15)  # MWh per hour
    assert f["it_kwh_per_mtok"] == pytest.approx(120_000 / 432_000, rel=1e-15)
    assert f["facility_kwh_per_mtok"] == pytest.approx(150_000 / 432_000, rel=1e-15)
    for name in ("training_wall_d", "training_goodput", "interruptions_per_day"):
        assert math.isnan(f[name]), name


def test_a_finished_job_counts_its_interruptions_over_its_wall_time() -> None:
    f = figures(HALL | TRAINING | {"training.wall_h": 720.0}, 1_440.0)
    assert f["training_wall_d"] == 30.0
    assert f["training_goodput"] == 0.8
    assert f["interruptions_per_day"] == pytest.approx(12 / 30, rel=1e-15)


def test_an_unfinished_job_counts_them_over_the_horizon_and_has_no_wall_time() -> None:
    f = figures(HALL | TRAINING | {"training.wall_h": math.nan}, 1_440.0)
    assert math.isnan(f["training_wall_d"])
    assert f["interruptions_per_day"] == pytest.approx(12 / 60, rel=1e-15)


def test_what_a_scenario_lacks_is_nan_never_zero() -> None:
    f = figures(HALL, 24.0)
    assert f.keys() == {figure.name for figure in FIGURES}
    present = {name for name, value in f.items() if not math.isnan(value)}
    assert present == {"availability", "it_mw"}
    # serving that served nothing: 0 tokens/s, and no energy per token to speak of
    idle = figures(HALL | {"serving.tokens.served.chat": 0.0}, 24.0)
    assert idle["tokens_per_s"] == 0.0 and math.isnan(idle["it_kwh_per_mtok"])


def test_the_ratio_of_proportional_pairs_is_exact_and_nan_pairs_are_left_out() -> None:
    ratio = paired_ratio([1.0, 2.0, math.nan, 4.0], [3.0, 6.0, 9.0, 12.0])
    assert (ratio.n, ratio.mean, ratio.half_width) == (3, 3.0, 0.0)
    assert math.isnan(paired_ratio([0.0, 0.0], [1.0, 2.0]).mean)
    assert paired_ratio([math.nan], [1.0]).n == 0


def test_the_ratio_interval_covers_the_true_ratio_about_95_percent_of_the_time() -> None:
    # correlated pairs (as common random numbers make them), true ratio 1.5
    rng = np.random.default_rng(7)
    trials, n, covered = 4_000, 10, 0
    for _ in range(trials):
        shared = rng.normal(0.0, 1.0, n)
        a = 10.0 + shared + rng.normal(0.0, 0.5, n)
        b = 15.0 + 1.2 * shared + rng.normal(0.0, 0.5, n)
        r = paired_ratio(a.tolist(), b.tolist())
        covered += r.low <= 1.5 <= r.high
    # binomial SE at 95 %: 0.34 % (measured 0.950 at n = 10, 0.952 at n = 3 and 5)
    assert 0.935 <= covered / trials <= 0.965


def _sweep() -> tuple[SweepResults, list[float]]:
    """Two levels of different horizons with random KPIs; level 1 lacks replication 3."""
    rng = np.random.default_rng(3)
    horizons = [48.0, 24.0]
    levels = tuple(level_of(i, (), (), Scenario(), until=h) for i, h in enumerate(horizons))
    results = SweepResults(levels, 4)
    for level, rep in ((lv, r) for lv in (0, 1) for r in range(4)):
        if (level, rep) == (1, 3):
            continue
        wall = math.nan if rep == 1 else float(rng.uniform(10, 20))  # one unfinished job
        results.kpis[(level, rep)] = {
            "availability": float(rng.uniform(0.9, 1.0)),
            "power.it_mean_kw": float(rng.uniform(900, 1100)),
            "energy.it_mwh": float(rng.uniform(20, 30)),
            "serving.tokens.served.x": float(rng.uniform(1e9, 2e9)),
            "serving.tokens.served.y": float(rng.uniform(1e8, 2e8)),
            "training.goodput": float(rng.uniform(0.5, 0.9)),
            "training.wall_h": wall,
            "training.interruptions": float(rng.integers(0, 5)),
        }  # no facility
    return results, horizons


def test_each_figure_is_summarized_per_level_and_compared_over_common_replications() -> None:
    results, horizons = _sweep()
    rows = {row.figure.name: row for row in headline(results)}
    assert list(rows) == [figure.name for figure in FIGURES]
    hand = {  # per level, per replication, worked out here from the KPIs
        level: {
            rep: {
                "tokens_per_s": (k["serving.tokens.served.x"] + k["serving.tokens.served.y"])
                / (horizons[level] * 3600),
                "it_mw": k["power.it_mean_kw"] / 1000,
                "it_kwh_per_mtok": k["energy.it_mwh"] * 1e3
                / ((k["serving.tokens.served.x"] + k["serving.tokens.served.y"]) / 1e6),
                "interruptions_per_day": k["training.interruptions"]
                / ((horizons[level] if rep == 1 else k["training.wall_h"]) / 24),
                "training_wall_d": k["training.wall_h"] / 24,
            }
            for (lv, rep), k in sorted(results.kpis.items()) if lv == level
        }
        for level in (0, 1)
    }
    for name in ("tokens_per_s", "it_mw", "it_kwh_per_mtok", "interruptions_per_day",
                 "training_wall_d"):  # fmt: skip
        row = rows[name]
        for level in (0, 1):
            values = [hand[level][rep][name] for rep in sorted(hand[level])]
            kept = [v for v in values if not math.isnan(v)]
            summary = row.levels[level]
            assert summary.n == len(kept)
            assert summary.mean == pytest.approx(sum(kept) / len(kept), rel=1e-12)
            sd = float(np.std(kept, ddof=1))
            assert summary.half_width == pytest.approx(
                t_quantile(len(kept) - 1) * sd / math.sqrt(len(kept)), rel=1e-9
            )
        common = [[hand[level][rep][name] for rep in (0, 1, 2)] for level in (0, 1)]
        assert row.differences == tuple(compare_levels(name, common))
        (ratio,) = row.ratios
        pairs = [(a, b) for a, b in zip(*common, strict=True) if not math.isnan(a + b)]
        assert ratio.n == len(pairs)
        assert ratio.mean == pytest.approx(
            sum(b for _, b in pairs) / sum(a for a, _ in pairs), rel=1e-12
        )
    assert rows["training_wall_d"].levels[0].n == 3  # the unfinished job left out
    facility = rows["facility_mw"]
    assert [s.n for s in facility.levels] == [0, 0] and math.isnan(facility.levels[0].mean)
    assert math.isnan(facility.differences[0].summary.mean) and facility.ratios[0].n == 0
    assert rows["availability"].levels[1] == summarize(results.values(1, "availability"))
