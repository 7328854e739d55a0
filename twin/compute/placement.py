"""Placement strategies: which systems of the hall each replica of a deployment gets.

A strategy has a name and one verb, `place(hall, replicas, systems, free,
domains=None)`: given which systems may be used (`free`, bool per system),
it returns the system indices of each replica, shape (replicas, systems), or
raises `PlacementError` saying how many systems were missing. Both
strategies keep each replica's systems in the fewest adjacent racks of one
row they can find (the wafer-to-wafer hops stay short); they differ in where
the replicas go relative to each other:

- `pack`: each replica in the tightest window of racks anywhere, filling
  the hall from its first row: a deployment stays compact, and a replica
  touches as few failure domains as it can;
- `spread`: each replica where the deployment's other replicas are fewest,
  domain level by level (then in the emptiest place, then the tightest
  window, then the first), so a domain-level outage takes down as few
  replicas as possible.

`domains` are the failure domains: an int array (levels, systems), the
domain of each system at each level, coarsest first. Without it the only
level is the hall's rows (spread: one replica per row while rows remain).
A facility gives two (`twin.facility.failure_domains`): the CDU loop (a
row) and the rack PDUs (a rack), so spread also keeps a deployment's
replicas out of each other's racks while it can.

A replica that fits in no single row takes free systems across rows.
"""

from __future__ import annotations

from functools import partial
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

    def place(
        self, hall: Hall, replicas: int, systems: int, free: np.ndarray,
        domains: np.ndarray | None = None,
    ) -> np.ndarray:
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


def _domains(hall: Hall, domains: np.ndarray | None) -> np.ndarray:
    """The failure domains (levels, systems): the hall's rows unless given."""
    if domains is None:
        return hall.row_of[None, :]
    domains = np.asarray(domains)
    if domains.ndim != 2 or domains.shape[1] != hall.n_systems or domains.shape[0] < 1:
        raise ValueError(f"domains: expected an int array (levels, {hall.n_systems}), "
                         f"got shape {domains.shape}")
    return domains


def _windows(
    hall: Hall, free: np.ndarray, systems: int
) -> list[tuple[int, int, int, np.ndarray]]:
    """Every candidate window: for each row and each first rack, the fewest adjacent
    racks from there holding `systems` free systems, as (row, span, first rack in
    the row, the first `systems` free systems in it)."""
    per_rack, racks = hall.systems_per_rack, hall.racks_per_row
    out = []
    for row in range(hall.rows):
        lo = row * racks * per_rack
        row_free = free[lo:lo + racks * per_rack]
        cum = np.concatenate([[0], np.cumsum(row_free.reshape(racks, per_rack).sum(axis=1))])
        if cum[-1] < systems:
            continue
        for start in range(racks):
            span = int(np.searchsorted(cum, cum[start] + systems)) - start
            if start + span > racks:
                break
            window = row_free[start * per_rack:(start + span) * per_rack]
            chosen = lo + start * per_rack + np.flatnonzero(window)[:systems]
            out.append((row, span, start, chosen))
    return out


def _take(free: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    free[chosen] = False
    return chosen


def _anywhere(free: np.ndarray, systems: int) -> np.ndarray:
    return _take(free, np.flatnonzero(free)[:systems])


class Pack:
    """Each replica in the tightest window of adjacent racks, rows in order."""

    name = "pack"

    def place(
        self, hall: Hall, replicas: int, systems: int, free: np.ndarray,
        domains: np.ndarray | None = None,
    ) -> np.ndarray:
        free = _check(hall, replicas, systems, free)
        levels = _domains(hall, domains)
        out = np.empty((replicas, systems), dtype=np.int64)
        for r in range(replicas):
            tightest: dict[int, np.ndarray] = {}  # per row its tightest, leftmost window
            for row, _span, _start, chosen in sorted(
                _windows(hall, free, systems), key=lambda w: (w[0], w[1], w[2])
            ):
                tightest.setdefault(row, chosen)
            # the fewest domains level by level, then racks; the first row among equals
            best = min(tightest.values(),
                       key=lambda w: (*_touched(levels, w), _racks(hall, w)), default=None)
            out[r] = _anywhere(free, systems) if best is None else _take(free, best)
        return out


def _racks(hall: Hall, chosen: np.ndarray) -> int:
    return int(np.unique(chosen // hall.systems_per_rack).size)


def _touched(levels: np.ndarray, chosen: np.ndarray) -> list[int]:
    """How many domains of each level the systems `chosen` are in."""
    return [int(np.unique(level[chosen]).size) for level in levels]


class Spread:
    """Replicas of one deployment in different domains, each in adjacent racks."""

    name = "spread"

    def place(
        self, hall: Hall, replicas: int, systems: int, free: np.ndarray,
        domains: np.ndarray | None = None,
    ) -> np.ndarray:
        free = _check(hall, replicas, systems, free)
        levels = _domains(hall, domains)
        out = np.empty((replicas, systems), dtype=np.int64)
        used = [np.zeros(int(level.max()) + 1, dtype=np.int64) for level in levels]
        for r in range(replicas):
            coarse = np.bincount(levels[0], weights=free, minlength=used[0].size)
            key = partial(_spread_key, used, levels, coarse)
            best = min(_windows(hall, free, systems), key=key, default=None)
            if best is None:
                out[r] = _anywhere(free, systems)
            else:
                out[r] = _take(free, best[3])
            for u, level in zip(used, levels, strict=True):
                u[np.unique(level[out[r]])] += 1
        return out


def _spread_key(
    used: list[np.ndarray], levels: np.ndarray, coarse: np.ndarray,
    window: tuple[int, int, int, np.ndarray],
) -> tuple[float, ...]:
    """Spread's order of candidate windows: the replicas of the deployment sharing a
    domain with it, level by level (`used`: replicas per domain); then the most free
    systems in its coarse domains (`coarse`: free per domain), the first row, the
    tightest window in it, the leftmost."""
    row, span, start, chosen = window
    shared = [float(u[np.unique(level[chosen])].sum()) for u, level in zip(used, levels,
                                                                         strict=True)]
    room = float(coarse[np.unique(levels[0][chosen])].sum())
    return (*shared, -room, row, span, start)


PLACEMENTS: dict[str, Placement] = {p.name: p for p in (Pack(), Spread())}
