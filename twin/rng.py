"""Random streams: one seed per run, one independent stream per mechanism.

Each mechanism asks for its stream by name. The stream is the child of the
run's `SeedSequence` whose spawn key is derived from the name (what
`SeedSequence.spawn` does with a counter), so adding or reordering mechanisms
never shifts the draws of the others, and the same seed gives the same run.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["Streams"]


class Streams:
    """Named, independent `numpy.random.Generator` streams for one run."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._streams: dict[str, np.random.Generator] = {}

    def __getitem__(self, name: str) -> np.random.Generator:
        rng = self._streams.get(name)
        if rng is None:
            key = (zlib.crc32(name.encode()),)
            rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))
            self._streams[name] = rng
        return rng
