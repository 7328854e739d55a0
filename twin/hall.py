"""The hall's structure: rows, racks and systems as a tree of dotted scopes.

Structure is a named tree (``hall.row2.rack7.sys1``) used as keys in events,
metrics and SQL rows; the dynamics live in arrays indexed by system number.
`Hall` maps between the two: index arrays give each system's row and rack,
so aggregates are `np.bincount` over them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.scenario import HallSpec

__all__ = ["Hall", "ROOT"]

ROOT = "hall"


@dataclass(frozen=True)
class Hall:
    """Row, rack and system scopes of one hall; systems numbered row by row."""

    rows: int
    racks_per_row: int
    systems_per_rack: int

    @classmethod
    def from_spec(cls, spec: HallSpec) -> Hall:
        return cls(spec.rows, spec.racks_per_row, spec.systems_per_rack)

    @property
    def n_systems(self) -> int:
        return self.rows * self.racks_per_row * self.systems_per_rack

    @property
    def n_racks(self) -> int:
        return self.rows * self.racks_per_row

    @property
    def rack_of(self) -> np.ndarray:
        """Global rack number of each system."""
        return np.arange(self.n_systems) // self.systems_per_rack

    @property
    def row_of(self) -> np.ndarray:
        """Row number of each system."""
        return self.rack_of // self.racks_per_row

    def row_scope(self, row: int) -> str:
        return f"{ROOT}.row{row + 1}"

    def rack_scope(self, rack: int) -> str:
        row, k = divmod(rack, self.racks_per_row)
        return f"{ROOT}.row{row + 1}.rack{k + 1}"

    def system_scope(self, system: int) -> str:
        rack, s = divmod(system, self.systems_per_rack)
        return f"{self.rack_scope(rack)}.sys{s + 1}"

    def scopes(self, level: str) -> list[str]:
        """Names of every scope at `level` (``hall``, ``row``, ``rack`` or ``system``)."""
        if level == "hall":
            return [ROOT]
        if level == "row":
            return [self.row_scope(r) for r in range(self.rows)]
        if level == "rack":
            return [self.rack_scope(r) for r in range(self.n_racks)]
        k = self.systems_per_rack  # each rack's name made once, not once per system
        return [f"{rack}.sys{i + 1}" for rack in self.scopes("rack") for i in range(k)]

    def index_of(self, level: str) -> np.ndarray:
        """For each system, the number of its scope at `level`."""
        if level == "hall":
            return np.zeros(self.n_systems, dtype=np.int64)
        if level == "row":
            return self.row_of
        if level == "rack":
            return self.rack_of
        return np.arange(self.n_systems)
