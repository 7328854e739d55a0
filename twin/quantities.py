"""Pydantic field types for quantities with units (``Duration``, ``Power``, ...).

Each type reads a string such as ``"48 h"`` through `twin.units.parse`, holds
a float in the canonical unit and writes itself back as a canonical string,
so a resolved scenario document reloads to exactly the same values.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

from twin import units

__all__ = [
    "Duration", "PositiveDuration", "Power", "Temperature", "DeltaTemperature",
    "ThermalResistance", "HeatCapacity", "Area", "DefectDensity", "Probability",
]


def _positive(value: float) -> float:
    if not value > 0:
        raise ValueError("expected a value greater than zero")
    return value


def _non_negative(value: float) -> float:
    if not value >= 0:
        raise ValueError("expected a value of zero or more")
    return value


def _quantity(dimension: str, check=_non_negative):  # type: ignore[no-untyped-def]
    return Annotated[
        float,
        BeforeValidator(lambda v: units.parse(v, dimension)),
        AfterValidator(check),
        PlainSerializer(lambda v: units.format_quantity(v, dimension), return_type=str),
    ]


def _any(value: float) -> float:
    return value


def _probability(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError("expected a probability between 0 and 1")
    return value


Duration = _quantity("time")
PositiveDuration = _quantity("time", _positive)
Power = _quantity("power")
Temperature = _quantity("temperature", _any)
DeltaTemperature = _quantity("delta_temperature")
ThermalResistance = _quantity("thermal_resistance", _positive)
HeatCapacity = _quantity("heat_capacity", _positive)
Area = _quantity("area", _positive)
DefectDensity = _quantity("defect_density")
Probability = Annotated[float, AfterValidator(_probability)]
