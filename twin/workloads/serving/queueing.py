"""Queueing delay of a deployment: M/M/c (Erlang C) with non-preemptive priorities.

A deployment's servers are its sequence slots (batch x replicas serving);
each holds one request while it decodes. With requests arriving as a Poisson
stream and exponential service, the chance that a request waits is Erlang's C
formula, and with priority classes served first-come first-served within a
class and never pre-empted, Cobham's formula gives each class's mean wait:

    W_k = C(c, a) / (c mu) / ((1 - s_{k-1}) (1 - s_k)),   s_k = sum_{j <= k} rho_j

(classes in order, highest priority first; for one class it is the M/M/c mean
wait C / (c mu - lambda)). The wait of a class is taken as 0 with probability
1 - C and exponential with mean W_k / C otherwise, which is exact for one
class. Every function is vectorized over arrays of intervals.
"""

from __future__ import annotations

import numpy as np

__all__ = ["erlang_c", "priority_waits", "wait_exceeds", "mixture_quantile", "NEGLIGIBLE"]

# A chance of waiting below this is taken as 0: no KPI can show it (1 - C is 1 to the
# last bit, and a mean wait of C x a service time is below an attosecond).
NEGLIGIBLE = 2.0**-60


def erlang_c(servers: np.ndarray, load: np.ndarray) -> np.ndarray:
    """Probability that an arrival waits in M/M/c with `servers` c and offered `load`
    a = lambda / mu (in servers), for a < c; 0 where there is no load.

    Through Erlang B = pmf(c; a) / cdf(c; a) of a Poisson law of mean a (stable
    for thousands of servers), then C = B / (1 - (a / c)(1 - B)).
    """
    from scipy.special import gammaln, pdtr  # here: scipy loads in ~0.2 s

    c = np.asarray(servers, dtype=float)
    a = np.asarray(load, dtype=float)
    busy = (a > 0) & (c > 0)
    safe_a, safe_c = np.where(busy, a, 1.0), np.where(busy, c, 1.0)
    pmf = np.exp(safe_c * np.log(safe_a) - safe_a - gammaln(safe_c + 1))
    rho = safe_a / safe_c
    # The Poisson cdf (an incomplete gamma function) is the costly part, and thousands of
    # servers below full load wait with a chance like 1e-70. Where c >= a + 1 the cdf is
    # at least 1/2 (a Poisson law's median is below a + 1/3), so C <= 2 pmf / (1 - rho):
    # where that bound is below `NEGLIGIBLE` the chance is taken as 0.
    need = busy & ~((safe_c >= safe_a + 1) & (2 * pmf < NEGLIGIBLE * (1 - rho)))
    out = np.zeros(np.broadcast(c, a).shape)
    b = pmf[need] / pdtr(safe_c[need], safe_a[need])
    out[need] = b / (1.0 - rho[need] * (1.0 - b))
    return out


def priority_waits(
    wait_chance: np.ndarray, service_rate: np.ndarray, loads: list[np.ndarray]
) -> list[np.ndarray]:
    """Mean wait of each priority class (Cobham): `wait_chance` C, `service_rate` c mu
    (requests per second of all servers), `loads` each class's rho_k = lambda_k / (c mu),
    highest priority first. Seconds, 0 where C is 0."""
    out = []
    below = np.zeros_like(np.asarray(wait_chance, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        for rho in loads:
            above = below + rho
            w = wait_chance / service_rate / ((1.0 - below) * (1.0 - above))
            out.append(np.where(wait_chance > 0, w, 0.0))
            below = above
    return out


def wait_exceeds(x: np.ndarray, wait_chance: np.ndarray, mean_wait: np.ndarray) -> np.ndarray:
    """P(wait > x): C exp(-C x / W); for x < 0, 1."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tail = wait_chance * np.exp(-wait_chance * np.maximum(x, 0.0) / mean_wait)
    tail = np.where(mean_wait > 0, tail, 0.0)
    return np.where(x < 0, 1.0, tail)


def mixture_quantile(
    q: float, weights: np.ndarray, wait_chance: np.ndarray, mean_wait: np.ndarray
) -> float:
    """The `q` quantile of the wait over a mixture of intervals (each with its C and W,
    weighted by its requests), by bisection to a relative 1e-12."""
    weights = np.asarray(weights, dtype=float)
    total = weights.sum()
    if total <= 0:
        return float("nan")
    target = (1.0 - q) * total
    if float((weights * wait_exceeds(np.zeros(1), wait_chance, mean_wait)).sum()) <= target:
        return 0.0
    keep = (weights > 0) & (wait_chance > 1.0 - q)
    lo, hi = 0.0, float(np.max(mean_wait[keep] / wait_chance[keep]
                               * np.log(wait_chance[keep] / (1.0 - q))))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if float((weights * wait_exceeds(np.full(1, mid), wait_chance, mean_wait)).sum()) > target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return 0.5 * (lo + hi)
