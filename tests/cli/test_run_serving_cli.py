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


def test_cells_have_units_and_show_a_miss() -> None:
    from cli.run_commands import seconds_cell, share_cell, tokens_cell

    assert tokens_cell(5.11023e13) == "51.10 T"
    assert tokens_cell(1.36273e12) == "1.363 T"
    assert tokens_cell(999_960.0) == "1.000 M"  # rounding up moves to the next prefix
    assert tokens_cell(12.0) == "12"
    assert tokens_cell(0.0) == "0"
    assert share_cell(0.99999985) in {"99.99998 %", "99.99999 %"}  # never 100 %
    assert share_cell(1.0 - 2**-52) != "100 %"
    assert share_cell(1.0) == "100 %"
    assert share_cell(0.783772) == "78.38 %"
    assert seconds_cell(0.00126993) == "1.27 ms"
    assert seconds_cell(0.192378) == "192 ms"
    assert seconds_cell(0.0) == "0 s"
    assert seconds_cell(90.0) == "1.5 min"
    assert share_cell(math.nan) == tokens_cell(math.nan) == seconds_cell(math.nan) == "-"


def test_the_tenant_table_fits_80_columns_with_six_tenants() -> None:
    from rich.console import Console

    from cli.run_commands import TENANT_COLUMNS, _tenant_table

    row = {"demanded_tokens": 5.11023e13, "served_tokens": 4.69509e13,
           "goodput_tokens": 4.69509e13, "slo_attainment": 0.99999985, "delay_p99_s": 0.00127}
    assert set(row) == set(TENANT_COLUMNS)
    names = ["chat", "code", "api", "preferred", "long-context", "batch-jobs"]
    console = Console(width=80, record=True)
    console.print(_tenant_table({name: row for name in names}))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    assert text.count("51.10 T") == 6 and text.count("46.95 T") == 12
    assert "100 %" not in text and "1.27 ms" in text


def test_the_table_of_a_four_tenant_scenario_in_80_columns(twin: click.Group) -> None:
    reservation = SERVING.with_name("serving-reservation.toml")
    out = CliRunner(env={"COLUMNS": "80"}).invoke(
        twin, ["run", str(reservation), "--until", "2d", "--no-store"])
    assert out.exit_code == 0, out.output
    table = out.output[out.output.index("serving by tenant"):]
    assert "…" not in table and "e+" not in table
    assert max(len(line) for line in table.splitlines()) <= 80
    assert " G │" in table and "preferred" in table  # two days: gigatokens


def test_large_kpis_print_whole_digits_and_small_ones_six() -> None:
    """A year's tokens (5.1e13) read as digits, not as an exponent; rates keep 6 digits."""
    from cli.run_commands import kpi_text

    assert kpi_text(51_102_316_800_000.4) == "51,102,316,800,000"
    assert kpi_text(1_234_567.0) == "1,234,567"
    assert kpi_text(0.999847193) == "0.999847"
    assert kpi_text(4269.0) == "4,269"
    assert kpi_text(2.5e16) == "2.5e+16"
    assert kpi_text(float("nan")) == "-"
