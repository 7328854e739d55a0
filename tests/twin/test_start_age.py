"""The fleet's starting age (`hall.start_age`): new, steady, or a fixed age.

"steady" draws each unit's age from the stationary law of its renewal
process, density S(a)^p / integral S^p with p the share of failures that
replace the unit (automated fixes are minimal repairs): the failure rate is
then at equilibrium from the first hour, 1 / mean per unit-hour for p = 1
and p^(1/k - 1) / mean for a Weibull of shape k under minimal repair. A
"new" start reaches the same rate only after a few lives.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from twinkit import quiet_scenario, run_model

from twin.distributions import Lognormal, Weibull
from twin.engine import build
from twin.mechanisms.components import stationary_ages

INSTANT = {"dist": "deterministic", "value": "0 h"}
SHAPE, SCALE = 2.0, 1000.0
MEAN = SCALE * math.gamma(1.0 + 1.0 / SHAPE)
SYSTEMS, COUNT = 200, 12


def weibull_hall(start_age: str, escalate: float = 1.0):
    return quiet_scenario(
        hall={"rows": SYSTEMS // 100, "racks_per_row": 1, "systems_per_rack": 100,
              "start_age": start_age},
        components={"psu": {"failure": {"dist": "weibull", "shape": SHAPE, "scale": f"{SCALE} h"},
                             "repair": INSTANT, "escalate_probability": escalate}})


def failures_per_window(start_age: str, windows: int, escalate: float = 1.0) -> list[int]:
    """PSU failures in consecutive windows of one mean life."""
    model, sink = run_model(weibull_hall(start_age, escalate), until=windows * MEAN, seed=3)
    times = np.array([e.t for e in sink.events if e.kind == "failure" and e.cause == "psu"])
    return np.histogram(times, bins=windows, range=(0.0, windows * MEAN))[0].tolist()


def within(count: int, expected: float, sigmas: float = 4.0) -> bool:
    # a renewal count is less spread than a Poisson one for shape > 1: Poisson is a bound
    return abs(count - expected) <= sigmas * math.sqrt(expected)


def test_a_steady_start_fails_at_the_stationary_rate_from_the_first_hour():
    units = SYSTEMS * COUNT
    steady = failures_per_window("steady", 1)[0]
    new = failures_per_window("new", 6)
    assert within(steady, units)  # one mean life: one failure per unit
    # a new hall of wear-out units fails less in its first life (P(T < mean) = 0.54)...
    assert not within(new[0], units)
    assert within(new[0], units * (1 - math.exp(-(MEAN / SCALE) ** SHAPE)) + 0.05 * units, 6)
    # ...and reaches the steady rate later
    assert within(new[5], units)
    assert within(steady, new[5], 4 * math.sqrt(2))


def test_a_steady_start_with_automated_fixes_fails_at_the_minimal_repair_rate():
    p = 0.4
    units = SYSTEMS * COUNT
    steady = failures_per_window("steady", 1, escalate=p)[0]
    assert within(steady, units * p ** (1.0 / SHAPE - 1.0))
    assert not within(steady, units)


def test_a_fixed_start_age_makes_every_unit_a_survivor_of_that_age():
    # a deterministic life of 10 h and an age of 4 h: every unit fails at 6 h
    scenario = quiet_scenario(
        hall={"start_age": "4 h"},
        components={"psu": {"failure": {"dist": "deterministic", "value": "10 h"}}})
    units = build(scenario, 1).classes[0].installed
    assert units.tolist() == [-4.0] * units.size
    _, sink = run_model(scenario, until=7.0)
    psu = [e.t for e in sink.events if e.kind == "failure" and e.cause == "psu"]
    assert psu == [6.0] * units.size


@pytest.mark.parametrize("dist", [
    Weibull(shape=1.5, scale="100 h"), Lognormal(median="100 h", sigma=0.8)],
    ids=["weibull", "lognormal"])
@pytest.mark.parametrize("p", [1.0, 0.5])
def test_stationary_ages_have_the_mean_of_their_closed_form(dist, p):
    # E[age] = integral a S^p da / integral S^p da, by quadrature on a fine grid
    ages = stationary_ages(dist, np.random.default_rng(5), 200_000, p)
    grid = np.concatenate(([0.0], np.geomspace(1e-3, 2e5, 400_000)))
    if isinstance(dist, Weibull):
        survival = np.exp(-((grid / dist.scale) ** dist.shape))
    else:
        from scipy.special import ndtr
        with np.errstate(divide="ignore"):
            survival = ndtr(-np.log(grid / dist.median) / dist.sigma)
    weight = survival**p
    total = np.trapezoid(weight, grid)
    mean = float(np.trapezoid(grid * weight, grid) / total)
    second = float(np.trapezoid(grid**2 * weight, grid) / total)
    se = math.sqrt((second - mean**2) / ages.size)
    assert abs(ages.mean() - mean) <= 4 * se


def test_a_steady_start_finds_bad_units_in_proportion_to_their_time_in_service():
    # a bad unit lives b times shorter: a random moment finds one with (f/b)/(f/b + 1 - f)
    f, b = 0.3, 4.0
    model = build(quiet_scenario(
        hall={"rows": SYSTEMS // 100, "racks_per_row": 1, "systems_per_rack": 100,
              "start_age": "steady"},
        components={"psu": {"failure": {"dist": "weibull", "shape": SHAPE, "scale": "1000 h"},
                            "bad_fraction": f, "bad_factor": b}}), 1)
    share = float((model.classes[0].accel > 1.0).mean())
    expected = (f / b) / (f / b + 1 - f)
    n = model.classes[0].accel.size
    assert abs(share - expected) <= 4 * math.sqrt(expected * (1 - expected) / n)


def test_an_unknown_start_age_is_a_clear_error():
    from twin.errors import ScenarioError
    from twin.scenario import parse_scenario

    with pytest.raises(ScenarioError) as err:
        parse_scenario({"hall": {"start_age": "old"}}, "hall.toml")
    assert err.value.key == "hall.start_age"
    assert "steady" in str(err.value)
