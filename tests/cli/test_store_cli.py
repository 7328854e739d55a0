"""`twin runs`, `show`, `query`, `export` through click's CliRunner, on a store of made-up runs."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from cli import store_commands
from storage import open_store
from storage.testing import synthetic_run, write_run


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A SQLite store with two completed runs (ids 1, 2) and a failed one (id 3)."""
    path = str(tmp_path / "runs.db")
    with open_store(path) as store:
        write_run(store, synthetic_run(60, 40, seed=1, scenario_name="hall"))
        write_run(store, synthetic_run(30, 20, seed=2, scenario_name="small"))
        writer = store.begin_run(**synthetic_run(0, 0, seed=3).header)  # type: ignore[arg-type]
        writer.fail("boom")
    return path


def _twin(twin: click.Group, *args: str) -> Result:
    """Invoke the `twin` group (tests/conftest.py), letting unexpected exceptions through."""
    return CliRunner().invoke(twin, list(args), catch_exceptions=False)


def test_runs_lists_latest_first(twin: click.Group, db: str) -> None:
    result = _twin(twin, "runs", "--db", db)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "│" in line]
    assert [line.split("│")[1].strip() for line in lines] == ["3", "2", "1"]
    assert "failed" in result.output and "hall" in result.output


def test_runs_filters(twin: click.Group, db: str) -> None:
    result = _twin(twin, "runs", "--db", db, "--status", "completed", "--scenario", "small")
    assert result.exit_code == 0 and "small" in result.output and "hall" not in result.output
    assert "1 run(s)" in _twin(twin, "runs", "--db", db, "--limit", "1").output
    assert "0 run(s)" in _twin(twin, "runs", "--db", db, "--since", "2999-01-01").output
    assert _twin(twin, "runs", "--db", db, "--since", "soon").exit_code == 2


def test_runs_reads_the_store_from_the_environment(twin: click.Group, db: str) -> None:
    result = CliRunner(env={"TWIN_DB": db}).invoke(twin, ["runs"])
    assert result.exit_code == 0 and "hall" in result.output


def test_show_prints_kpis_events_and_scenario(twin: click.Group, db: str) -> None:
    result = _twin(twin, "show", "1", "--db", db)
    assert result.exit_code == 0, result.output
    for text in ("completed", "availability", "outage", "throttle", "Resolved scenario",
                 '"rows": 4'):  # fmt: skip
        assert text in result.output


def test_show_json_is_one_object(twin: click.Group, db: str) -> None:
    out = json.loads(_twin(twin, "show", "1", "--db", db, "--json").output)
    assert out["run"]["run_id"] == 1 and out["run"]["status"] == "completed"
    assert out["kpis"] == {"availability": 0.99, "failures": {"psu": 3.0}}
    assert sum(row["events"] for row in out["events"]) == 60
    assert out["scenario"]["hall"]["rows"] == 4


def test_query_formats(twin: click.Group, db: str) -> None:
    sql = "SELECT run_id, availability FROM v_availability ORDER BY run_id"
    assert json.loads(_twin(twin, "query", sql, "--db", db, "--format", "json").output) == [
        {"run_id": 1, "availability": 0.99},
        {"run_id": 2, "availability": 0.99},
    ]
    csv = _twin(twin, "query", sql, "--db", db, "--format", "csv").output
    assert csv.splitlines() == ["run_id,availability", "1,0.99", "2,0.99"]
    table = _twin(twin, "query", sql, "--db", db).output
    assert "availability" in table and "0.99" in table


def test_query_refuses_a_delete(twin: click.Group, db: str) -> None:
    result = CliRunner().invoke(twin, ["query", "DELETE FROM runs", "--db", db])
    assert result.exit_code == 2
    assert "refused" in result.output and "DELETE" in result.output
    assert len(result.output.strip().splitlines()) == 1
    count = _twin(twin, "query", "SELECT COUNT(*) AS n FROM runs", "--db", db, "--format", "csv")
    assert count.output.splitlines()[1] == "3"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "99"], "no run 99"),
        (["export", "99", "--out", "x"], "no run 99"),
        (["query", "SELECT nope FROM runs"], "query failed"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    twin: click.Group, db: str, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(twin, [*args, "--db", db])
    assert result.exit_code == 2 and message in result.output


def test_a_missing_store_is_not_created(twin: click.Group, tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    result = CliRunner().invoke(twin, ["runs", "--db", str(missing)])
    assert result.exit_code == 2 and "no store at" in result.output
    assert not missing.exists()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_writes_events_metrics_and_kpis(
    twin: click.Group, db: str, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / "out" / "nested"
    result = _twin(twin, "export", "1", "--format", fmt, "--out", str(out), "--db", db)
    assert result.exit_code == 0, result.output
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    events = read(out / f"run-1-events.{fmt}")
    assert len(events) == 60 and list(events.columns) == ["t", "scope", "kind", "cause", "value"]
    metrics = read(out / f"run-1-metrics.{fmt}")
    assert list(metrics.columns) == ["t", "bucket", "scope", "name", "value"]
    assert len(metrics) == 3 * 40 + 4 * 3 * 2  # 40 h: 3 names hourly, 4 rows x 3 names daily
    assert len(read(out / f"run-1-kpis.{fmt}")) == 2


@pytest.mark.parametrize("command", store_commands.COMMANDS, ids=lambda c: c.name)
def test_every_command_is_documented_with_an_example(
    twin: click.Group, command: click.Command
) -> None:
    assert command.help and "Example:" in command.help
    result = _twin(twin, command.name or "", "-h")
    assert result.exit_code == 0 and "Example:" in result.output
