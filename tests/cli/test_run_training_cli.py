"""`twin run` of a scenario with a training job prints where its wall time went,
its interruptions by cause and its swaps by source; the JSON nests them."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_the_table_shows_the_wall_time_by_cause_interruptions_and_swaps(
    twin: click.Group,
) -> None:
    out = CliRunner().invoke(twin, ["run", str(SCENARIOS / "training.toml"), "--until", "3d",
                                    "--no-store"])
    assert out.exit_code == 0, out.output
    table = out.output[out.output.index("training time by cause (unfinished)"):]
    for row in ("work", "rework", "checkpoint", "restart", "host_selection", "reclaim",
                "waiting", "throttled", "horizon"):
        assert f"│ {row} " in table, row
    assert "training goodput 0." in table
    assert "interruptions " in table and "swaps: standby " in table
    plain = CliRunner().invoke(twin, ["run", str(SCENARIOS / "small.toml"), "--until", "1d",
                                      "--no-store"])
    assert "training" not in plain.output


def test_an_unfinished_job_s_rows_add_up_to_the_horizon(twin: click.Group) -> None:
    # 3 days of training.toml end in the middle of a compute segment: its work, not saved
    # yet, is a row of its own, so the hours (and shares) add up to the horizon
    out = CliRunner().invoke(twin, ["run", str(SCENARIOS / "training.toml"), "--until", "3d",
                                    "--no-store"])
    assert out.exit_code == 0, out.output
    table = out.output[out.output.index("training time by cause (unfinished)"):]
    hours = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 3 and cells[1]:
            hours[cells[0]] = float(cells[1].replace(",", ""))
    assert hours["unsaved"] > 0
    horizon = hours.pop("horizon")
    assert horizon == 72.0
    assert sum(hours.values()) == pytest.approx(horizon, abs=1e-3)


def test_the_json_nests_interruptions_by_cause_and_swaps_by_source(twin: click.Group) -> None:
    out = CliRunner().invoke(twin, ["run", str(SCENARIOS / "training-preemptible.toml"),
                                    "--until", "3d", "--no-store", "--json"])
    assert out.exit_code == 0, out.output
    training = json.loads(out.output)["kpis"]["training"]
    assert sum(training["interrupted_by"].values()) == training["interruptions"]
    assert set(training["swaps"]) == {"standby", "pool", "preemptible", "repair"}
    assert training["reclaimed"] == training["swaps"]["preemptible"]
    assert set(training["preemptible"]) == {"work_lost_h", "taken_h"}
