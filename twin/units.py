"""Quantities written as strings in scenario files, parsed to canonical units.

Canonical units inside the twin: time in hours, power in kW, energy in kWh,
temperature in deg C, temperature difference in K, thermal resistance in
K/kW, heat capacity in kJ/K, area in cm^2, defect density per cm^2, mass flow
in kg/s.
`parse(text, dimension)` returns a float in the canonical unit or raises
`ValueError` with what was expected; the scenario schema turns that into a
`ScenarioError` naming the file and key.
"""

from __future__ import annotations

import re

__all__ = ["DIMENSIONS", "CANONICAL", "parse", "expected", "named", "format_quantity"]

# dimension -> {unit spelling: factor to the canonical unit}
DIMENSIONS: dict[str, dict[str, float]] = {
    "time": {
        "s": 1 / 3600, "sec": 1 / 3600, "min": 1 / 60, "h": 1.0, "hr": 1.0,
        "d": 24.0, "day": 24.0, "days": 24.0, "w": 168.0, "wk": 168.0,
        "y": 8760.0, "yr": 8760.0,
    },
    "power": {"W": 1e-3, "kW": 1.0, "MW": 1e3},
    "energy": {"Wh": 1e-3, "kWh": 1.0, "MWh": 1e3},
    "temperature": {"C": 1.0, "degC": 1.0, "°C": 1.0},
    "delta_temperature": {"K": 1.0, "C": 1.0, "degC": 1.0},
    "thermal_resistance": {"K/kW": 1.0, "C/kW": 1.0, "K/W": 1e3, "C/W": 1e3},
    "heat_capacity": {"J/K": 1e-3, "kJ/K": 1.0, "MJ/K": 1e3},
    "area": {"mm2": 1e-2, "mm^2": 1e-2, "cm2": 1.0, "cm^2": 1.0},
    "defect_density": {"/cm2": 1.0, "/cm^2": 1.0, "/mm2": 1e2, "/mm^2": 1e2},
    "mass_flow": {"kg/s": 1.0, "kg/h": 1 / 3600},
}

# the unit each dimension is held in, used to write a resolved scenario back out
CANONICAL: dict[str, str] = {
    "time": "h", "power": "kW", "energy": "kWh", "temperature": "C",
    "delta_temperature": "K", "thermal_resistance": "K/kW", "heat_capacity": "kJ/K",
    "area": "cm2", "defect_density": "/cm2", "mass_flow": "kg/s",
}

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S+)\s*$")


def named(dimension: str) -> str:
    """The dimension as a user reads it, with its article: "a time", "an area"."""
    name = dimension.replace("_", " ")
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def expected(dimension: str) -> str:
    """Human text for what a quantity of `dimension` looks like."""
    units = ", ".join(DIMENSIONS[dimension])
    return f"{named(dimension)} as a string like '<number> <unit>' (unit one of {units})"


def parse(value: object, dimension: str) -> float:
    """Parse ``"23 kW"`` into the canonical unit; a bare number is refused as ambiguous."""
    if not isinstance(value, str):
        raise ValueError(expected(dimension))
    match = _QUANTITY.match(value)
    if match is None:
        raise ValueError(expected(dimension))
    number, unit = match.groups()
    factor = DIMENSIONS[dimension].get(unit)
    if factor is None:
        raise ValueError(expected(dimension))
    return float(number) * factor


def format_quantity(value: float, dimension: str) -> str:
    """The canonical string for `value`, which `parse` reads back exactly."""
    return f"{value!r} {CANONICAL[dimension]}"
