"""`scenario_toml` writes TOML that reads back to the very same document."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.scenario_toml import scenario_toml
from twin.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.mark.parametrize("name", ["hall.toml", "small.toml"])
def test_a_shipped_scenario_round_trips(name: str, tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / name)
    path = tmp_path / "back.toml"
    path.write_text(scenario_toml(scenario.document()))
    again = load_scenario(path)
    assert again == scenario and again.digest() == scenario.digest()


def test_strings_and_keys_that_need_quoting_round_trip() -> None:
    document = {
        "name": 'a "quoted" \\ name\twith\x1b[2J escapes\x7f\x9b\u202e and é',
        "odd key": {"x.y": 1, "": True, "n": -0.0, "big": 1e300, "tiny": 5e-324},
        "table": {"list": [1, 2.5, "x"], "none": None},
    }
    text = scenario_toml(document)
    assert all(ch == "\n" or ch.isprintable() or ch == " " for ch in text)
    back = tomllib.loads(text)
    assert back["name"] == document["name"] and back["odd key"] == document["odd key"]
    assert back["table"] == {"list": [1, 2.5, "x"]}  # None is left out, as a file leaves it
    assert math.copysign(1.0, back["odd key"]["n"]) == -1.0


def test_comments_are_escaped_lines() -> None:
    text = scenario_toml({"name": "x"}, ["run 1\nname = 'injected'", "ok"])
    assert text.splitlines() == ["# run 1\\x0aname = 'injected'", "# ok", 'name = "x"']


@given(st.floats(allow_nan=False))
def test_every_float_reads_back_exactly(value: float) -> None:
    back = tomllib.loads(scenario_toml({"t": {"v": value}}))["t"]["v"]
    assert back == value and math.copysign(1.0, back) == math.copysign(1.0, value)


@given(st.text())
def test_every_string_reads_back_exactly(value: str) -> None:
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        return  # a lone surrogate is no Unicode scalar value: TOML has no way to write it
    assert tomllib.loads(scenario_toml({"s": value}))["s"] == value
