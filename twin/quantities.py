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
    "Duration", "PositiveDuration", "Horizon", "Bucket", "Power", "Temperature",
    "DeltaTemperature", "ThermalResistance", "HeatCapacity", "Area", "DefectDensity",
    "Probability", "Unit", "BOUNDS", "MAX_HORIZON_H",
]

# The physical range of every quantity a scenario holds, in canonical units (see
# twin.units); each is documented in docs/scenarios.md. Past these a value is a slip
# (a unit, a digit), and infinities would stop the clock or poison the arithmetic.
BOUNDS: dict[str, tuple[float, float]] = {
    # ~114,000 years: far longer than any hall, long enough to switch a failure off
    "time": (0.0, 1e9),
    "power": (0.0, 1000.0),  # one system draws at most 1 MW (a CS-3 draws 23 kW)
    "energy": (0.0, 1e12),
    # from absolute zero to the melting point of silicon
    "temperature": (-273.15, 1414.0),
    "delta_temperature": (0.0, 1000.0),
    # 1 mK/kW to 1000 K/W: the time constant R C never rounds to zero
    "thermal_resistance": (1e-3, 1e6),
    "heat_capacity": (1e-3, 1e6),  # 1 J/K to 1 GJ/K
    "area": (0.0, 1590.0),  # at most a whole 450 mm wafer
    # mature processes run ~0.1 /cm2; at 100 no wafer of any size works
    "defect_density": (0.0, 100.0),
    "mass_flow": (0.0, 1e5),  # coolant through one pump: 100 t/s is beyond any CDU
}

MAX_HORIZON_H = 100 * 8760.0  # a run simulates at most 100 years


@dataclass(frozen=True)
class Unit:
    """Annotation: the field is a quantity of `dimension`, within the dimension's
    `BOUNDS` unless `lowest` / `highest` (canonical units) narrow them, and above
    zero when `positive`."""

    dimension: str
    positive: bool = False
    lowest: float | None = None
    highest: float | None = None

    def parse(self, value: object) -> float:
        number = units.parse(value, self.dimension)
        floor, ceiling = BOUNDS[self.dimension]
        low = floor if self.lowest is None else self.lowest
        high = ceiling if self.highest is None else self.highest
        if not (low <= number <= high and (number > 0 or not self.positive)):
            raise ValueError(self.expected(low, high))
        return number

    def expected(self, low: float, high: float) -> str:
        unit = units.CANONICAL[self.dimension]
        name = units.named(self.dimension)
        if self.positive and low == 0:
            return f"{name} above 0 {unit} and at most {high:g} {unit}"
        return f"{name} from {low:g} {unit} to {high:g} {unit}"

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
PositiveDuration = Annotated[float, Unit("time", positive=True)]
Horizon = Annotated[float, Unit("time", positive=True, highest=MAX_HORIZON_H)]
Bucket = Annotated[float, Unit("time", lowest=1 / 3600)]  # a metric bucket: 1 s or more
Power = Annotated[float, Unit("power")]
Temperature = Annotated[float, Unit("temperature")]
DeltaTemperature = Annotated[float, Unit("delta_temperature")]
ThermalResistance = Annotated[float, Unit("thermal_resistance")]
HeatCapacity = Annotated[float, Unit("heat_capacity")]
Area = Annotated[float, Unit("area", positive=True)]
DefectDensity = Annotated[float, Unit("defect_density")]
Probability = Annotated[float, AfterValidator(_probability)]
