"""The facility's failure domains, for placement (`twin.compute.placement`).

A row's systems share one CDU loop (`twin.facility.cooling`: a loop lost
warms the whole row) and a rack's systems share its two PDUs
(`twin.facility.power`: one per feed). Feeds and sources are hall-wide
(each system draws from both), so they separate no system from another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from twin.hall import Hall

__all__ = ["failure_domains"]


def failure_domains(hall: Hall) -> np.ndarray:
    """The domain of each system at each level, coarsest first: (2, systems), the
    CDU loop (its row) then the rack PDUs (its rack)."""
    return np.stack([hall.row_of, hall.rack_of])
