"""`twin run` of a scenario with serving prints each tenant's goodput and SLO
attainment, in the table and in the JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
from click.testing import CliRunner

SERVING = Path(__file__).resolve().parents[2] / "scenarios" / "serving.toml"
HALL = Path(__file__).resolve().parents[2] / "scenarios" / "hall.toml"


def test_the_json_has_a_serving_object_per_tenant(twin: click.Group) -> None:
    out = CliRunner().invoke(twin, ["run", str(SERVING), "--until", "2d", "--no-store", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert set(data["serving"]) == {"chat", "code", "api"}
    for tenant, row in data["serving"].items():
        kpis = data["kpis"]["serving"]
        assert row["goodput_tokens"] == kpis["tokens"]["goodput"][tenant]
        assert row["slo_attainment"] == kpis["slo_attainment"][tenant]
        assert 0 < row["goodput_tokens"] <= row["served_tokens"] <= row["demanded_tokens"]
        assert not math.isnan(row["delay_p99_s"])


def test_the_table_shows_serving_by_tenant_and_a_hall_without_none(twin: click.Group) -> None:
    out = CliRunner().invoke(twin, ["run", str(SERVING), "--until", "1d", "--no-store"])
    assert out.exit_code == 0, out.output
    assert "serving by tenant" in out.output
    assert all(tenant in out.output for tenant in ("chat", "code", "api"))
    plain = CliRunner().invoke(twin, ["run", str(HALL), "--until", "1d", "--no-store", "--json"])
    assert "serving" not in json.loads(plain.output)  # the JSON of a hall as it was
