"""Placement strategies: pack keeps a replica in adjacent racks of one row, spread puts a
deployment's replicas in different rows, and too few free systems is an error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.compute import PLACEMENTS, PlacementError
from twin.hall import Hall

HALL = Hall(rows=4, racks_per_row=10, systems_per_rack=3)


def _racks(hall: Hall, systems: np.ndarray) -> np.ndarray:
    return np.unique(hall.index_of("rack")[systems])


def test_pack_keeps_a_replica_in_the_fewest_adjacent_racks_of_one_row() -> None:
    free = np.ones(HALL.n_systems, dtype=bool)
    free[[0, 1, 4]] = False  # the first two racks are partly taken
    placed = PLACEMENTS["pack"].place(HALL, 2, 4, free)
    for replica in placed:
        racks = _racks(HALL, replica)
        assert len(np.unique(HALL.row_of[replica])) == 1
        assert np.all(np.diff(racks) == 1)  # adjacent
        assert len(racks) == 2  # 4 systems in racks of 3: two racks
    assert free[placed].all() and len(np.unique(placed)) == placed.size


def test_pack_moves_to_a_row_with_room_rather_than_split_a_replica() -> None:
    free = np.zeros(HALL.n_systems, dtype=bool)
    free[0:2] = True  # two free in row 1
    free[HALL.row_of == 2] = True
    placed = PLACEMENTS["pack"].place(HALL, 1, 4, free)
    assert set(HALL.row_of[placed[0]]) == {2}


def test_spread_puts_the_replicas_of_a_deployment_in_different_rows() -> None:
    free = np.ones(HALL.n_systems, dtype=bool)
    placed = PLACEMENTS["spread"].place(HALL, 4, 4, free)
    rows = HALL.row_of[placed]
    assert all(len(set(r)) == 1 for r in rows)  # each replica in one row
    assert sorted(rows[:, 0]) == [0, 1, 2, 3]  # one replica per row
    for replica in placed:
        assert np.all(np.diff(_racks(HALL, replica)) == 1)


def test_spread_shares_rows_evenly_once_every_row_has_a_replica() -> None:
    placed = PLACEMENTS["spread"].place(HALL, 8, 2, np.ones(HALL.n_systems, dtype=bool))
    assert np.bincount(HALL.row_of[placed[:, 0]], minlength=4).tolist() == [2, 2, 2, 2]


@pytest.mark.parametrize("name", sorted(PLACEMENTS))
def test_too_few_free_systems_is_a_placement_error_saying_how_many(name: str) -> None:
    free = np.zeros(HALL.n_systems, dtype=bool)
    free[:10] = True
    with pytest.raises(PlacementError, match="2 missing") as caught:
        PLACEMENTS[name].place(HALL, 3, 4, free)
    assert caught.value.missing == 2


@given(st.sampled_from(sorted(PLACEMENTS)), st.integers(1, 6), st.integers(1, 7),
       st.lists(st.booleans(), min_size=HALL.n_systems, max_size=HALL.n_systems))
def test_every_placement_uses_distinct_free_systems(name: str, replicas: int, systems: int,
                                                     mask: list[bool]) -> None:
    free = np.array(mask)
    if replicas * systems > free.sum():
        with pytest.raises(PlacementError):
            PLACEMENTS[name].place(HALL, replicas, systems, free)
        return
    placed = PLACEMENTS[name].place(HALL, replicas, systems, free)
    assert placed.shape == (replicas, systems)
    assert free[placed].all()
    assert len(np.unique(placed)) == placed.size
    assert mask == free.tolist()  # the caller's array is not changed
