"""Power capping: a facility budget for IT power, enforced through each system's cap
on its power fraction (`Fleet.set_cap`), so heat and throughput follow.

Policies say which systems give up power, in a stated order; each returns the
cap of every system for a hall of `n` systems of `full_kw` each under `budget`:

- ``uniform``: every system at budget / (n x full_kw);
- ``ordered``: systems lowered one at a time to `floor`, from the last system
  of the last row back towards the first (the first rows keep full power
  longest), the last one lowered only as far as the budget needs.

The caps are set once, at the start, for the whole hall as if every system
ran: a system that is down does not lend its share to the others, so the
budget is never exceeded (the thermal governor can only lower power more).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from twin.fleet import Fleet
from twin.scenario import CapSpec

__all__ = ["POLICIES", "apply_cap", "caps"]


def _uniform(n: int, full_kw: float, budget: float, floor: float) -> np.ndarray:
    return np.full(n, min(budget / (n * full_kw), 1.0))


def _ordered(n: int, full_kw: float, budget: float, floor: float) -> np.ndarray:
    cut = max(n * full_kw - budget, 0.0)  # kW to take off
    per_system = full_kw * (1.0 - floor)
    whole = min(int(cut // per_system), n)
    out = np.ones(n)
    out[n - whole:] = floor
    left = cut - whole * per_system
    if whole < n and left > 0.0:
        out[n - whole - 1] = 1.0 - left / full_kw
    return out


POLICIES: dict[str, Callable[[int, float, float, float], np.ndarray]] = {
    "uniform": _uniform, "ordered": _ordered,
}


def caps(spec: CapSpec, n: int, full_kw: float) -> np.ndarray:
    """The cap of each system under `spec` (ones without a budget)."""
    if spec.budget is None:
        return np.ones(n)
    return POLICIES[spec.policy](n, full_kw, spec.budget, spec.floor)


def apply_cap(spec: CapSpec, fleet: Fleet) -> int:
    """Cap every system of `fleet`; returns how many are capped below full power."""
    capped = 0
    for s, cap in enumerate(caps(spec, fleet.n, fleet.full_kw).tolist()):
        if cap < 1.0:
            fleet.set_cap(s, cap)
            capped += 1
    return capped
