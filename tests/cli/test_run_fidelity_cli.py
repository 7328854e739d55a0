"""`twin run --fidelity request`: the scenario's serving simulated request by
request, stored as a run of its own; a scenario without serving is refused."""

from __future__ import annotations

import json
from pathlib import Path

import click
from click.testing import CliRunner

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_fidelity_request_runs_each_request_and_names_the_run_apart(
    twin: click.Group, tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'twin.db'}"
    args = ["run", str(SCENARIOS / "serving.toml"), "--until", "2s", "--db", db, "--json"]
    out = CliRunner().invoke(twin, [*args, "--fidelity", "request"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    served = data["kpis"]["serving"]
    assert served["requests_completed"]["chat"] > 1000
    assert served["ttft_p99_s"]["chat"] >= served["ttft_p50_s"]["chat"] > 0
    assert data["name"].startswith("serving+")  # not averaged with the fluid runs
    fluid = json.loads(CliRunner().invoke(twin, args).output)
    assert "requests" not in fluid["kpis"]["serving"]
    assert fluid["name"] == "serving"


def test_fidelity_needs_a_scenario_with_serving(twin: click.Group) -> None:
    out = CliRunner().invoke(twin, ["run", str(SCENARIOS / "hall.toml"), "--fidelity", "request",
                                    "--until", "1h", "--no-store"])
    assert out.exit_code == 2
    assert "serving.fidelity" in out.output and "[serving] section" in out.output
