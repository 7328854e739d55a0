"""`twin run` and `twin check` through click's CliRunner, and the docs of every command.

Exit codes: 0 success, 2 bad input with one line per problem naming the file
(or --set / --until), the dotted key and what was expected. A run with bad
input writes nothing to the store; a good run is stored with its KPIs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from storage import read_kpis, read_run, read_runs
from twin.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
HALL = str(SCENARIOS / "hall.toml")
SMALL = str(SCENARIOS / "small.toml")

# "<source>: <dotted key>: expected ..." or "<source>: expected ..." (a file-level problem)
PROBLEM = re.compile(r"^\S+: (\S+: )?expected \S")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own directory, so the default ./twin.db lands there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TWIN_DB", raising=False)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/t.db"


def invoke(twin: click.Group, *args: str) -> Result:
    return CliRunner().invoke(twin, list(args))


def run_json(twin: click.Group, *args: str) -> dict[str, Any]:
    result = invoke(twin, "run", *args, "--json")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1, "one JSON object on one line"
    parsed: dict[str, Any] = json.loads(lines[0])
    return parsed


def stored_runs(url: str, tmp_path: Path) -> int:
    """How many runs the store at `url` holds (0 if it was never created)."""
    if not (tmp_path / "t.db").exists():
        return 0
    return len(read_runs(url))


def problems(result: Result) -> list[str]:
    """The lines of a bad-input error, without click's 'Error: ' prefix."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    text = result.stderr.removeprefix("Error: ")
    lines = text.rstrip("\n").split("\n")
    assert all(PROBLEM.match(line) for line in lines), lines
    return lines


# --- twin run ------------------------------------------------------------------------


def test_run_json_prints_one_object_with_the_run_and_its_kpis(twin: click.Group) -> None:
    out = run_json(twin, SMALL, "--no-store")
    assert {"run_id", "scenario", "seed", "simulated_days", "wall_s", "systems", "kpis"} <= set(out)
    assert out["run_id"] is None  # --no-store
    assert (out["scenario"], out["seed"], out["simulated_days"], out["systems"]) == (
        "small", 1, 30.0, 24,
    )
    assert out["wall_s"] >= 0
    kpis = out["kpis"]
    assert 0.0 <= kpis["availability"] <= 1.0
    assert set(kpis["failures"]) == {"psu", "pump", "fan", "wafer", "cores"}
    assert {"trips", "throttle_events"} <= set(kpis["thermal"])
    assert kpis["energy"]["it_mwh"] > 0


def test_seed_until_and_set_take_effect(twin: click.Group) -> None:
    one = run_json(twin, HALL, "--no-store", "--until", "7d")
    seven = run_json(twin, HALL, "--no-store", "--until", "7d", "--seed", "7")
    assert (one["seed"], seven["seed"]) == (1, 7)
    assert seven["kpis"] != one["kpis"]
    assert one["simulated_days"] == 7.0
    assert run_json(twin, HALL, "--no-store", "--until", "36h")["simulated_days"] == 1.5
    small = run_json(twin, HALL, "--no-store", "--until", "1d", "--set", "hall.rows=2")
    assert small["systems"] == 2 * 17 * 3


def test_the_scenario_file_sets_the_seed_and_the_horizon_unless_overridden(
    twin: click.Group,
) -> None:
    out = run_json(twin, SMALL, "--no-store", "--set", "run.seed=5", "--set", "run.until=2d")
    assert (out["seed"], out["simulated_days"]) == (5, 2.0)
    out = run_json(twin, SMALL, "--no-store", "--set", "run.seed=5", "--seed", "6")
    assert out["seed"] == 6  # the option wins over the file and --set


def test_the_same_seed_twice_gives_identical_kpis(twin: click.Group) -> None:
    first = run_json(twin, HALL, "--no-store", "--until", "7d", "--seed", "3")
    second = run_json(twin, HALL, "--no-store", "--until", "7d", "--seed", "3")
    assert first["kpis"] == second["kpis"]
    assert first["scenario_hash"] == second["scenario_hash"]


def test_the_table_names_every_kpi(twin: click.Group) -> None:
    result = invoke(twin, "run", SMALL, "--no-store")
    assert result.exit_code == 0, result.output
    for name in (
        "availability", "capacity", "energy.it_mwh", "failures.psu", "failures.pump",
        "failures.fan", "failures.wafer", "thermal.trips", "thermal.throttle_events",
        "repair.crew_utilization",
    ):
        assert name in result.stdout
    assert "small" in result.stdout and "24 systems" in result.stdout


# --- the store -----------------------------------------------------------------------


def test_a_good_run_is_stored_with_its_scenario_and_kpis(
    twin: click.Group, db: str, tmp_path: Path
) -> None:
    out = run_json(twin, SMALL, "--db", db, "--seed", "4", "--until", "5d")
    runs = read_runs(db)
    assert runs["run_id"].tolist() == [out["run_id"]]
    run = read_run(db, out["run_id"])
    assert (run["status"], run["scenario"], run["seed"], run["until_h"], run["systems"]) == (
        "completed", "small", 4, 120.0, 24,
    )
    scenario = load_scenario(SMALL, ["run.seed=4", 'run.until="5 d"'])  # as it ran
    assert run["scenario_document"] == scenario.document()
    assert run["scenario_hash"] == scenario.digest() == out["scenario_hash"]
    frame = read_kpis(db, out["run_id"])
    kpis = dict(zip(frame["name"], frame["value"], strict=True))
    assert kpis["availability"] == out["kpis"]["availability"]
    assert kpis["failures.psu"] == out["kpis"]["failures"]["psu"]


def test_runs_accumulate_in_the_store(twin: click.Group, db: str, tmp_path: Path) -> None:
    first = run_json(twin, SMALL, "--db", db, "--until", "1d")
    second = run_json(twin, SMALL, "--db", db, "--until", "1d", "--seed", "2")
    assert first["run_id"] != second["run_id"]
    assert stored_runs(db, tmp_path) == 2


def test_without_db_the_run_goes_to_twin_db_in_the_current_directory(
    twin: click.Group, tmp_path: Path
) -> None:
    out = run_json(twin, SMALL, "--until", "1d")
    assert (tmp_path / "twin.db").is_file()
    assert read_runs(f"sqlite:///{tmp_path}/twin.db")["run_id"].tolist() == [out["run_id"]]


def test_no_store_writes_nothing(twin: click.Group, tmp_path: Path) -> None:
    run_json(twin, SMALL, "--until", "1d", "--no-store")
    assert list(tmp_path.iterdir()) == []


BAD_RUNS = {
    "unknown key": (["--set", "hall.rowz=3"], "--set: hall.rowz: expected no such key"),
    "wrong unit": (["--set", "system.power=23 kelvin"], "--set: system.power: expected a power"),
    "bare number": (["--set", "system.power=23"], "--set: system.power: expected a power"),
    "bad --until": (["--until", "3 parsecs"], "--until: run.until: expected a time as a string"),
    "bare --until": (["--until", "3"], "--until: run.until: expected a time as a string"),
    "zero --until": (["--until", "0d"], "--until: run.until: expected a time above 0 h"),
    "huge --until": (["--until", "1e400 h"], "--until: run.until: expected a time above 0 h and "
                     "at most 876000 h, got '1e400 h'"),
    "101 years": (["--until", "101 y"], "--until: run.until: expected a time above 0 h and "
                  "at most 876000 h"),
    "malformed --set": (["--set", "hall.rows"], "--set: hall.rows: expected KEY=VALUE"),
    "probability": (["--set", "repair.wrong_unit_probability=2"],
                    "--set: repair.wrong_unit_probability: expected a probability between 0 and 1"),
}


@pytest.mark.parametrize(("args", "message"), BAD_RUNS.values(), ids=BAD_RUNS.keys())
def test_bad_input_exits_2_with_one_line_naming_the_key_and_stores_nothing(
    twin: click.Group, db: str, tmp_path: Path, args: list[str], message: str
) -> None:
    result = invoke(twin, "run", SMALL, "--db", db, *args)
    lines = problems(result)
    assert len(lines) == 1
    assert lines[0].startswith(message)
    assert stored_runs(db, tmp_path) == 0


def test_a_missing_scenario_file_exits_2_naming_it(
    twin: click.Group, db: str, tmp_path: Path
) -> None:
    result = invoke(twin, "run", "nowhere.toml", "--db", db)
    assert problems(result) == ["nowhere.toml: expected an existing scenario file"]
    assert stored_runs(db, tmp_path) == 0


def test_a_bad_scenario_file_exits_2_naming_the_file_and_key(
    twin: click.Group, db: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(f'extends = "{HALL}"\n[thermal]\ninlet = "30 K"\n')
    lines = problems(invoke(twin, "run", str(bad), "--db", db, "--allow-outside"))
    assert lines == [
        f"{bad}: thermal.inlet: expected a temperature as a string like '<number> <unit>' "
        "(unit one of C, degC, °C), got '30 K'"
    ]
    assert stored_runs(db, tmp_path) == 0


def test_every_problem_gets_its_own_line(twin: click.Group, db: str, tmp_path: Path) -> None:
    result = invoke(
        twin, "run", SMALL, "--db", db,
        "--set", "hall.rowz=3", "--set", "system.power=3", "--set", "repair.crews=0",
    )
    lines = problems(result)
    assert [line.split(": ")[1] for line in lines] == ["hall.rowz", "system.power", "repair.crews"]
    assert stored_runs(db, tmp_path) == 0


def test_a_usage_error_exits_2(twin: click.Group, db: str, tmp_path: Path) -> None:
    result = invoke(twin, "run", SMALL, "--db", db, "--seed", "-1")
    assert result.exit_code == 2
    assert "Invalid value for '--seed'" in result.stderr
    assert stored_runs(db, tmp_path) == 0


# --- twin check ----------------------------------------------------------------------


def test_check_a_valid_scenario_exits_0_and_says_so(twin: click.Group) -> None:
    result = invoke(twin, "check", HALL)
    assert result.exit_code == 0, result.output
    digest = load_scenario(HALL).digest()
    assert result.stdout == f"{HALL}: valid (hall, 1020 systems, hash {digest[:12]})\n"


def test_check_resolved_prints_the_resolved_document(twin: click.Group) -> None:
    result = invoke(twin, "check", SMALL, "--set", "thermal.inlet=35 C", "--resolved")
    assert result.exit_code == 0, result.output
    expected = load_scenario(SMALL, ["thermal.inlet=35 C"]).document()
    assert json.loads(result.stdout) == expected
    assert expected["thermal"]["inlet"] == "35.0 C"


def test_check_an_invalid_scenario_exits_2_naming_the_key(
    twin: click.Group, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[components.fan]\nrequired = 5\n")
    lines = problems(invoke(twin, "check", str(bad)))
    assert lines == [f"{bad}: components.fan.required: expected at most count (4)"]
    lines = problems(invoke(twin, "check", HALL, "--set", "hall.rowz=1"))
    assert lines == [  # the value of an unknown key is not echoed
        "--set: hall.rowz: expected no such key (a typo, or a key of another table?)"
    ]


def test_check_writes_nothing(twin: click.Group, tmp_path: Path) -> None:
    assert invoke(twin, "check", SMALL).exit_code == 0
    assert list(tmp_path.iterdir()) == []


# --- every command is documented -----------------------------------------------------


def _paths(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _paths(command, (*path, name))


def _every_command() -> list[tuple[str, ...]]:
    from cli.main import cli

    return [(), *_paths(cli)]


def _lookup(group: click.Group, path: tuple[str, ...]) -> click.Command:
    command: click.Command = group
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


def test_run_and_check_are_registered(twin: click.Group) -> None:
    assert {"run", "check"} <= set(twin.commands)


@pytest.mark.parametrize("path", _every_command(), ids=lambda p: " ".join(("twin", *p)))
def test_every_command_has_a_docstring_with_an_example_and_h_works(
    twin: click.Group, path: tuple[str, ...]
) -> None:
    command = _lookup(twin, path)
    name = " ".join(("twin", *path))
    assert command.help, f"{name} has no docstring"
    summary, _, body = command.help.partition("\n")
    assert summary.strip(), "the first line says what the command does"
    assert "Example:" in body, f"{name} has no Example: block"
    after = body.split("Example:", 1)[1].splitlines()
    example = next(line.strip() for line in after if line.strip() not in ("", "\b"))
    assert example.startswith(name), f"the example of {name} runs {name}"
    result = invoke(twin, *path, "-h")
    assert result.exit_code == 0, result.output
    assert "Example:" in result.stdout and example in result.stdout


def test_input_that_fails_only_while_running_exits_2_and_the_run_is_stored_failed(
    twin: click.Group, db: str, tmp_path: Path
) -> None:
    # one system whose new wafers all but never work, swapped and returned instantly
    hopeless = [
        "hall.rows=1", "hall.racks_per_row=1", "hall.systems_per_rack=1",
        "wafer.physical_cores=100", "wafer.active_cores=100", "wafer.min_active_fraction=1.0",
        'wafer.area="200 cm2"', 'wafer.defect_density="1 /cm2"', "spare_systems.count=1",
        'spare_systems.swap_time={dist="deterministic", value="0 h"}',
        'spare_systems.rma_time={dist="deterministic", value="0 h"}',
    ]
    args = [arg for change in hopeless for arg in ("--set", change)]
    lines = problems(invoke(twin, "run", SMALL, "--db", db, "--until", "10h", *args))
    assert len(lines) == 1
    assert lines[0].startswith(
        f"{SMALL}: wafer.defect_density: expected a density at which new wafers work"
    )
    [run] = read_runs(db).to_dict("records")
    assert run["status"] == "failed"
    assert "wafer.defect_density" in read_run(db, run["run_id"])["error"]


# --- hostile scenario files and arguments ---------------------------------------------


HOSTILE_FILES = {
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe",
    "not UTF-8": b"name = 'caf\xe9'\n",
    "deep TOML": b"a = " + b"[" * 5000 + b"]" * 5000,
    "a secret outside": b'extends = "../secret.toml"\n',
    "a pseudo-file": b'extends = "/proc/self/mem"\n',
}


@pytest.mark.parametrize("content", HOSTILE_FILES.values(), ids=HOSTILE_FILES.keys())
@pytest.mark.parametrize("command", ["run", "check"])
def test_a_hostile_scenario_file_exits_2_with_one_line_and_stores_nothing(
    twin: click.Group, db: str, tmp_path: Path, command: str, content: bytes
) -> None:
    (tmp_path / "secret.toml").write_text('password = "hunter2"\n')
    path = tmp_path / "site" / "x.toml"
    path.parent.mkdir()
    path.write_bytes(content)
    args = ["--db", db] if command == "run" else []
    lines = problems(invoke(twin, command, str(path), *args))
    assert len(lines) == 1 and lines[0].startswith(f"{path}: ")
    assert "hunter2" not in lines[0]
    assert stored_runs(db, tmp_path) == 0


def test_allow_outside_comes_from_the_flag_or_the_environment(
    twin: click.Group, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "base.toml").write_text("[hall]\nrows = 2\n")
    path = tmp_path / "site" / "x.toml"
    path.parent.mkdir()
    path.write_text('extends = "../base.toml"\n')
    assert problems(invoke(twin, "check", str(path)))[0].startswith(f"{path}: extends: ")
    assert invoke(twin, "check", str(path), "--allow-outside").exit_code == 0
    monkeypatch.setenv("TWIN_ALLOW_OUTSIDE", "1")
    result = invoke(twin, "check", str(path))
    assert result.exit_code == 0 and "102 systems" in result.stdout


def test_a_set_value_with_a_newline_exits_2_instead_of_being_cut(
    twin: click.Group, db: str, tmp_path: Path
) -> None:
    lines = problems(invoke(twin, "run", SMALL, "--db", db, "--set", "hall.rows=3\nhall.rows=9"))
    assert lines == [
        "--set: hall.rows: expected one line of text without control characters "
        "(\\x0a at position 11)"
    ]
    assert stored_runs(db, tmp_path) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed", "9223372036854775808"], "Invalid value for '--seed'"),
        (["--set", "run.seed=9223372036854775808"], "--set: run.seed: expected less than or equal"),
        (["--set", "hall.rows=true"], "--set: hall.rows: expected a valid integer"),
        (["--set", "wafer.cores_per_failure=inf"], "--set: wafer.cores_per_failure: expected a"),
        (["--set", "thermal.inlet=-400 C"], "--set: thermal.inlet: expected a temperature from"),
    ],
)
def test_absurd_numbers_exit_2_before_anything_is_stored(
    twin: click.Group, db: str, tmp_path: Path, args: list[str], message: str
) -> None:
    result = invoke(twin, "run", SMALL, "--db", db, "--until", "1d", *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and message in result.stderr
    assert stored_runs(db, tmp_path) == 0


def test_the_largest_seed_the_store_keeps_is_accepted(twin: click.Group, db: str) -> None:
    out = run_json(twin, SMALL, "--db", db, "--until", "1h", "--seed", str(2**63 - 1))
    assert read_run(db, out["run_id"])["seed"] == 2**63 - 1


ENDLESS = ["--set", 'wafer.core_failures={dist="exponential", mean="1 s"}', "--until", "100 y"]


def test_a_run_too_big_for_memory_exits_2_naming_the_key_and_stores_nothing(
    twin: click.Group, db: str, tmp_path: Path
) -> None:
    lines = problems(invoke(twin, "run", SMALL, "--db", db, *ENDLESS))
    assert len(lines) == 1
    assert lines[0].startswith(
        f"{SMALL}: wafer.core_failures: expected a run that fits in memory: it would take about "
    )
    assert stored_runs(db, tmp_path) == 0
    lines = problems(invoke(twin, "check", SMALL, *ENDLESS[:2], "--set", "run.until=100 y"))
    assert lines[0].startswith(f"{SMALL}: wafer.core_failures: expected a run that fits")
    result = invoke(twin, "check", SMALL, *ENDLESS[:2], "--set", "run.until=100 y", "--force")
    assert result.exit_code == 0, result.output


def test_a_life_of_zero_is_refused_before_the_run_instead_of_looping(
    twin: click.Group, db: str, tmp_path: Path
) -> None:
    zero = 'components.fan.failure={dist="deterministic", value="0 h"}'
    lines = problems(invoke(twin, "run", SMALL, "--db", db, "--set", zero))
    assert lines == [f"{SMALL}: components.fan.failure: expected a run that ends: a life with "
                     "a mean of zero renews without end"]
    assert stored_runs(db, tmp_path) == 0


def test_scale_multiplies_the_hall_and_its_support_after_set(twin: click.Group) -> None:
    out = run_json(twin, SMALL, "--no-store", "--until", "1d", "--set", "hall.rows=3",
                   "--scale", "4")
    assert out["systems"] == 4 * 3 * 4 * 3  # rows 3 (from --set) x 4, 4 racks, 3 systems
    base = json.loads(invoke(twin, "check", SMALL, "--resolved").stdout)
    result = invoke(twin, "check", SMALL, "--scale", "4", "--resolved")
    document = json.loads(result.stdout)
    assert (document["hall"]["rows"], document["repair"]["crews"]) == (
        4 * base["hall"]["rows"], 4 * base["repair"]["crews"]
    )
    assert document["spares"]["psu"]["stock"] == 4 * base["spares"]["psu"]["stock"]
    lines = problems(invoke(twin, "check", SMALL, "--scale", "5001"))
    assert lines[0].startswith("--scale: hall.rows: expected less than or equal to 10000")


def test_a_what_if_run_is_printed_under_the_name_it_goes_by(twin: click.Group, tmp_path) -> None:
    db = str(tmp_path / "w.db")
    plain = run_json(twin, SMALL, "--until", "2d", "--db", db)
    what_if = run_json(twin, SMALL, "--until", "2d", "--db", db, "--set", "repair.crews=3")
    labelled = run_json(twin, SMALL, "--until", "2d", "--no-store", "--label", "tight")
    assert plain["name"] == plain["scenario"] == "small"
    assert what_if["name"] == f"small+{what_if['scenario_hash'][:8]}"
    assert labelled["name"] == "tight"
    from storage import read_runs

    assert set(read_runs(db)["scenario"]) == {plain["name"], what_if["name"]}


def test_a_name_with_brackets_is_printed_as_written(twin: click.Group) -> None:
    result = invoke(twin, "run", SMALL, "--until", "2d", "--no-store", "--set", 'name="x[/bold]"')
    assert result.exit_code == 0, result.output
    assert "x[/bold]+" in result.stdout
