"""Lifetimes and ages: fresh and residual draws, renewal, minimal repair, bad lots.

Every unit keeps its own clock. A unit replaced by a crew is new (a fresh
life); a unit fixed by the automated fix keeps its age (its residual life
given the age survived); a bad unit's clock runs `bad_factor` times faster.
The closed forms: a residual life at age a has survival S(a + x) / S(a);
a renewed unit fails at the long-run rate 1 / (mean life + mean repair)
(renewal theorem, with the second-order term for the start of the run); a
minimally repaired Weibull unit fails as a Poisson process with E N(t) =
(t / scale)^shape; a class with bad fraction f and factor m whose units
keep their lot (automated fixes) fails N T / MTBF (1 - f + f m) times, and
one whose units are replaced, each new unit drawn from the mix again, fails
at the renewal rate 1 / E[life] = 1 / (MTBF (1 - f + f / m)) per slot.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special, stats
from twinkit import of, quiet_scenario, run_model

from twin.distributions import Deterministic, Exponential, Lognormal, Weibull
from twin.engine import build
from twin.records import ListSink

DRAWS = 20_000
# A Kolmogorov-Smirnov test at this level fails a correct sampler once in
# 10,000 seeds; the seeds are fixed, so the tests are deterministic.
KS_ALPHA = 1e-4

WEIBULL = Weibull(shape=3.0, scale="100 h")
LOGNORMAL = Lognormal(median="100 h", sigma=0.8)


def survival(dist, accel: float = 1.0):
    if isinstance(dist, Weibull):
        return stats.weibull_min(c=dist.shape, scale=dist.scale / accel).sf
    if isinstance(dist, Lognormal):
        return stats.lognorm(s=dist.sigma, scale=dist.median / accel).sf
    return stats.expon(scale=dist.mean_ / accel).sf


def residual_cdf(dist, age: float, accel: float = 1.0):
    sf = survival(dist, accel)
    s_age = sf(age)
    return lambda x: 1.0 - sf(age + np.asarray(x)) / s_age


# -- the distributions ---------------------------------------------------------------


@pytest.mark.parametrize("dist", [WEIBULL, LOGNORMAL, Exponential(mean="100 h")],
                         ids=lambda d: d.dist)
def test_fresh_lives_have_the_stated_mean(dist):
    lives = dist.sample(np.random.default_rng(1), np.ones(DRAWS))
    sd = math.sqrt(stats.tstd(lives) ** 2 / DRAWS)  # SE of the sample mean; 4 SE below
    assert lives.mean() == pytest.approx(dist.mean(), abs=4 * sd)
    assert stats.kstest(lives, lambda x: 1.0 - survival(dist)(x)).pvalue > KS_ALPHA


@pytest.mark.parametrize("dist", [WEIBULL, LOGNORMAL], ids=lambda d: d.dist)
@pytest.mark.parametrize("age_quantile", [0.5, 0.99, 0.999_999])  # survived that share
@pytest.mark.parametrize("accel", [1.0, 5.0])
def test_a_residual_life_follows_the_conditional_survival(dist, age_quantile, accel):
    age = float(stats.weibull_min(c=dist.shape, scale=dist.scale / accel).ppf(age_quantile)
                if isinstance(dist, Weibull)
                else stats.lognorm(s=dist.sigma, scale=dist.median / accel).ppf(age_quantile))
    rng = np.random.default_rng(2)
    rest = dist.residual(rng, np.full(DRAWS, age), accel)
    assert np.all(rest >= 0)
    assert stats.kstest(rest, residual_cdf(dist, age, accel)).pvalue > KS_ALPHA


@pytest.mark.parametrize("z_age", [40.0, 200.0])  # survival 4e-350 and 1e-8687 at that age
def test_a_lognormal_residual_life_far_past_underflow_is_finite_and_conditional(z_age):
    dist = Lognormal(median="100 h", sigma=0.8)
    age = 100.0 * math.exp(0.8 * z_age)
    rest = dist.residual(np.random.default_rng(5), np.full(DRAWS, age))
    assert np.all(np.isfinite(rest)) and np.all(rest > 0)

    def cdf(x):  # 1 - S(age + x) / S(age), the survivals as logs (they underflow)
        z = np.log((age + np.asarray(x)) / 100.0) / 0.8
        return -np.expm1(special.log_ndtr(-z) - special.log_ndtr(-z_age))

    assert stats.kstest(rest, cdf).pvalue > KS_ALPHA


def test_an_exponential_residual_life_does_not_depend_on_age():
    dist = Exponential(mean="100 h")
    rest = dist.residual(np.random.default_rng(3), np.full(DRAWS, 5_000.0))
    assert stats.kstest(rest, lambda x: 1.0 - survival(dist)(x)).pvalue > KS_ALPHA


def test_a_deterministic_residual_life_is_what_is_left_of_the_current_life():
    # a unit reset at or past its fixed life runs another full life: what is left
    # is life - (age mod life), never zero
    dist = Deterministic(value="100 h")
    rest = dist.residual(np.random.default_rng(4), np.array([0.0, 30.0, 100.0, 150.0, 300.0]))
    assert rest.tolist() == [100.0, 70.0, 100.0, 50.0, 100.0]
    fast = dist.residual(np.random.default_rng(4), np.array([0.0, 10.0, 25.0, 60.0]), 4.0)
    assert fast.tolist() == [25.0, 15.0, 25.0, 15.0]  # a life of 100 h / 4
    # a zero life stays zero (no division by it)
    assert Deterministic(value="0 h").residual(np.random.default_rng(4), np.ones(2)).tolist() \
        == [0.0, 0.0]


@given(age=st.floats(0.0, 1e6), value=st.floats(1e-3, 1e4), accel=st.floats(1.0, 100.0))
def test_a_deterministic_residual_life_is_positive_and_ends_on_a_multiple_of_the_life(
        age, value, accel):
    life = value / accel
    [rest] = Deterministic(value=f"{value!r} h").residual(
        np.random.default_rng(0), np.array([age]), accel).tolist()
    assert 0.0 < rest <= life
    lives = (age + rest) / life  # the failure falls at the end of a whole life
    assert lives == pytest.approx(round(lives), rel=1e-9)


def test_a_faster_clock_divides_lives_by_the_factor():
    for dist in (WEIBULL, LOGNORMAL, Exponential(mean="100 h"), Deterministic(value="100 h")):
        slow = dist.sample(np.random.default_rng(5), np.ones(100))
        fast = dist.sample(np.random.default_rng(5), np.full(100, 4.0))
        assert fast == pytest.approx(slow / 4.0, rel=1e-12)


ONE_UNIT_DISTS = [
    Exponential(mean="150000 h"), Weibull(shape=0.5, scale="1000 h"),
    Weibull(shape=1.0, scale="1000 h"), Weibull(shape=1.5, scale="100000 h"),
    Weibull(shape=2.0, scale="1000 h"), Lognormal(median="1 h", sigma=0.4),
    Lognormal(median="5000 h", sigma=2.0), Deterministic(value="15 min"),
]


@pytest.mark.parametrize("dist", ONE_UNIT_DISTS, ids=lambda d: f"{d.dist}")
@pytest.mark.parametrize("accel", [1.0, 3.0, np.float64(7.3)])
def test_a_single_draw_is_the_draw_of_one_unit_bit_for_bit(dist, accel):
    # the engine draws one unit's life as a float; the same stream must give the same
    # bits as the array draw of one unit (a 0-d array, or an array of one)
    scalar, single, one = (np.random.default_rng(9) for _ in range(3))
    for _ in range(300):
        x = dist.draw(scalar, accel)
        assert isinstance(x, float)
        assert x == float(dist.sample(single, accel))
        assert x == float(dist.sample(one, np.array([accel]))[0])


@pytest.mark.parametrize("dist", [d for d in ONE_UNIT_DISTS if d.dist != "lognormal"]
                         + [LOGNORMAL], ids=lambda d: f"{d.dist}")
def test_a_single_residual_draw_is_the_draw_of_one_unit_bit_for_bit(dist):
    ages = np.random.default_rng(3).exponential(dist.mean(), 300)
    ages[::7] = 0.0  # a unit reset at install
    scalar, array = np.random.default_rng(4), np.random.default_rng(4)
    for age in ages.tolist():
        for accel in (1.0, 2.5):
            x = dist.draw_residual(scalar, age, accel)
            assert x == float(dist.residual(array, np.asarray(age), accel))


# -- renewal and minimal repair in the engine ---------------------------------------------

SYSTEMS = 50
UNITS = 4 * SYSTEMS  # 4 units per system, 1 needed: the system state does not matter


def weibull_class(escalate: float, repair: str = "10 h"):
    return quiet_scenario(
        hall={"systems_per_rack": SYSTEMS},
        components={"psu": {
            "count": 4, "required": 1, "escalate_probability": escalate,
            "failure": {"dist": "weibull", "shape": 3.0, "scale": "100 h"},
            "repair": {"dist": "deterministic", "value": repair},
        }},
    )


def test_replaced_units_fail_at_the_renewal_rate_one_over_life_plus_repair():
    until = 3_000.0
    model, _ = run_model(weibull_class(escalate=1.0), until=until)
    life_mean = WEIBULL.mean()  # 89.3 h
    life_var = 100.0**2 * (math.gamma(1 + 2 / 3) - math.gamma(1 + 1 / 3) ** 2)
    cycle = life_mean + 10.0  # the 10 h repair is deterministic: no variance
    # delayed renewal (the first cycle has no repair):
    # E N(t) = t/mu + E[C^2]/(2 mu^2) - E[X1]/mu + o(1)
    per_unit = until / cycle + (life_var + cycle**2) / (2 * cycle**2) - life_mean / cycle
    sd = math.sqrt(UNITS * until * life_var / cycle**3)  # Var N(t) ~ t var(C)/mu^3
    assert model.classes[0].failures == pytest.approx(UNITS * per_unit, abs=4 * sd)


def test_a_repair_restarts_the_clock_of_the_repaired_unit_only():
    model, sink = run_model(weibull_class(escalate=1.0), until=1_000.0)
    psu = model.classes[0]
    last_new = np.zeros(UNITS)
    for e in of(sink.events, "repaired"):
        system = model.fleet.scopes.index(e.scope.rsplit(".", 1)[0])
        unit = system * psu.count + int(e.scope.rsplit("psu", 1)[1]) - 1
        last_new[unit] = e.t
    assert last_new.any()
    assert psu.installed.tolist() == last_new.tolist()


def test_auto_fixed_units_keep_their_age_and_fail_as_a_minimal_repair_process():
    until = 300.0
    model, _ = run_model(weibull_class(escalate=0.0), until=until)
    psu = model.classes[0]
    assert not psu.installed.any()  # never renewed
    expected = UNITS * (until / 100.0) ** 3.0  # 27 per unit: a Poisson count, 4 sigma
    assert psu.failures == pytest.approx(expected, abs=4 * math.sqrt(expected))
    assert model.shop.auto_fixed == psu.failures
    # as good as new instead would give ~UNITS * until / 89.3 = 672


@pytest.mark.parametrize("escalate", [0.0, 1.0])
def test_an_exponential_class_fails_at_one_over_mtbf_however_it_is_repaired(escalate):
    # memoryless lives: renewal and minimal repair are the same process
    until, mtbf = 2_000.0, 100.0
    scenario = quiet_scenario(hall={"systems_per_rack": SYSTEMS}, components={"psu": {
        "count": 4, "required": 1, "escalate_probability": escalate,
        "failure": {"dist": "exponential", "mean": "100 h"},
        "repair": {"dist": "deterministic", "value": "0 h"}}})
    model, _ = run_model(scenario, until=until)
    expected = UNITS * until / mtbf  # Poisson with zero repair time: 4 sigma
    assert model.classes[0].failures == pytest.approx(expected, abs=4 * math.sqrt(expected))


# -- a bad subpopulation ------------------------------------------------------------

def bad_lot(fraction: float, factor: float, systems: int = 40, escalate: float = 1.0):
    return quiet_scenario(hall={"systems_per_rack": systems}, components={"psu": {
        "bad_fraction": fraction, "bad_factor": factor, "escalate_probability": escalate,
        "failure": {"dist": "exponential", "mean": "1000 h"},
        "repair": {"dist": "deterministic", "value": "0 h"}}})


def test_a_bad_lot_kept_by_its_units_multiplies_failures_by_one_minus_f_plus_f_m():
    # automated fixes only: every unit stays in place, and so does its lot
    f, m, until, systems = 0.2, 5.0, 5_000.0, 40
    units = 12 * systems
    model, sink = run_model(bad_lot(f, m, systems, escalate=0.0), until=until)
    psu = model.classes[0]
    assert np.array_equal(psu.accel, sink.first_lots["psu"])
    per_unit = until / 1000.0
    expected = units * per_unit * (1 - f + f * m)
    # Poisson given the lot, plus the binomial spread of the number of bad units
    var = expected + per_unit**2 * (m - 1) ** 2 * units * f * (1 - f)
    assert psu.failures == pytest.approx(expected, abs=4 * math.sqrt(var))
    # given which units are bad, the count is Poisson: a much tighter check
    n_bad = int(np.count_nonzero(psu.accel == m))
    given = per_unit * (units - n_bad + m * n_bad)
    assert psu.failures == pytest.approx(given, abs=4 * math.sqrt(given))
    assert n_bad == pytest.approx(f * units, abs=4 * math.sqrt(units * f * (1 - f)))
    assert set(np.unique(psu.accel)) == {1.0, m}


def test_replaced_units_draw_their_lot_afresh_and_fail_at_one_over_the_mean_life():
    # crews replace every failed unit at once: each slot is an ordinary renewal
    # process whose lives are exponential with mean 1000 h (good) or 1000/m h (bad)
    f, m, until, systems = 0.2, 5.0, 5_000.0, 40
    units = 12 * systems
    model, sink = run_model(bad_lot(f, m, systems, escalate=1.0), until=until)
    psu = model.classes[0]
    mu = 1000.0 * (1 - f + f / m)  # E[life]: 840 h
    second = 2 * 1000.0**2 * (1 - f + f / m**2)  # E[life^2]
    # E N(t) = t/mu + E[L^2]/(2 mu^2) - 1 + o(1); Var N(t) ~ t Var(L) / mu^3
    expected = units * (until / mu + second / (2 * mu**2) - 1)
    sd = math.sqrt(units * until * (second - mu**2) / mu**3)
    assert psu.failures == pytest.approx(expected, abs=4 * sd)
    # the lot stayed with the slot instead, it would be N T (1 - f + f m) / MTBF: 4320
    assert abs(units * until * (1 - f + f * m) / 1000.0 - psu.failures) > 20 * sd
    # the units in place now: a bad one is replaced m times as often, so the
    # share of bad units in place is length-biased, f (mu_bad / mu), not f
    share = f * (1000.0 / m) / mu  # 4.8 %
    n_bad = int(np.count_nonzero(psu.accel == m))
    assert n_bad == pytest.approx(share * units, abs=4 * math.sqrt(units * share * (1 - share)))
    assert abs(n_bad - f * units) > 4 * math.sqrt(units * share * (1 - share))
    assert not np.array_equal(psu.accel, sink.first_lots["psu"])


def test_without_a_bad_lot_every_clock_runs_at_the_nominal_rate():
    model, _ = run_model(bad_lot(0.0, 5.0), until=10.0)
    assert np.all(model.classes[0].accel == 1.0)
    model, _ = run_model(bad_lot(1.0, 5.0), until=10.0)
    assert np.all(model.classes[0].accel == 5.0)


def test_an_instantly_reset_unit_past_a_deterministic_life_does_not_stop_the_clock():
    # a fixed life of 10 h and an instant automated fix: the unit keeps its age and
    # runs another full life each time, failing at 10, 20, 30 h (not forever at 10 h)
    data = {"hall": {"systems_per_rack": 1}, "components": {"psu": {
        "failure": {"dist": "deterministic", "value": "10 h"}, "escalate_probability": 0.0}}}
    scenario = quiet_scenario(**data)
    sink = ListSink()
    model = build(scenario, seed=1, sink=sink)
    until = 35.0
    for _ in range(10_000):  # bounded: the old bug was an endless loop at t = 10 h
        if model.env.peek() > until:
            break
        model.env.step()
    assert model.env.peek() > until  # the clock got past 35 h
    model.recorder.flush()
    psu = model.classes[0]
    for unit in range(psu.count):
        scope = psu.unit_scope(unit)
        mine = [(e.t, e.kind) for e in sink.events if e.scope == scope]
        assert mine == [(t, kind) for t in (10.0, 20.0, 30.0) for kind in ("failure", "repaired")]
    assert psu.failures == 3 * psu.count == model.shop.auto_fixed
    assert not psu.installed.any()  # never renewed: the same units, older


def test_an_instantly_reset_lognormal_unit_far_past_its_median_does_not_stop_the_clock():
    scenario = quiet_scenario(hall={"systems_per_rack": 1}, components={"psu": {
        "count": 1, "required": 1, "escalate_probability": 0.0,
        "failure": {"dist": "lognormal", "median": "5 h", "sigma": 0.1}}})
    model = build(scenario, seed=1)
    for _ in range(10_000):  # bounded: the bug is an endless loop at t = 11.36 h
        if model.env.peek() > 20.0:
            break
        model.env.step()
    assert model.env.peek() > 20.0
