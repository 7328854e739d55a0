"""`twin runs`, `show`, `query`, `export`, `rm` through click's CliRunner, on a store of
made-up runs."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import click
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from cli.main import COMMANDS
from storage import open_store
from storage.testing import synthetic_run, write_run

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z")


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
        (["rm", "99", "--yes"], "no run 99"),
        (["show", "99999999999999999999"], "no run 99999999999999999999 in"),
        (["show", "99999999999999999999", "--scenario"], "no run 99999999999999999999 in"),
        (["export", "99999999999999999999", "--out", "x"], "no run 99999999999999999999 in"),
        (["rm", "99999999999999999999", "--yes"], "no run 99999999999999999999 in"),
        (["show", "9223372036854775808"], "no run 9223372036854775808 in"),
        (["query", "SELECT nope FROM runs"], "query failed"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    twin: click.Group, db: str, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(twin, [*args, "--db", db])
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1 and result.exception is not None
    assert isinstance(result.exception, SystemExit)  # no traceback, a clean exit


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
    assert len(events) == 60
    assert list(events.columns) == ["run_id", "t", "scope", "kind", "cause", "value"]
    metrics = read(out / f"run-1-metrics.{fmt}")
    assert list(metrics.columns) == ["run_id", "t", "bucket", "scope", "name", "value"]
    assert len(metrics) == 3 * 40 + 4 * 3 * 2  # 40 h: 3 names hourly, 4 rows x 3 names daily
    kpis = read(out / f"run-1-kpis.{fmt}")
    assert list(kpis.columns) == ["run_id", "name", "value"] and len(kpis) == 2
    assert {*events["run_id"], *metrics["run_id"], *kpis["run_id"]} == {1}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_is_documented_with_an_example(twin: click.Group, name: str) -> None:
    command = twin.commands[name]
    assert command.help and "Example:" in command.help
    result = _twin(twin, name, "-h")
    assert result.exit_code == 0 and "Example:" in result.output


def test_runs_show_the_scenario_hash_and_label(twin: click.Group, tmp_path: Path) -> None:
    path = str(tmp_path / "labels.db")
    with open_store(path) as store:
        run = synthetic_run(4, 4, seed=5, scenario_name="hall")
        writer = store.begin_run(**run.header, label="nightly")  # type: ignore[arg-type]
        writer.complete(run.result)
    table = _twin(twin, "runs", "--db", path).output
    assert "nightly" in table and run.result.scenario_hash[:12] in table
    [row] = json.loads(_twin(twin, "runs", "--db", path, "--format", "json").output)
    assert (row["scenario"], row["label"], row["overrides"]) == ("nightly", "nightly", [])
    assert row["scenario_hash"] == run.result.scenario_hash


def test_runs_in_csv_and_json_carry_every_column(twin: click.Group, db: str) -> None:
    rows = json.loads(_twin(twin, "runs", "--db", db, "--format", "json").output)
    assert [r["run_id"] for r in rows] == [3, 2, 1]
    assert rows[0]["status"] == "failed" and rows[0]["error"] == "boom"
    assert rows[2]["scenario"] == "hall" and rows[2]["until_h"] == 40.0
    for name in ("started", "finished", "heartbeat"):
        assert ISO_UTC.fullmatch(rows[2][name]), rows[2][name]
    lines = _twin(twin, "runs", "--db", db, "--format", "csv").output.splitlines()
    frame = pd.read_csv(io.StringIO("\n".join(lines)))
    assert frame["run_id"].tolist() == [3, 2, 1] and frame.columns[0] == "run_id"
    assert frame["started"].tolist() == [r["started"] for r in rows]
    assert frame["overrides"].tolist() == ["[]"] * 3


def test_show_in_csv_is_one_row_of_the_run_and_its_kpis(twin: click.Group, db: str) -> None:
    frame = pd.read_csv(io.StringIO(_twin(twin, "show", "1", "--db", db, "--format", "csv").output))
    assert len(frame) == 1
    row = frame.iloc[0]
    assert (row["run_id"], row["status"], row["availability"], row["failures.psu"]) == (
        1, "completed", 0.99, 3.0,
    )  # fmt: skip
    assert ISO_UTC.fullmatch(row["started"])


def test_show_format_json_is_show_json(twin: click.Group, db: str) -> None:
    by_format = json.loads(_twin(twin, "show", "1", "--db", db, "--format", "json").output)
    by_flag = json.loads(_twin(twin, "show", "1", "--db", db, "--json").output)
    assert by_format == by_flag and ISO_UTC.fullmatch(by_flag["run"]["started"])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_into_a_place_that_is_not_a_folder_exits_2(
    twin: click.Group, db: str, fmt: str
) -> None:
    result = CliRunner().invoke(
        twin, ["export", "1", "--format", fmt, "--out", "/etc/passwd/x", "--db", db]
    )
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert line == "Error: --out /etc/passwd/x: cannot write there (Not a directory)"


def test_an_export_that_fails_half_way_leaves_no_file(
    twin: click.Group, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "full"
    real = pd.DataFrame.to_csv
    calls: list[object] = []

    def disk_full_at_the_second_file(
        frame: pd.DataFrame, *args: object, **kwargs: object
    ) -> object:
        calls.append(args)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(frame, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full_at_the_second_file)
    result = CliRunner().invoke(twin, ["export", "1", "--out", str(out), "--db", db])
    assert result.exit_code == 2, result.output
    assert (
        result.output.strip() == f"Error: --out {out}: cannot write there (No space left on device)"
    )
    assert list(out.iterdir()) == []


def test_rm_deletes_a_run_with_its_records(twin: click.Group, db: str) -> None:
    assert _twin(twin, "rm", "1", "--db", db, "--yes").output == "deleted run 1\n"
    assert [
        r["run_id"] for r in json.loads(_twin(twin, "runs", "--db", db, "--format", "json").output)
    ] == [3, 2]
    with open_store(db) as store:
        counts = store.query(
            "SELECT (SELECT COUNT(*) FROM events WHERE run_id = 1) AS e,"
            " (SELECT COUNT(*) FROM metric_series WHERE run_id = 1) AS s,"
            " (SELECT COUNT(*) FROM kpis WHERE run_id = 1) AS k,"
            " (SELECT COUNT(*) FROM events) AS kept"
        )
    assert counts.values.tolist() == [[0, 0, 0, 30]]
    assert CliRunner().invoke(twin, ["show", "1", "--db", db]).exit_code == 2


def test_rm_asks_first_unless_told_yes(twin: click.Group, db: str) -> None:
    kept = CliRunner().invoke(twin, ["rm", "2", "--db", db], input="n\n")
    assert kept.exit_code == 0 and "Delete run 2 (small, completed, started" in kept.output
    assert "kept run 2" in kept.output
    unanswered = CliRunner().invoke(twin, ["rm", "2", "--db", db], input="")
    assert unanswered.exit_code == 2 and "give --yes" in unanswered.output
    assert _twin(twin, "show", "2", "--db", db).exit_code == 0
    gone = CliRunner().invoke(twin, ["rm", "2", "--db", db], input="y\n")
    assert gone.exit_code == 0 and "deleted run 2" in gone.output
    assert CliRunner().invoke(twin, ["show", "2", "--db", db]).exit_code == 2


def test_rm_refuses_a_running_run(twin: click.Group, tmp_path: Path) -> None:
    path = str(tmp_path / "live.db")
    with open_store(path) as store:
        writer = store.begin_run(**synthetic_run(0, 0).header)  # type: ignore[arg-type]
        result = CliRunner().invoke(twin, ["rm", str(writer.run_id), "--db", path, "--yes"])
        assert result.exit_code == 2
        assert result.output.strip() == (
            "Error: run 1 is running; it can be deleted once it has ended (or its process is gone)"
        )
        writer.fail("stopped")
    assert _twin(twin, "rm", "1", "--db", path, "--yes").exit_code == 0


HOSTILE = "evil\x1b]0;pwned\x07\x1b[2J[bold]x[/bold]\u202e"


def test_stored_text_reaches_the_terminal_escaped(twin: click.Group, tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    with open_store(path) as store:  # as an old store (or another tool) may hold it
        writer = store.begin_run(**synthetic_run(0, 0, scenario_name=HOSTILE).header)  # type: ignore[arg-type]
        writer.fail(f"boom {HOSTILE}")
    shown = "evil\\x1b]0;pwned\\x07\\x1b[2J[bold]x[/bold]\\u202e"
    for args in (["runs"], ["show", "1"]):  # tables, always read by a person
        out = _twin(twin, *args, "--db", path).output
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out, args
        assert shown in out, args
    for args in (["runs", "--format", "csv"], ["show", "1", "--format", "csv"]):
        assert HOSTILE in _twin(twin, *args, "--db", path).output, args  # to a pipe: exact


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_csv_to_a_terminal_is_escaped_and_to_a_pipe_exact() -> None:
    from cli.formats import write_csv

    for out, expected in ((_Terminal(), "a\\x1b[2Jb"), (io.StringIO(), "a\x1b[2Jb")):
        write_csv(out, ["name"], [["a\x1b[2Jb"]])
        assert out.getvalue() == f"name\n{expected}\n"


def test_stored_json_keeps_text_exact(twin: click.Group, tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    with open_store(path) as store:
        writer = store.begin_run(**synthetic_run(0, 0, scenario_name=HOSTILE).header)  # type: ignore[arg-type]
        writer.fail(f"boom {HOSTILE}")
    rows = json.loads(_twin(twin, "runs", "--db", path, "--format", "json").output)
    assert rows[0]["scenario"] == HOSTILE  # JSON keeps the text exact, escaped its own way
    assert "\x1b" not in _twin(twin, "runs", "--db", path, "--format", "json").output
