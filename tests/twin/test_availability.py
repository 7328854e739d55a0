"""k-out-of-n availability with repair, against the closed forms of sources D7.

A class of n units of which k must run, exponential lives (rate lam) and
exponential repairs (rate mu), everything else quiet (instant diagnosis, no
automated fix, no boot time). The number of units down in a system is then a
birth-death chain; with as many crews as units the units are independent and
A = sum_{i>=k} C(n,i) a^i (1-a)^(n-i), a = mu/(lam+mu) (as with crews =
"unlimited", whatever the number of units); with one crew for a
1-of-2 system U = 2 lam^2 / (2 lam^2 + 2 lam mu + mu^2).

Tolerances are 4 standard errors of the time average. The standard error
comes from the chain itself: the asymptotic variance of (1/T) int f(X_t) dt
is 2 <pi, f g> / T, with f = 1{up} - A and Q g = -f (the Poisson equation),
and N independent systems divide it by N.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from twinkit import quiet_scenario

from twin.engine import simulate

LAM, MU = 1 / 100, 1 / 10  # downtime is frequent enough to estimate quickly


def k_of_n(n: int, k: int, failure: dict, repair: dict, systems: int, crews: int | str):
    return quiet_scenario(
        hall={"systems_per_rack": systems},
        repair={"crews": crews},
        components={"psu": {"count": n, "required": k, "failure": failure, "repair": repair}},
    )


def exponential(mean_h: float) -> dict:
    return {"dist": "exponential", "mean": f"{mean_h} h"}


def birth_death(n: int, k: int, lam: float, mu: float, crews: int):
    """Stationary law, availability and asymptotic variance of the k-of-n chain."""
    Q = np.zeros((n + 1, n + 1))
    for j in range(n + 1):
        if j < n:
            Q[j, j + 1] = (n - j) * lam
        if j > 0:
            Q[j, j - 1] = min(j, crews) * mu
        Q[j, j] = -Q[j].sum()
    pi = np.linalg.lstsq(np.vstack([Q.T, np.ones(n + 1)]), np.r_[np.zeros(n + 1), 1.0],
                         rcond=None)[0]
    up = (np.arange(n + 1) <= n - k).astype(float)
    availability = float(pi @ up)
    f = up - availability
    g = np.linalg.lstsq(np.vstack([Q, pi]), np.r_[-f, 0.0], rcond=None)[0]
    return pi, availability, float(2 * pi @ (f * g))


def binomial_availability(n: int, k: int, lam: float, mu: float) -> float:
    a = mu / (lam + mu)
    return sum(math.comb(n, i) * a**i * (1 - a) ** (n - i) for i in range(k, n + 1))


def one_of_two_single_crew_unavailability(lam: float, mu: float) -> float:
    return 2 * lam**2 / (2 * lam**2 + 2 * lam * mu + mu**2)


def test_the_chain_reproduces_the_facts_d7_single_crew_vector():
    lam, mu = 1 / 50_000, 1 / 8
    closed = one_of_two_single_crew_unavailability(lam, mu)
    assert closed == pytest.approx(5.118e-8, rel=1e-3)
    _, availability, _ = birth_death(2, 1, lam, mu, crews=1)
    assert 1 - availability == pytest.approx(closed, rel=1e-6)


def test_the_chain_with_a_crew_per_unit_is_the_binomial_formula():
    for n, k in ((2, 1), (3, 2), (12, 6), (4, 3)):
        _, availability, _ = birth_death(n, k, LAM, MU, crews=n)
        assert availability == pytest.approx(binomial_availability(n, k, LAM, MU), rel=1e-9)


@pytest.fixture(scope="module")
def two_of_three():
    """40 systems, 2 of 3 units needed, a crew for every unit, 20,000 h."""
    systems, until = 40, 20_000.0
    scenario = k_of_n(3, 2, exponential(100), exponential(10), systems, crews=1_000)
    return systems, until, simulate(scenario, seed=7, until=until).kpis


def test_k_of_n_with_independent_repair_has_the_binomial_availability(two_of_three):
    systems, until, kpis = two_of_three
    _, _, var = birth_death(3, 2, LAM, MU, crews=3)
    expected = binomial_availability(3, 2, LAM, MU)  # 1 - 31/1331 = 0.9767
    se = math.sqrt(var / (until * systems))  # ~5.7e-4
    assert kpis["availability"] == pytest.approx(expected, abs=4 * se)
    # and clearly not a 1-of-3 or 3-of-3 system
    assert abs(kpis["availability"] - binomial_availability(3, 3, LAM, MU)) > 20 * se


def test_failures_are_unit_up_time_over_mtbf(two_of_three):
    systems, until, kpis = two_of_three
    units = 3 * systems
    a = MU / (LAM + MU)
    # a unit that starts up: E[up time in [0,T]] = aT + (1-a)(1 - e^-(lam+mu)T)/(lam+mu)
    up_h = a * until + (1 - a) * (1 - math.exp(-(LAM + MU) * until)) / (LAM + MU)
    expected = units * LAM * up_h
    # alternating renewal: Var N(T) ~ T var(cycle)/mean(cycle)^3 per unit
    cycle_mean, cycle_var = 1 / LAM + 1 / MU, 1 / LAM**2 + 1 / MU**2
    sd = math.sqrt(units * until * cycle_var / cycle_mean**3)
    assert kpis["failures.psu"] == pytest.approx(expected, abs=4 * sd)
    # every repair took the exponential repair time: mean 10 h, 4 SE
    assert kpis["mttr_h.psu"] == pytest.approx(10.0, abs=4 * 10.0 / math.sqrt(kpis["failures.psu"]))


def test_unlimited_crews_give_the_independent_repair_availability():
    # repair.crews = "unlimited": no fault ever waits, each unit is up with a = mu/(lam+mu)
    systems, until = 10, 30_000.0
    kpis = simulate(k_of_n(3, 2, exponential(100), exponential(10), systems, crews="unlimited"),
                    seed=17, until=until).kpis
    _, _, var = birth_death(3, 2, LAM, MU, crews=3)
    se = math.sqrt(var / (until * systems))  # ~9.3e-4
    assert kpis["availability"] == pytest.approx(binomial_availability(3, 2, LAM, MU), abs=4 * se)
    # a crew per system would leave 1 - A = 0.0483, twice the 0.0233 of unlimited crews
    _, one_crew, _ = birth_death(3, 2, LAM, MU, crews=1)
    assert kpis["availability"] - one_crew > 20 * se
    assert kpis["repair.crew_utilization"] == 0.0


def test_one_of_two_with_a_single_crew_has_the_closed_form_unavailability():
    until = 1_000_000.0  # one system: the crews are the hall's
    kpis = simulate(k_of_n(2, 1, exponential(100), exponential(10), 1, crews=1),
                    seed=3, until=until).kpis
    closed = one_of_two_single_crew_unavailability(LAM, MU)  # 0.01639
    _, _, var = birth_death(2, 1, LAM, MU, crews=1)
    se = math.sqrt(var / until)  # ~5.8e-4
    assert 1 - kpis["availability"] == pytest.approx(closed, abs=4 * se)
    # with a crew per unit it would be (lam/(lam+mu))^2 = 0.00826: 14 SE away
    independent = 1 - binomial_availability(2, 1, LAM, MU)
    assert abs((1 - kpis["availability"]) - independent) > 8 * se


def test_inherent_availability_depends_only_on_mtbf_and_mttr():
    # 1 of 1, Weibull wear-out lives (mean 100 h) and lognormal repairs (mean
    # 10 h): an alternating renewal process, A = MTBF / (MTBF + MTTR).
    systems, until = 40, 20_000.0
    shape = 2.0
    scale = 100.0 / math.gamma(1 + 1 / shape)
    sigma = 0.5
    median = 10.0 / math.exp(sigma**2 / 2)
    scenario = k_of_n(
        1, 1, {"dist": "weibull", "shape": shape, "scale": f"{scale!r} h"},
        {"dist": "lognormal", "median": f"{median!r} h", "sigma": sigma}, systems, crews=1_000)
    kpis = simulate(scenario, seed=11, until=until).kpis
    a = 100.0 / 110.0
    var_up = scale**2 * (math.gamma(1 + 2 / shape) - math.gamma(1 + 1 / shape) ** 2)
    var_down = (math.exp(sigma**2) - 1) * 10.0**2
    # delta method on sum(U)/sum(U + D): ((1-a)^2 var U + a^2 var D) / (T m) per system
    se = math.sqrt(((1 - a) ** 2 * var_up + a**2 * var_down) / (until * 110.0) / systems)
    assert kpis["availability"] == pytest.approx(a, abs=4 * se)


def test_k_of_n_with_fewer_crews_than_units_follows_the_birth_death_chain():
    # 2 of 3 with one crew: 1 - A = 0.0483, twice the independent-repair 0.0233
    until = 300_000.0
    kpis = simulate(k_of_n(3, 2, exponential(100), exponential(10), 1, crews=1),
                    seed=5, until=until).kpis
    _, availability, var = birth_death(3, 2, LAM, MU, crews=1)
    se = math.sqrt(var / until)  # ~2.0e-3
    assert kpis["availability"] == pytest.approx(availability, abs=4 * se)
    assert abs(kpis["availability"] - binomial_availability(3, 2, LAM, MU)) > 8 * se


@pytest.mark.slow
@pytest.mark.parametrize("n, k, crews", [(2, 1, 1), (3, 2, 1), (4, 2, 2), (4, 3, 2), (3, 1, 3)])
def test_k_of_n_availability_over_a_long_run_follows_the_chain(n, k, crews):
    until = 3_000_000.0  # ~3 times tighter than the fast versions above
    kpis = simulate(k_of_n(n, k, exponential(100), exponential(10), 1, crews=crews),
                    seed=13, until=until).kpis
    _, availability, var = birth_death(n, k, LAM, MU, crews=crews)
    assert kpis["availability"] == pytest.approx(availability, abs=4 * math.sqrt(var / until))
