"""Warnings for a resource that saturates (issue 7, item 13).

The default hall scaled to 200 rows without its support (crews, part
stocks, spare systems) runs out of spare systems: the queue of systems
waiting for one never empties and keeps growing, and the run says so. The
default hall does not warn, nor does a run too short to tell.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli.main import cli
from twin.engine import simulate
from twin.scenario import load_scenario

HALL = Path(__file__).resolve().parents[2] / "scenarios" / "hall.toml"


def test_a_hall_scaled_without_its_support_warns():
    result = simulate(load_scenario(HALL, ["hall.rows=200"]), until=60 * 24.0)
    assert any(w.startswith("spare_systems saturated") for w in result.warnings), result.warnings
    assert "spare_systems.count" in " ".join(result.warnings)


def test_the_default_hall_does_not_warn():
    assert simulate(load_scenario(HALL)).warnings == ()


def test_a_run_too_short_to_tell_does_not_warn():
    result = simulate(load_scenario(HALL, ["hall.rows=200"]), until=7 * 24.0)
    assert result.warnings == ()


def test_twin_run_prints_the_warnings_in_json_and_in_the_table():
    args = ["run", str(HALL), "--no-store", "--until", "30 d", "--set", "hall.rows=2",
            "--set", "spare_systems.count=0",
            "--set", 'wafer.failure={dist="exponential", mean="500 h"}']
    out = CliRunner().invoke(cli, [*args, "--json"])
    assert out.exit_code == 0, out.output
    warnings = json.loads(out.output)["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith("spare_systems saturated")
    table = CliRunner().invoke(cli, args)
    assert table.exit_code == 0, table.output
    assert "warning: spare_systems saturated" in table.output
