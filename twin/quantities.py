"""Pydantic field types for quantities with units (``Duration``, ``Power``, ...).

Each type reads a string such as ``"48 h"`` through `twin.units.parse`, holds
a float in the canonical unit and writes itself back as a canonical string,
so a resolved scenario document reloads to exactly the same values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, GetCoreSchemaHandler
from pydantic_core import core_schema

from twin import units

__all__ = [
    "Duration", "PositiveDuration", "Power", "Temperature", "DeltaTemperature",
    "ThermalResistance", "HeatCapacity", "Area", "DefectDensity", "Probability", "Unit",
]


@dataclass(frozen=True)
class Unit:
    """Annotation: the field is a quantity of `dimension`, at least `minimum` (or any)."""

    dimension: str
    minimum: str = "zero"  # "zero": >= 0, "positive": > 0, "any": no bound

    def parse(self, value: object) -> float:
        number = units.parse(value, self.dimension)
        if self.minimum == "zero" and not number >= 0:
            raise ValueError(f"a {self.dimension.replace('_', ' ')} of zero or more")
        if self.minimum == "positive" and not number > 0:
            raise ValueError(f"a {self.dimension.replace('_', ' ')} above zero")
        return number

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self.parse,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda v: units.format_quantity(v, self.dimension),
                return_schema=core_schema.str_schema(),
            ),
        )


def _probability(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError("a probability between 0 and 1")
    return value


Duration = Annotated[float, Unit("time")]
PositiveDuration = Annotated[float, Unit("time", "positive")]
Power = Annotated[float, Unit("power")]
Temperature = Annotated[float, Unit("temperature", "any")]
DeltaTemperature = Annotated[float, Unit("delta_temperature")]
ThermalResistance = Annotated[float, Unit("thermal_resistance", "positive")]
HeatCapacity = Annotated[float, Unit("heat_capacity", "positive")]
Area = Annotated[float, Unit("area", "positive")]
DefectDensity = Annotated[float, Unit("defect_density")]
Probability = Annotated[float, AfterValidator(_probability)]
