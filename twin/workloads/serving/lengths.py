"""Token-length distributions of a tenant's prompts and outputs (scenario data).

Written like the time distributions of `twin.distributions`, in tokens
instead of hours: ``{dist = "lognormal", median = 400, sigma = 0.8}``. The
fluid model needs only the `mean`; the request-level model draws lengths
with `sample` (each at least one token).
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Lengths", "ExponentialLengths", "LognormalLengths", "FixedLengths", "MAX_TOKENS"]

# A prompt or output beyond this is a slip (no model reads 100M tokens at once).
MAX_TOKENS = 100_000_000
_SIGMA = 5.0  # a sigma of 5 spreads lengths over a factor e^5 ~ 150 per sigma


class _Lengths(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` lengths in tokens (integers, at least 1)."""
        raise NotImplementedError

    def mean(self) -> float:
        """Mean length in tokens (of the continuous law, before rounding)."""
        raise NotImplementedError

    def quantiles(self, n: int) -> np.ndarray:
        """The lengths at probabilities (i + 1/2) / n, i = 0 .. n-1: n equally likely
        points that stand for the law in a mean over it (midpoint rule)."""
        raise NotImplementedError


def _midpoints(n: int) -> np.ndarray:
    return (np.arange(n) + 0.5) / n


class ExponentialLengths(_Lengths):
    """Exponential lengths of the given mean (what Erlang C assumes of service)."""

    dist: Literal["exponential"] = "exponential"
    mean_: float = Field(alias="mean", gt=0, le=MAX_TOKENS)

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, strict=True, allow_inf_nan=False
    )

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.maximum(np.rint(rng.exponential(self.mean_, n)), 1).astype(np.int64)

    def mean(self) -> float:
        return self.mean_

    def quantiles(self, n: int) -> np.ndarray:
        return -self.mean_ * np.log1p(-_midpoints(n))


class LognormalLengths(_Lengths):
    """Lognormal lengths given by their median and the sigma of the log."""

    dist: Literal["lognormal"] = "lognormal"
    median: float = Field(gt=0, le=MAX_TOKENS)
    sigma: float = Field(gt=0, le=_SIGMA)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        raw = self.median * np.exp(self.sigma * rng.standard_normal(n))
        return np.clip(np.rint(raw), 1, MAX_TOKENS).astype(np.int64)

    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)

    def quantiles(self, n: int) -> np.ndarray:
        z = np.array([NormalDist().inv_cdf(float(u)) for u in _midpoints(n)])
        return self.median * np.exp(self.sigma * z)


class FixedLengths(_Lengths):
    """Always the same length."""

    dist: Literal["deterministic"] = "deterministic"
    value: int = Field(ge=1, le=MAX_TOKENS)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value, dtype=np.int64)

    def mean(self) -> float:
        return float(self.value)

    def quantiles(self, n: int) -> np.ndarray:
        return np.full(n, float(self.value))


Lengths = Annotated[
    ExponentialLengths | LognormalLengths | FixedLengths, Field(discriminator="dist")
]
