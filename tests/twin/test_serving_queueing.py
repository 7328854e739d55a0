"""Erlang C, Cobham's priority waits and the wait quantile against textbook values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.workloads.serving.queueing import (
    erlang_c,
    mixture_quantile,
    priority_waits,
    wait_exceeds,
)


def erlang_c_by_sums(c: int, a: float) -> float:
    """The textbook formula, term by term (Kleinrock, Queueing Systems I, eq. 3.40)."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


@pytest.mark.parametrize(
    ("c", "a", "expected"),
    [
        (1, 0.5, 0.5),  # M/M/1: the chance of waiting is rho
        (2, 1.0, 1 / 3),  # M/M/2 at rho = 1/2: 1/3
        (10, 8.0, 0.409),  # a staffing-table value: 10 agents, 8 erlangs -> 40.9 %
    ],
)
def test_erlang_c_matches_textbook_values(c, a, expected):
    assert erlang_c(np.array([c]), np.array([a]))[0] == pytest.approx(expected, abs=5e-4)


@pytest.mark.parametrize(("c", "a"), [(3, 2.5), (20, 15.0), (60, 50.0), (100, 99.0)])
def test_erlang_c_matches_the_formula_term_by_term(c, a):
    assert erlang_c(np.array([c]), np.array([a]))[0] == pytest.approx(
        erlang_c_by_sums(c, a), rel=1e-9
    )


def test_erlang_c_stays_finite_for_thousands_of_servers_and_is_zero_without_load():
    c = erlang_c(np.array([4096.0, 4096.0, 8.0]), np.array([4000.0, 3000.0, 0.0]))
    assert 0 < c[0] < 1 and 0 <= c[1] < c[0] and c[2] == 0.0


def test_one_priority_class_waits_as_m_m_c():
    # M/M/2, lambda = 1, mu = 1 per server: W = C / (c mu - lambda) = (1/3) / 1
    chance = erlang_c(np.array([2.0]), np.array([1.0]))
    (w,) = priority_waits(chance, np.array([2.0]), [np.array([0.5])])
    assert w[0] == pytest.approx(1 / 3, rel=1e-12)


def test_cobham_waits_for_two_classes():
    # M/M/1 (C = rho = 0.8), c mu = 1, rho_1 = 0.3, rho_2 = 0.5:
    # W_1 = 0.8 / (1 - 0.3) and W_2 = 0.8 / ((1 - 0.3)(1 - 0.8))
    w1, w2 = priority_waits(np.array([0.8]), np.array([1.0]), [np.array([0.3]), np.array([0.5])])
    assert w1[0] == pytest.approx(0.8 / 0.7, rel=1e-12)
    assert w2[0] == pytest.approx(0.8 / (0.7 * 0.2), rel=1e-12)
    # the request-weighted mean over classes is the FCFS mean wait (conservation)
    assert (0.3 * w1[0] + 0.5 * w2[0]) / 0.8 == pytest.approx(0.8 / (1 - 0.8), rel=1e-12)


def test_the_wait_tail_and_its_quantile_are_the_m_m_c_ones():
    # M/M/c: P(W > x) = C exp(-(c mu - lambda) x); W = C / (c mu - lambda)
    chance, mean = np.array([0.4]), np.array([0.4 / 2.0])
    assert wait_exceeds(np.array([1.5]), chance, mean)[0] == pytest.approx(
        0.4 * math.exp(-2.0 * 1.5), rel=1e-12)
    p99 = mixture_quantile(0.99, np.array([1.0]), chance, mean)
    assert p99 == pytest.approx(math.log(0.4 / 0.01) / 2.0, rel=1e-9)
    assert mixture_quantile(0.99, np.array([1.0]), np.array([0.005]), mean) == 0.0


def test_the_quantile_of_a_mixture_solves_its_tail_equation():
    weights = np.array([3.0, 1.0])
    chance, mean = np.array([0.2, 0.9]), np.array([0.1, 2.0])
    q = mixture_quantile(0.99, weights, chance, mean)
    tail = (weights * wait_exceeds(np.full(2, q), chance, mean)).sum() / weights.sum()
    assert tail == pytest.approx(0.01, rel=1e-9)


def test_a_chance_of_waiting_no_kpi_can_show_is_zero_and_the_rest_exact():
    # 4,096 slots at 50 % load wait with a chance far below 2^-60: taken as 0; at 97 %
    # the same slots wait with a chance that the formula gives exactly
    c = erlang_c(np.array([4096.0, 100.0]), np.array([2048.0, 97.0]))
    assert c[0] == 0.0
    assert c[1] == pytest.approx(erlang_c_by_sums(100, 97.0), rel=1e-9)
