"""Quantities with units: what `twin.units` reads, what it refuses, and round trips."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.quantities import BOUNDS, Unit
from twin.units import CANONICAL, DIMENSIONS, expected, format_quantity, parse

EVERY_UNIT = [
    (dim, unit, factor) for dim, table in DIMENSIONS.items() for unit, factor in table.items()
]


@pytest.mark.parametrize(("dimension", "unit", "factor"), EVERY_UNIT)
def test_every_unit_of_every_dimension_parses_to_the_canonical_unit(
    dimension: str, unit: str, factor: float
) -> None:
    assert parse(f"2.5 {unit}", dimension) == 2.5 * factor
    assert parse(f"2.5{unit}", dimension) == 2.5 * factor  # the space is optional
    assert parse(f"  -1e3  {unit} ", dimension) == -1e3 * factor


@pytest.mark.parametrize(
    ("text", "dimension", "value"),
    [
        ("30 min", "time", 0.5),
        ("365 d", "time", 8760.0),
        ("1 y", "time", 8760.0),
        ("2 w", "time", 336.0),
        ("90 s", "time", 90 / 3600),
        ("23 kW", "power", 23.0),
        ("23000 W", "power", 23.0),
        ("1.5 MW", "power", 1500.0),
        ("2 MWh", "energy", 2000.0),
        ("35 °C", "temperature", 35.0),
        ("2 K", "delta_temperature", 2.0),
        ("0.0018 K/W", "thermal_resistance", 1.8),
        ("200000 J/K", "heat_capacity", 200.0),
        ("46225 mm2", "area", 462.25),
        ("0.001 /mm2", "defect_density", 0.1),
    ],
)
def test_familiar_quantities_read_as_expected(text: str, dimension: str, value: float) -> None:
    assert parse(text, dimension) == pytest.approx(value, rel=1e-12)


def test_every_dimension_has_a_canonical_unit_with_factor_one() -> None:
    assert set(CANONICAL) == set(DIMENSIONS)
    for dimension, unit in CANONICAL.items():
        assert DIMENSIONS[dimension][unit] == 1.0


@pytest.mark.parametrize(
    "value",
    [
        23,
        23.0,
        True,
        None,
        ["23 kW"],  # bare numbers and non-strings: the unit is not guessed
        "23",
        "",
        "   ",
        "kW",
        "23 kelvin",
        "23 kw",
        "23 k W",
        "23 kW extra",
        "twenty kW",
        "nan kW",
        "inf kW",
        "1,000 kW",
        "23 kWh",  # energy is not power
    ],
)
def test_bare_numbers_unknown_units_and_junk_are_refused_saying_what_was_expected(
    value: object,
) -> None:
    with pytest.raises(ValueError) as caught:
        parse(value, "power")
    message = str(caught.value)
    assert message == expected("power")
    assert "a power as a string like '<number> <unit>'" in message
    assert "unit one of W, kW, MW" in message


@pytest.mark.parametrize("dimension", sorted(DIMENSIONS))
def test_the_expected_message_names_the_dimension_and_lists_every_unit(dimension: str) -> None:
    message = expected(dimension)
    assert dimension.replace("_", " ") in message
    for unit in DIMENSIONS[dimension]:
        assert unit in message


def test_a_unit_of_another_dimension_is_refused() -> None:
    with pytest.raises(ValueError, match="a time as a string"):
        parse("23 kW", "time")
    with pytest.raises(ValueError, match="a temperature as a string"):
        parse("30 K", "temperature")  # K is a temperature difference only


finite = st.floats(allow_nan=False, allow_infinity=False)


@given(value=finite, dimension=st.sampled_from(sorted(DIMENSIONS)))
def test_format_quantity_round_trips_exactly(value: float, dimension: str) -> None:
    text = format_quantity(value, dimension)
    assert text.endswith(f" {CANONICAL[dimension]}")
    back = parse(text, dimension)
    assert back == value
    assert math.copysign(1.0, back) == math.copysign(1.0, value)  # even -0.0


@given(
    number=st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
    unit=st.sampled_from(EVERY_UNIT),
)
def test_any_written_number_with_any_unit_is_number_times_factor(
    number: float, unit: tuple[str, str, float]
) -> None:
    dimension, spelling, factor = unit
    assert parse(f"{number!r} {spelling}", dimension) == number * factor


@given(value=finite, dimension=st.sampled_from(sorted(DIMENSIONS)))
def test_a_formatted_quantity_reads_the_same_after_a_second_round_trip(
    value: float, dimension: str
) -> None:
    once = format_quantity(parse(format_quantity(value, dimension), dimension), dimension)
    assert once == format_quantity(value, dimension)


def test_an_area_reads_with_its_article() -> None:
    assert expected("area").startswith("an area as a string")
    assert expected("time").startswith("a time as a string")


@pytest.mark.parametrize("dimension", sorted(BOUNDS))
def test_every_bound_is_finite_accepted_and_written_back_exactly(dimension: str) -> None:
    unit = Unit(dimension)
    for bound in BOUNDS[dimension]:
        assert math.isfinite(bound)
        text = format_quantity(bound, dimension)
        assert unit.parse(text) == bound
    low, high = BOUNDS[dimension]
    for beyond in (math.nextafter(high, math.inf) * 1.0001, high * 10 + 1, low - 1.0):
        with pytest.raises(ValueError, match=r" from .* to "):
            unit.parse(format_quantity(beyond, dimension))


@pytest.mark.parametrize("text", ["1e400 h", "1e308 y", "-1e400 h", "nan h", "inf h"])
def test_an_overflowing_or_infinite_time_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Unit("time").parse(text)
