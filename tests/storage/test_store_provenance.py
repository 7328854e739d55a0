"""A run says exactly what ran, on both backends.

Each run keeps its `--set` overrides, its `--label` and its own `[run]`
values; a what-if run goes by a name of its own, so the views never average
it as its base scenario; `twin show RUN --scenario` writes a file that
`twin run` reproduces the run from, bit for bit; timestamps read the same on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from storage import open_store, read_run, read_runs
from storage.engines import make_write_engine
from storage.migrate import upgrade
from storage.urls import normalize_url
from twin.scenario import load_scenario

SMALL = str(Path(__file__).resolve().parents[2] / "scenarios" / "small.toml")
WHAT_IF = ["--set", "hall.rows=3", "--set", "repair.crews=2"]


def _twin(twin: click.Group, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(twin, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _run(twin: click.Group, url: str, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(_twin(twin, "run", *args, "--db", url, "--json"))
    return out


def test_a_what_if_run_goes_by_a_name_of_its_own(twin: click.Group, store_url: str) -> None:
    base = _run(twin, store_url, SMALL)
    what_if = _run(twin, store_url, SMALL, *WHAT_IF)
    again = _run(twin, store_url, SMALL, *WHAT_IF)
    labelled = _run(twin, store_url, SMALL, *WHAT_IF, "--label", "three rows")
    digest = load_scenario(SMALL, ["hall.rows=3", "repair.crews=2"]).digest()
    assert what_if["scenario_hash"] == again["scenario_hash"] == digest
    names = dict(zip(read_runs(store_url)["run_id"], read_runs(store_url)["scenario"], strict=True))
    assert names == {
        base["run_id"]: "small",
        what_if["run_id"]: f"small+{digest[:8]}",
        again["run_id"]: f"small+{digest[:8]}",
        labelled["run_id"]: "three rows",
    }
    run = read_run(store_url, what_if["run_id"])
    assert (run["overrides"], run["label"], run["scenario_name"]) == (
        ["hall.rows=3", "repair.crews=2"], None, "small",
    )  # fmt: skip
    with open_store(store_url) as store:
        trend = store.query(
            "SELECT scenario, runs FROM v_kpi_trend WHERE kpi = 'availability' ORDER BY scenario"
        )
        assert trend.values.tolist() == [
            ["small", 1],
            [f"small+{digest[:8]}", 2],
            ["three rows", 1],
        ]
        by_run = store.query("SELECT run_id, scenario FROM v_availability ORDER BY run_id")
        assert dict(by_run.values.tolist()) == names
    assert len(read_runs(store_url, scenario=f"small+{digest[:8]}")) == 2


def test_show_prints_this_runs_seed_and_horizon(twin: click.Group, store_url: str) -> None:
    first = _run(twin, store_url, SMALL)
    second = _run(twin, store_url, SMALL, "--seed", "20", "--until", "24h")
    assert first["scenario_hash"] == second["scenario_hash"]  # one scenario row, two runs
    for out, run in (
        (first, {"until": "720.0 h", "seed": 1}),
        (second, {"until": "24.0 h", "seed": 20}),
    ):
        shown = json.loads(_twin(twin, "show", str(out["run_id"]), "--db", store_url, "--json"))
        assert shown["scenario"]["run"] == run


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--seed", "7", "--until", "9d"),
        (*WHAT_IF, "--seed", "3", "--until", "200h", "--label", "tight crews"),
        ("--set", 'thermal.inlet="31.5 C"', "--set", "wafer.cores_per_failure=3.3"),
    ],
    ids=["plain", "seed-until", "what-if-label", "floats"],
)
def test_show_scenario_reruns_the_run_bit_for_bit(
    twin: click.Group, store_url: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    original = _run(twin, store_url, SMALL, *args)
    text = _twin(twin, "show", str(original["run_id"]), "--db", store_url, "--scenario")
    rerun_file = tmp_path / "rerun.toml"
    rerun_file.write_text(text)
    assert _twin(twin, "check", str(rerun_file)).startswith(f"{rerun_file}: valid")
    rerun = _run(twin, store_url, str(rerun_file))
    assert rerun["kpis"] == original["kpis"]  # exactly: every float the same
    assert (rerun["seed"], rerun["simulated_days"]) == (
        original["seed"],
        original["simulated_days"],
    )
    names = read_runs(store_url).set_index("run_id")["scenario"]
    assert names[rerun["run_id"]] == names[original["run_id"]]  # listed as the run it repeats
    if not args:
        assert rerun["scenario_hash"] == original["scenario_hash"]


def test_the_scenario_file_says_where_it_came_from(twin: click.Group, store_url: str) -> None:
    out = _run(twin, store_url, SMALL, *WHAT_IF, "--label", "tight crews")
    text = _twin(twin, "show", str(out["run_id"]), "--db", store_url, "--scenario")
    lines = text.splitlines()
    assert lines[0].startswith(f"# run {out['run_id']} (completed, wafertwin ")
    assert lines[1] == f"# scenario small, hash {out['scenario_hash']}"
    assert lines[2] == "# made with --set hall.rows=3 --set repair.crews=2"
    assert lines[3] == "# label tight crews"
    assert 'name = "tight crews"' in lines


def test_a_label_must_be_printable(twin: click.Group, store_url: str) -> None:
    result = CliRunner().invoke(twin, ["run", SMALL, "--db", store_url, "--label", "a\x1bb"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: --label: expected printable text of 1 to 200 characters, got 'a\\x1bb'"
    )
    assert read_runs(store_url).empty


def test_timestamps_read_the_same_on_every_backend(twin: click.Group, store_url: str) -> None:
    out = _run(twin, store_url, SMALL)
    moment = datetime(2026, 12, 1, 14, 0, 0, 654321)
    engine = make_write_engine(normalize_url(store_url))
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE runs SET started = :t, finished = :t, heartbeat = :t"), {"t": moment}
        )
    engine.dispose()
    [row] = json.loads(_twin(twin, "runs", "--db", store_url, "--format", "json"))
    exact = "2026-12-01T14:00:00.654321Z"  # JSON and CSV keep the fraction; tables the second
    assert (row["started"], row["finished"], row["heartbeat"]) == (exact,) * 3
    shown = json.loads(
        _twin(twin, "show", str(out["run_id"]), "--db", store_url, "--format", "json")
    )
    assert shown["run"]["started"] == exact
    csv = _twin(twin, "runs", "--db", store_url, "--format", "csv")
    assert f",{exact}," in csv
    assert "2026-12-01T14:00:00Z" in _twin(twin, "runs", "--db", store_url)


def test_runs_of_a_store_before_0004_are_named_after_their_scenario(store_url: str) -> None:
    engine = make_write_engine(normalize_url(store_url))
    upgrade(engine, "0003")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO scenarios (hash, name, document, created)"
                " VALUES ('abc', 'hall', '{}', :t)"
            ),
            {"t": datetime(2025, 3, 1)},
        )
        conn.execute(
            sa.text(
                "INSERT INTO runs (scenario_id, seed, status, code_version, started)"
                " VALUES (1, 42, 'completed', '0.0.1', :t)"
            ),
            {"t": datetime(2025, 3, 1)},
        )
        conn.exec_driver_sql(
            "INSERT INTO kpis (run_id, name, value) VALUES (1, 'availability', 0.9)"
        )
    engine.dispose()
    with open_store(store_url) as store:
        [run] = read_runs(store).to_dict("records")
        assert (run["scenario"], run["label"], run["overrides"]) == ("hall", None, [])
        trend = store.query("SELECT scenario, runs FROM v_kpi_trend")
        assert trend.values.tolist() == [["hall", 1]]
