"""Seeds, levels, intervals, targets and Holm's correction, against numbers worked by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from twin.errors import ScenarioError
from twin.experiments.design import factorial, parse_factor, replication_seed
from twin.experiments.stats import (
    holm,
    needed,
    parse_target,
    rank_levels,
    summarize,
    t_quantile,
)
from twin.scenario import MAX_SEED

SMALL = Path(__file__).resolve().parents[2] / "scenarios" / "small.toml"


def test_replication_seeds_are_the_children_of_the_sweeps_seed_sequence() -> None:
    children = np.random.SeedSequence(42).spawn(5)
    for i, child in enumerate(children):
        high, low = (int(w) for w in child.generate_state(2, np.uint32))
        assert replication_seed(42, i) == ((high << 32) | low) & MAX_SEED
    seeds = [replication_seed(42, i) for i in range(1000)]
    assert len(set(seeds)) == 1000 and all(0 <= s <= MAX_SEED for s in seeds)
    assert replication_seed(43, 0) != replication_seed(42, 0)


def test_levels_are_the_full_factorial_first_factor_slowest() -> None:
    levels = factorial(
        SMALL, ["run.until=10d"],
        [parse_factor("repair.crews=1,2,3"), parse_factor("spare_systems.count=0,4")],
    )  # fmt: skip
    assert [lv.assignments for lv in levels][:3] == [
        ("repair.crews=1", "spare_systems.count=0"),
        ("repair.crews=1", "spare_systems.count=4"),
        ("repair.crews=2", "spare_systems.count=0"),
    ]
    assert len(levels) == 6 and len({lv.scenario.digest() for lv in levels}) == 6
    assert [(lv.scenario.repair.crews, lv.scenario.spare_systems.count) for lv in levels][-1] == (
        3, 4,
    )  # fmt: skip
    assert levels[0].overrides == ("run.until=10d", "repair.crews=1", "spare_systems.count=0")


@pytest.mark.parametrize("text", ["repair.crews", "=1,2", "repair.crews=1,,2", "a..b=1", "x=1,1"])
def test_a_malformed_factor_is_bad_input(text: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_factor(text)
    assert err.value.exit_code == 2 and err.value.source == "--factor"


def test_a_factor_value_the_scenario_refuses_names_the_key() -> None:
    with pytest.raises(ScenarioError) as err:
        factorial(SMALL, [], [parse_factor("repair.crews=2,-1")])
    assert "repair.crews" in str(err.value)


def test_summary_is_the_student_t_interval() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    s = summarize([*values, math.nan])  # NaN is left out, as SQL skips NULL
    assert (s.n, s.mean) == (10, 5.5)
    assert s.sd == pytest.approx(math.sqrt(110 / 12), rel=1e-15)  # var = n(n+1)/12
    assert t_quantile(9) == pytest.approx(2.2621571628, rel=1e-9)  # tables: t(0.975, 9)
    assert s.half_width == pytest.approx(2.2621571628 * s.sd / math.sqrt(10), rel=1e-9)
    assert (s.low, s.high) == (s.mean - s.half_width, s.mean + s.half_width)
    one = summarize([3.0])
    assert one.n == 1 and one.mean == 3.0 and math.isnan(one.half_width)


def test_targets_absolute_and_relative() -> None:
    absolute, relative = parse_target("availability=0.0005"), parse_target("failures.psu=5%")
    assert (absolute.kpi, absolute.width, absolute.relative) == ("availability", 0.0005, False)
    assert (relative.kpi, relative.width, relative.relative) == ("failures.psu", 0.05, True)
    s = summarize([10.0, 11.0, 12.0, 13.0])  # mean 11.5, half-width 2.05
    assert not relative.met(s) and parse_target("failures.psu=20%").met(s)
    # at the same standard deviation the half-width shrinks as 1/sqrt(n)
    assert needed(s, parse_target("x=0.5")) == math.ceil(4 * (s.half_width / 0.5) ** 2)
    for bad in ("availability", "availability=0", "availability=-1%", "=1", "a=x"):
        with pytest.raises(ScenarioError):
            parse_target(bad)


def test_holm_adjusts_step_down_and_keeps_order() -> None:
    # sorted 0.01, 0.02, 0.03, 0.04: x4, x3, x2, x1 = 0.04, 0.06, 0.06 (monotone), 0.06
    assert holm([0.04, 0.01, 0.03, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, math.nan])[0] == 0.5 and math.isnan(holm([0.5, math.nan])[1])
    assert holm([0.9, 0.8]) == [1.0, 1.0]


def test_levels_rank_by_mean_highest_first() -> None:
    assert rank_levels({0: 0.9, 1: 0.99, 2: math.nan, 3: 0.95}) == [1, 3, 0, 2]


def test_a_sensitivity_param_keeps_its_unit_and_rounds_counts() -> None:
    from twin.experiments.sensitivity import parse_param

    crews = parse_param("repair.crews=1:4")
    assert crews.integer and crews.assignment(2.6) == "repair.crews=3"
    life = parse_param("components.pump.failure.scale=5e4:1.5e5 h")
    assert not life.integer
    assert life.assignment(75000.0) == 'components.pump.failure.scale="75000.0 h"'
    inlet = parse_param("thermal.inlet=20:40 C")
    assert not inlet.integer and inlet.assignment(33.5) == 'thermal.inlet="33.5 C"'
    for bad in ("repair.crews=4:1", "repair.crews", "repair.crews=a:b", "x=1:inf"):
        with pytest.raises(ScenarioError):
            parse_param(bad)
