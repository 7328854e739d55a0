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

from typing import TYPE_CHECKING, NamedTuple, Protocol

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


class _Windows(NamedTuple):
    """Every candidate window, one per first rack of the hall that has one: the
    fewest adjacent racks of its row from there holding `systems` free systems."""

    row: np.ndarray  # its row
    span: np.ndarray  # racks from the first to the last it takes a system in
    start: np.ndarray  # its first rack, counted in the row
    chosen: np.ndarray  # (windows, systems): the first `systems` free systems from there


def _windows(
    hall: Hall, free: np.ndarray, systems: int, rows: np.ndarray | None = None
) -> _Windows:
    """The windows of the hall, or of `rows` only."""
    per_rack, racks = hall.systems_per_rack, hall.racks_per_row
    where = np.flatnonzero(free)
    if rows is None:
        first = np.arange(hall.n_racks)
    else:
        first = (rows[:, None] * racks + np.arange(racks)).ravel()
    k = np.searchsorted(where, first * per_rack)  # first free system from each rack
    ok = k + systems <= where.size
    first, k = first[ok], k[ok]
    chosen = where[k[:, None] + np.arange(systems)]
    last_rack = chosen[:, -1] // per_rack
    row = first // racks
    ok = last_rack // racks == row  # the window stays in its row
    return _Windows(row[ok], (last_rack - first + 1)[ok], (first % racks)[ok], chosen[ok])


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, k) values sorted along each row, and a mask of each value's first
    occurrence in its row."""
    ordered = np.sort(values, axis=1)
    mask = np.ones(ordered.shape, dtype=bool)
    mask[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    return ordered, mask


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
            w = _windows(hall, free, systems)
            if w.row.size == 0:
                out[r] = _anywhere(free, systems)
                continue
            # per row its tightest, leftmost window
            order = np.lexsort((w.start, w.span, w.row))
            _, at = np.unique(w.row[order], return_index=True)
            chosen = w.chosen[order[at]]
            # the fewest domains level by level, then racks; the first row among equals
            touched = [_distinct(level[chosen])[1].sum(axis=1) for level in levels]
            racks = _distinct(chosen // hall.systems_per_rack)[1].sum(axis=1)
            best = np.lexsort((w.row[order[at]], racks, *touched[::-1]))[0]
            out[r] = _take(free, chosen[best])
        return out


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
        coarse_of_row = levels[0].reshape(hall.rows, -1)
        by_row = bool((coarse_of_row == coarse_of_row[:, :1]).all())
        coarse_of_row = coarse_of_row[:, 0]
        for r in range(replicas):
            if by_row:  # the first keys are per row: score the windows of the best rows only
                w = _windows(hall, free, systems, self._rows(
                    hall, free, systems, coarse_of_row, used[0], levels,
                ))
            else:
                w = _windows(hall, free, systems)
            if w.row.size == 0:
                out[r] = _anywhere(free, systems)
            elif by_row and len(levels) == 1:  # one row left: its tightest, leftmost window
                out[r] = _take(free, w.chosen[np.lexsort((w.start, w.span))[0]])
            else:
                # the replicas of this deployment sharing a domain with a window, level
                # by level; then the most free systems in its coarse domains, the first
                # row, the tightest window in it, the leftmost
                shared = []
                for u, level in zip(used, levels, strict=True):
                    ids, first = _distinct(level[w.chosen])
                    shared.append((u[ids] * first).sum(axis=1))
                coarse = np.bincount(levels[0], weights=free, minlength=used[0].size)
                ids, first = _distinct(levels[0][w.chosen])
                room = (coarse[ids] * first).sum(axis=1)
                best = np.lexsort((w.start, w.span, w.row, -room, *shared[::-1]))[0]
                out[r] = _take(free, w.chosen[best])
            for u, level in zip(used, levels, strict=True):
                u[np.unique(level[out[r]])] += 1
        return out

    @staticmethod
    def _rows(
        hall: Hall, free: np.ndarray, systems: int, coarse_of_row: np.ndarray,
        used: np.ndarray, levels: np.ndarray,
    ) -> np.ndarray:
        """The rows holding the best windows when each row lies in one coarse domain:
        those with room for a replica whose domain has the fewest of the deployment
        (a row with `systems` free always has a window); with no finer level, the
        first of them whose domain has the most free systems."""
        ok = free.reshape(hall.rows, -1).sum(axis=1) >= systems
        if not ok.any():
            return np.flatnonzero(ok)
        shared = used[coarse_of_row]
        rows = np.flatnonzero(ok & (shared == shared[ok].min()))
        if len(levels) == 1:
            room = np.bincount(levels[0], weights=free, minlength=used.size)[coarse_of_row[rows]]
            rows = rows[room == room.max()][:1]
        return rows


PLACEMENTS: dict[str, Placement] = {p.name: p for p in (Pack(), Spread())}
