"""Placement strategies: which systems of the hall each replica of a deployment gets.

A strategy has a name and one verb, `place(hall, replicas, systems, free)`:
given which systems may be used (`free`, bool per system), it returns the
system indices of each replica, shape (replicas, systems), or raises
`PlacementError` saying how many systems were missing. Both strategies keep
each replica's systems in the fewest adjacent racks of one row they can
find (the wafer-to-wafer hops stay short); they differ in where the replicas
go relative to each other:

- `pack`: each replica in the tightest window of racks anywhere, filling
  the hall from its first row: a deployment stays compact;
- `spread`: each replica in a different row from the deployment's others
  while rows remain (the row with the fewest of them, then the most free
  systems), so a row-level outage takes down as few replicas as possible.

A replica that fits in no single row takes free systems across rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from twin.hall import Hall

__all__ = ["Placement", "PlacementError", "Pack", "Spread", "PLACEMENTS"]


class PlacementError(ValueError):
    """Too few free systems for the replicas asked for."""

    def __init__(self, message: str, missing: int) -> None:
        super().__init__(message)
        self.missing = missing


class Placement(Protocol):
    name: str

    def place(self, hall: Hall, replicas: int, systems: int, free: np.ndarray) -> np.ndarray:
        ...


def _check(hall: Hall, replicas: int, systems: int, free: np.ndarray) -> np.ndarray:
    free = np.asarray(free, dtype=bool)
    if free.shape != (hall.n_systems,):
        raise ValueError(f"free: expected {hall.n_systems} booleans, one per system, "
                         f"got shape {free.shape}")
    if replicas < 0 or systems < 1:
        raise ValueError("replicas >= 0 and systems >= 1 expected")
    missing = replicas * systems - int(free.sum())
    if missing > 0:
        raise PlacementError(f"{replicas} replica(s) of {systems} system(s) need "
                             f"{replicas * systems} free systems, {int(free.sum())} are free: "
                             f"{missing} missing", missing)
    return free.copy()


def _window(hall: Hall, free: np.ndarray, row: int, systems: int) -> np.ndarray | None:
    """The free systems of the fewest adjacent racks of `row` holding `systems` of
    them (the leftmost such window), or None if the row has too few."""
    per_rack = hall.systems_per_rack
    lo = row * hall.racks_per_row * per_rack
    row_free = free[lo:lo + hall.racks_per_row * per_rack]
    if row_free.sum() < systems:
        return None
    counts = row_free.reshape(hall.racks_per_row, per_rack).sum(axis=1)
    cum = np.concatenate([[0], np.cumsum(counts)])
    for span in range(1, hall.racks_per_row + 1):
        enough = np.flatnonzero(cum[span:] - cum[:-span] >= systems)
        if enough.size:
            start = int(enough[0]) * per_rack
            chosen = np.flatnonzero(row_free[start:start + span * per_rack])[:systems]
            return lo + start + chosen
    return None


def _take(free: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    free[chosen] = False
    return chosen


def _anywhere(free: np.ndarray, systems: int) -> np.ndarray:
    return _take(free, np.flatnonzero(free)[:systems])


class Pack:
    """Each replica in the tightest window of adjacent racks, rows in order."""

    name = "pack"

    def place(self, hall: Hall, replicas: int, systems: int, free: np.ndarray) -> np.ndarray:
        free = _check(hall, replicas, systems, free)
        out = np.empty((replicas, systems), dtype=np.int64)
        for r in range(replicas):
            windows = [w for row in range(hall.rows)
                       if (w := _window(hall, free, row, systems)) is not None]
            # the fewest racks; the first row among equals
            best = min(windows, key=lambda w: _racks(hall, w), default=None)
            out[r] = _anywhere(free, systems) if best is None else _take(free, best)
        return out


def _racks(hall: Hall, chosen: np.ndarray) -> int:
    return int(np.unique(chosen // hall.systems_per_rack).size)


class Spread:
    """Replicas of one deployment in different rows, each in adjacent racks."""

    name = "spread"

    def place(self, hall: Hall, replicas: int, systems: int, free: np.ndarray) -> np.ndarray:
        free = _check(hall, replicas, systems, free)
        out = np.empty((replicas, systems), dtype=np.int64)
        used_rows = np.zeros(hall.rows, dtype=np.int64)  # replicas of this deployment per row
        for r in range(replicas):
            free_per_row = free.reshape(hall.rows, -1).sum(axis=1)
            # rows with fewest of this deployment first, then the emptiest
            for row in np.lexsort((-free_per_row, used_rows)):
                window = _window(hall, free, int(row), systems)
                if window is not None:
                    out[r] = _take(free, window)
                    used_rows[row] += 1
                    break
            else:
                out[r] = _anywhere(free, systems)
        return out


PLACEMENTS: dict[str, Placement] = {p.name: p for p in (Pack(), Spread())}
