"""SQL functions PostgreSQL has and SQLite lacks, registered on every SQLite connection.

The views and example queries are one SQL text for both backends; where
SQLite lacks a function PostgreSQL has, it is given one here with
PostgreSQL's meaning: the sample and population variance and standard
deviation aggregates (NULLs skipped; fewer than two values give NULL for the
sample ones, as on PostgreSQL), `split_part` (used to give events their row
and rack) and, for SQLite builds without the math functions, `sqrt`.
`storage.engines` calls `register` on each connection it opens, writing or
reading. Another program opening the file (the sqlite3 shell) lacks them:
the views that use them fail there, the tables read as ever.
"""

from __future__ import annotations

import math
import sqlite3

__all__ = ["register"]


class _Moments:
    """Welford's running mean and sum of squared deviations of the non-NULL values."""

    sample = True
    root = True

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0

    def step(self, value: float | None) -> None:
        if value is None:
            return
        self.n += 1
        delta = float(value) - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (float(value) - self.mean)

    def finalize(self) -> float | None:
        count = self.n - 1 if self.sample else self.n
        if count < 1:
            return None
        variance = max(self.m2, 0.0) / count
        return math.sqrt(variance) if self.root else variance


def _kind(sample: bool, root: bool) -> type[_Moments]:
    return type("Moments", (_Moments,), {"sample": sample, "root": root})


_AGGREGATES = {
    "stddev_samp": _kind(sample=True, root=True),
    "stddev": _kind(sample=True, root=True),
    "stddev_pop": _kind(sample=False, root=True),
    "var_samp": _kind(sample=True, root=False),
    "variance": _kind(sample=True, root=False),
    "var_pop": _kind(sample=False, root=False),
}


def _split_part(text: str | None, delimiter: str | None, n: int | None) -> str | None:
    """PostgreSQL's split_part: field `n` (1-based; negative counts from the end), '' past
    the last."""
    if text is None or delimiter is None or n is None:
        return None
    if n == 0:
        raise ValueError("split_part: field position must not be zero")
    parts = text.split(delimiter) if delimiter else [text]
    if abs(n) > len(parts):
        return ""
    return parts[n - 1] if n > 0 else parts[n]


def _sqrt(value: float | None) -> float | None:
    if value is None:
        return None
    return math.sqrt(value) if value >= 0 else None


def register(conn: sqlite3.Connection) -> None:
    """Give `conn` the functions above (deterministic, so usable in views and indexes)."""
    for name, aggregate in _AGGREGATES.items():
        conn.create_aggregate(name, 1, aggregate)  # type: ignore[arg-type]
    conn.create_function("split_part", 3, _split_part, deterministic=True)
    try:
        conn.execute("SELECT sqrt(4.0)")
    except sqlite3.OperationalError:  # built without SQLITE_ENABLE_MATH_FUNCTIONS
        conn.create_function("sqrt", 1, _sqrt, deterministic=True)
