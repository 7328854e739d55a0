"""Time-to-event distributions named in scenario files, and how to sample them.

A distribution is written ``{dist = "weibull", shape = 1.4, scale = "80000 h"}``.
Every distribution samples a fresh lifetime (`sample`) and a *residual* life
given the age a unit has already survived (`residual`), which is what keeps
each unit's own clock: a renewed unit draws `sample`, a unit that was only
reset draws `residual` at its age. `accel` >= 1 speeds the clock up (a bad
subpopulation): times are divided by it.

`draw` and `draw_residual` are the same draws for one unit, as a float: the
same stream, the same arithmetic in the same order (numpy's functions for
anything past + - * /), so a run gives the same bits either way; they skip
the arrays that cost several microseconds on each of the run's hundreds of
thousands of single draws.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from twin.quantities import Duration, PositiveDuration

__all__ = ["Exponential", "Weibull", "Lognormal", "Deterministic", "Distribution"]

Array = np.ndarray

# The shortest residual life (hours): a reset unit never fails again at the very
# instant it was reset, which would stop the clock.
_TINY = 1e-9


# Parameter bounds (documented in docs/scenarios.md): Weibull shapes from strong infant
# mortality to sharp wear-out (a shape of 0.01 draws lives past 1e300 h); lognormal
# sigmas up to 10 (a factor e^10 ~ 22,000 for one sigma: far wider than any repair time).
WEIBULL_SHAPES = (0.1, 20.0)
MAX_SIGMA = 10.0


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    def sample(self, rng: np.random.Generator, accel: Array | float = 1.0) -> Array:
        """Fresh lifetimes, one per entry of `accel` (hours)."""
        raise NotImplementedError

    def residual(self, rng: np.random.Generator, age: Array, accel: Array | float = 1.0) -> Array:
        """Remaining lifetimes of units that survived `age` hours (hours)."""
        raise NotImplementedError

    def mean(self) -> float:
        """Expected lifetime in hours (accel = 1)."""
        raise NotImplementedError

    def draw(self, rng: np.random.Generator, accel: float = 1.0) -> float:
        """One fresh lifetime (hours): `sample` for a single unit."""
        return float(self.sample(rng, accel))

    def draw_residual(self, rng: np.random.Generator, age: float, accel: float = 1.0) -> float:
        """One remaining lifetime at `age` (hours): `residual` for a single unit."""
        return float(self.residual(rng, np.asarray(age, dtype=float), accel))


def _shape_of(accel: Array | float) -> tuple[int, ...]:
    return np.shape(accel)


class Exponential(_Dist):
    """Memoryless lifetimes with the given mean (the MTBF for a failure process)."""

    dist: Literal["exponential"] = "exponential"
    mean_: PositiveDuration = Field(alias="mean")

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, strict=True, allow_inf_nan=False
    )

    def sample(self, rng: np.random.Generator, accel: Array | float = 1.0) -> Array:
        return rng.exponential(1.0, _shape_of(accel)) * (self.mean_ / np.asarray(accel))

    def residual(self, rng: np.random.Generator, age: Array, accel: Array | float = 1.0) -> Array:
        return self.sample(rng, np.broadcast_to(accel, np.shape(age)))

    def mean(self) -> float:
        return self.mean_

    def draw(self, rng: np.random.Generator, accel: float = 1.0) -> float:
        # exponential(1.0) is 1.0 times the standard draw: the same value
        return rng.standard_exponential() * (self.mean_ / accel)  # type: ignore[no-any-return]

    def draw_residual(self, rng: np.random.Generator, age: float, accel: float = 1.0) -> float:
        return self.draw(rng, accel)


class Weibull(_Dist):
    """Weibull lifetimes: shape > 1 wears out, shape < 1 is infant mortality."""

    dist: Literal["weibull"] = "weibull"
    shape: float = Field(ge=WEIBULL_SHAPES[0], le=WEIBULL_SHAPES[1])
    scale: PositiveDuration

    def sample(self, rng: np.random.Generator, accel: Array | float = 1.0) -> Array:
        return rng.weibull(self.shape, _shape_of(accel)) * (self.scale / np.asarray(accel))

    def residual(self, rng: np.random.Generator, age: Array, accel: Array | float = 1.0) -> Array:
        # S(a + x) / S(a) = U  =>  ((a + x)/s)^k = (a/s)^k + E, E = -ln U; written as
        # x = a (exp(log1p(E (s/a)^k) / k) - 1) so it stays exact far into the tail
        scale = self.scale / np.asarray(accel)
        age = np.asarray(age, dtype=float)
        e = rng.exponential(1.0, age.shape)
        k = self.shape
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            aged = age * np.expm1(np.log1p(e * (scale / age) ** k) / k)
        fresh = scale * e ** (1.0 / k)
        return np.maximum(np.where(age > 0, aged, fresh), _TINY)

    def mean(self) -> float:
        return self.scale * math.gamma(1.0 + 1.0 / self.shape)

    def draw(self, rng: np.random.Generator, accel: float = 1.0) -> float:
        return rng.weibull(self.shape) * (self.scale / accel)  # type: ignore[no-any-return]

    def draw_residual(self, rng: np.random.Generator, age: float, accel: float = 1.0) -> float:
        scale = self.scale / accel
        e = rng.standard_exponential()
        k = self.shape
        # each power taken as `residual` takes it for one unit: (scale / age) is a
        # numpy scalar there (C's pow), e a 0-d array (numpy's power, which turns
        # some exponents, 0.5 or 2, into other functions)
        if age > 0:
            with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
                life = age * np.expm1(np.log1p(e * np.float64(scale / age) ** k) / k)
        else:
            life = scale * np.asarray(e) ** (1.0 / k)
        return max(float(life), _TINY)


class Lognormal(_Dist):
    """Lognormal times given by their median and the sigma of the log."""

    dist: Literal["lognormal"] = "lognormal"
    median: PositiveDuration
    sigma: float = Field(gt=0, le=MAX_SIGMA)

    def sample(self, rng: np.random.Generator, accel: Array | float = 1.0) -> Array:
        z = rng.standard_normal(_shape_of(accel))
        return (self.median / np.asarray(accel)) * np.exp(self.sigma * z)

    def draw(self, rng: np.random.Generator, accel: float = 1.0) -> float:
        return (self.median / accel) * float(np.exp(self.sigma * rng.standard_normal()))

    def residual(self, rng: np.random.Generator, age: Array, accel: Array | float = 1.0) -> Array:
        # Draw in log-survival space, ln S(life) = ln U + ln S(age): it keeps its
        # precision in the far tail, where 1 - F(age) rounds to zero and even
        # S(age) underflows (past ~38 sigmas; the life would come out infinite).
        # scipy.special is imported here, not at the top: it takes ~0.2 s to load,
        # and only a lognormal *failure* law (not a repair time) ever needs it.
        from scipy.special import log_ndtr, ndtri_exp

        median = self.median / np.asarray(accel)
        age = np.asarray(age, dtype=float)
        with np.errstate(divide="ignore"):
            z_age = np.log(np.maximum(age, 1e-300) / median) / self.sigma
        log_survival = log_ndtr(-z_age) + np.log1p(-rng.random(age.shape))
        with np.errstate(over="ignore"):
            life = median * np.exp(-self.sigma * ndtri_exp(log_survival))
        return np.maximum(life - age, _TINY)

    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)


class Deterministic(_Dist):
    """Always the same time."""

    dist: Literal["deterministic"] = "deterministic"
    value: Duration

    def sample(self, rng: np.random.Generator, accel: Array | float = 1.0) -> Array:
        return np.broadcast_to(self.value / np.asarray(accel, dtype=float), _shape_of(accel)).copy()

    def draw(self, rng: np.random.Generator, accel: float = 1.0) -> float:
        return self.value / accel

    def residual(self, rng: np.random.Generator, age: Array, accel: Array | float = 1.0) -> Array:
        # A unit reset at (or past) its fixed life runs another full life: residual
        # lives are always positive, so a reset never fails again at the same instant.
        life = self.sample(rng, np.broadcast_to(accel, np.shape(age)))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(life > 0, life - np.mod(age, np.where(life > 0, life, 1.0)), 0.0)

    def mean(self) -> float:
        return self.value


Distribution = Annotated[
    Exponential | Weibull | Lognormal | Deterministic, Field(discriminator="dist")
]
