"""Random streams: one seed per run, one independent stream per mechanism.

Each mechanism asks for its stream by name. The stream is the child of the
run's `SeedSequence` whose spawn key is derived from the name (what
`SeedSequence.spawn` does with a counter), so adding or reordering mechanisms
never shifts the draws of the others, and the same seed gives the same run.

A stream is a numpy `Generator` (`Stream`) whose single draws are made a
block at a time. A run makes tens of thousands of single draws (a life, a
repair stage, the cores a failure kills), and each call into numpy costs
microseconds, up to ten times more in the middle of a run than in a tight
loop; an element of a block costs a list read. The values are the same, in
the same order: numpy fills an array element by element with the very
routine a single call uses, so a block is the next single draws, and
whatever else is asked of the stream (another kind of draw, an array, any
other method) is served from where the single calls would have left it: the
generator is rewound to the block's start and the draws used are replayed.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["Streams", "Stream", "BLOCK"]

BLOCK = 64  # single draws made at once: a few microseconds, wasted at most once a run

_Generator = np.random.Generator
_F64 = np.float64
# the base methods a block is drawn with
_RANDOM, _EXPONENTIAL, _NORMAL = (
    _Generator.random, _Generator.standard_exponential, _Generator.standard_normal
)
_WEIBULL, _GEOMETRIC = _Generator.weibull, _Generator.geometric


class Stream(_Generator):
    """A `numpy.random.Generator` whose single draws of `random`,
    `standard_exponential`, `exponential`, `standard_normal`, `weibull` and
    `geometric` come from blocks of the same draws (see the module)."""

    # slots: attributes in an instance dict of a subclass of numpy's Generator cost
    # ~0.2 us each to read, as much as the draw they save
    __slots__ = ("_method", "_param", "_block", "_used", "_start", "_direct")

    def __init__(self, bit_generator: np.random.BitGenerator) -> None:
        super().__init__(bit_generator)
        # the block in use: the base method it was drawn with and its parameter, its
        # values, how many are used, and the bit generator's state at its start
        self._method: Callable[..., Any] | None = None
        self._param: float | None = None
        self._block: list[Any] = []
        self._used = 0
        self._start: dict[str, Any] = {}
        self._direct = False  # inside a base method (which may call the ones below)

    def _single(self, method: Callable[..., Any], param: float | None) -> Any:
        """The next single draw of `method` (with `param`, if it takes one), from a
        new block: the one in use is used up or of another kind."""
        if method is not self._method or param != self._param:
            self._sync()
            self._method, self._param = method, param
        self._start = _Generator.bit_generator.__get__(self).state
        args = (BLOCK,) if param is None else (param, BLOCK)
        self._block = method(self, *args).tolist()
        self._used = 1
        return self._block[0]

    def _sync(self) -> None:
        """Leave the generator where the single draws so far would have: rewound to
        the block's start and the draws used made again, if some are left."""
        method = self._method
        if method is None:
            return
        used, self._method, self._block = self._used, None, []
        if used < BLOCK:
            _Generator.bit_generator.__get__(self).state = self._start
            if used:
                method(self, *((used,) if self._param is None else (self._param, used)))

    # -- single draws from blocks (anything else: numpy's own, after _sync) --------
    # Each checks the block in use inline: the call to _single costs as much again.
    def random(self, size: Any = None, dtype: Any = _F64, out: Any = None) -> Any:
        if size is None and dtype is _F64 and out is None and not self._direct:
            used = self._used
            if self._method is _RANDOM and used < BLOCK:
                self._used = used + 1
                return self._block[used]
            return self._single(_RANDOM, None)
        return self._base(_RANDOM, size, dtype, out)

    def standard_exponential(
        self, size: Any = None, dtype: Any = _F64, method: str = "zig", out: Any = None
    ) -> Any:
        if size is None and dtype is _F64 and method == "zig" and out is None and not self._direct:
            used = self._used
            if self._method is _EXPONENTIAL and used < BLOCK:
                self._used = used + 1
                return self._block[used]
            return self._single(_EXPONENTIAL, None)
        return self._base(_EXPONENTIAL, size, dtype, method, out)

    def exponential(self, scale: Any = 1.0, size: Any = None) -> Any:
        # numpy draws scale times a standard exponential
        if size is None and isinstance(scale, float) and scale >= 0.0 and not self._direct:
            return float(scale * self.standard_exponential())
        return self._base(_Generator.exponential, scale, size)

    def standard_normal(self, size: Any = None, dtype: Any = _F64, out: Any = None) -> Any:
        if size is None and dtype is _F64 and out is None and not self._direct:
            used = self._used
            if self._method is _NORMAL and used < BLOCK:
                self._used = used + 1
                return self._block[used]
            return self._single(_NORMAL, None)
        return self._base(_NORMAL, size, dtype, out)

    def weibull(self, a: Any, size: Any = None) -> Any:
        if size is None and isinstance(a, float) and a > 0.0 and not self._direct:
            used = self._used
            if self._method is _WEIBULL and a == self._param and used < BLOCK:
                self._used = used + 1
                return self._block[used]
            return self._single(_WEIBULL, a)
        return self._base(_WEIBULL, a, size)

    def geometric(self, p: Any, size: Any = None) -> Any:
        if size is None and isinstance(p, float) and 0.0 < p <= 1.0 and not self._direct:
            used = self._used
            if self._method is _GEOMETRIC and p == self._param and used < BLOCK:
                self._used = used + 1
                return self._block[used]
            return self._single(_GEOMETRIC, p)
        return self._base(_GEOMETRIC, p, size)

    def _base(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """numpy's own `method`, from where the single draws left the generator."""
        self._sync()
        direct, self._direct = self._direct, True
        try:
            return method(self, *args, **kwargs)
        finally:
            self._direct = direct

    @property
    def bit_generator(self) -> np.random.BitGenerator:  # type: ignore[override]
        self._sync()
        return _Generator.bit_generator.__get__(self)  # type: ignore[no-any-return]


def _through_base(name: str) -> Callable[..., Any]:
    method = getattr(_Generator, name)

    @functools.wraps(method)
    def call(self: Stream, *args: Any, **kwargs: Any) -> Any:
        return self._base(method, *args, **kwargs)

    return call


# every other public method of Generator draws from where the single draws left it
for _name in dir(_Generator):
    if not _name.startswith("_") and _name not in Stream.__dict__:
        if callable(getattr(_Generator, _name)):
            setattr(Stream, _name, _through_base(_name))


class Streams:
    """Named, independent `numpy.random.Generator` streams for one run."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._streams: dict[str, np.random.Generator] = {}

    def __getitem__(self, name: str) -> np.random.Generator:
        rng = self._streams.get(name)
        if rng is None:
            key = (zlib.crc32(name.encode()),)
            rng = Stream(np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=key)))
            self._streams[name] = rng
        return rng
