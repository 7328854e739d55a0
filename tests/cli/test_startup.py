"""What `twin` loads to start: a command's module only when it runs or shows its help.

Start-up time is measured in `bench/` (section `startup`); these tests check
only *which* heavy modules a command imports, in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from cli.main import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"

# runs `twin ARGS...` as the console script does, then prints the modules loaded
_PROBE = """
import json, sys
from cli.main import main
sys.argv = ["twin", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)))
"""

# runs `twin ARGS...` as `loaded` does and reports the garbage collector's passes
# before the command's own work starts (the group's callback) and after it, and
# what is frozen when the interpreter finalizes (atexit runs handlers last-in first-out)
_COLLECTOR_PROBE = """
import atexit, gc, json, sys
from cli.main import cli, main
passes = {"loading": 0, "command": 0}
phase = ["loading"]
def count(stage, info):
    if stage == "stop":
        passes[phase[0]] += 1
gc.callbacks.append(count)
group_callback = cli.callback
def start_command():
    group_callback()
    phase[0] = "command"
    passes["enabled"] = gc.isenabled()
cli.callback = start_command
def report():
    passes["frozen"] = gc.get_freeze_count()
    sys.stderr.write("\\nCOLLECTOR " + json.dumps(passes))
atexit.register(report)
sys.argv = ["twin", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
"""

HEAVY = {"simpy", "numpy", "scipy", "sqlalchemy", "pandas", "pydantic", "alembic", "rich"}


def loaded(*args: str, cwd: Path) -> set[str]:
    """Top-level packages a fresh `twin ARGS...` has imported when it exits."""
    return {module.split(".")[0] for module in modules_loaded(*args, cwd=cwd)}


def modules_loaded(*args: str, cwd: Path) -> set[str]:
    """Every module a fresh `twin ARGS...` has imported when it exits."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, cwd=cwd,
        timeout=120,
    )
    last = done.stderr.rstrip().rsplit("\n", 1)[-1]
    assert last.startswith("MODULES "), done.stderr
    return set(json.loads(last.removeprefix("MODULES ")))


def test_help_loads_no_command_module_engine_or_database(tmp_path: Path) -> None:
    assert not loaded("--help", cwd=tmp_path) & (HEAVY | {"storage"})


def test_check_loads_the_scenario_schema_but_no_engine_or_database(tmp_path: Path) -> None:
    modules = loaded("check", str(SCENARIOS / "hall.toml"), cwd=tmp_path)
    assert "pydantic" in modules, "the probe sees what the command imports"
    assert not modules & {"simpy", "scipy", "sqlalchemy", "pandas", "alembic", "storage"}


def test_run_without_the_store_loads_no_database_or_pandas(tmp_path: Path) -> None:
    modules = loaded(
        "run", str(SCENARIOS / "small.toml"), "--until", "2d", "--no-store", "--json", cwd=tmp_path
    )
    assert "simpy" in modules, "the probe sees the run"
    assert not modules & {"sqlalchemy", "pandas", "alembic", "storage", "rich"}
    assert "scipy" not in modules, "no lognormal failure law in small.toml: no scipy.special"
    assert not (tmp_path / "twin.db").exists()


def test_the_collector_is_off_while_a_command_loads_on_while_it_runs_and_frozen_at_exit(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _COLLECTOR_PROBE, "run", str(SCENARIOS / "small.toml"),
         "--until", "2d", "--no-store", "--json"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    last = done.stderr.rstrip().rsplit("\n", 1)[-1]
    assert done.returncode == 0 and last.startswith("COLLECTOR "), done.stderr
    passes = json.loads(last.removeprefix("COLLECTOR "))
    # loading numpy, pydantic and the schema made ~80 passes that freed nothing
    assert passes["loading"] == 0
    # the run's garbage is collected (simulate ends with a pass when the collector is on)
    assert passes["enabled"] and passes["command"] > 0
    # what is left at exit is frozen: the interpreter's last pass skips it
    assert passes["frozen"] > 0


_THREADS_PROBE = """
import os, sys
from cli.main import main
sys.argv = ["twin", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
sys.stderr.write("\\nTHREADS " + str(len(os.listdir("/proc/self/task"))))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
@pytest.mark.parametrize(("blas", "threads"), [(None, 1), ("2", 2)])
def test_a_run_starts_no_blas_threads_unless_told_to(
    tmp_path: Path, blas: str | None, threads: int
) -> None:
    if threads > (os.cpu_count() or 1):
        pytest.skip("OpenBLAS starts at most one thread per core")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    if blas is not None:
        env["OPENBLAS_NUM_THREADS"] = blas
    done = subprocess.run(
        [sys.executable, "-c", _THREADS_PROBE, "run", str(SCENARIOS / "small.toml"),
         "--until", "2d", "--no-store", "--json"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )
    last = done.stderr.rstrip().rsplit("\n", 1)[-1]
    assert done.returncode == 0 and last.startswith("THREADS "), done.stderr
    assert int(last.removeprefix("THREADS ")) == threads


def test_the_default_hall_runs_without_numpy_ma(tmp_path: Path) -> None:
    # np.unique loads numpy.ma (~10 ms) to ask whether its input is masked
    modules = modules_loaded("run", str(SCENARIOS / "hall.toml"), "--until", "1d", "--no-store",
                             "--json", cwd=tmp_path)
    assert "twin.mechanisms.wafer" in modules, "the probe sees the wafers built"
    assert not {m for m in modules if m == "numpy.ma" or m.startswith("numpy.ma.")}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_listed_summary_is_the_commands_own_first_line(
    twin: click.Group, name: str
) -> None:
    command = twin.commands[name]
    assert command.name == name
    assert COMMANDS[name][1] == command.get_short_help_str(limit=1000)


def test_every_command_a_module_declares_is_registered_under_its_name() -> None:
    import importlib

    modules = {target.partition(":")[0] for target, _ in COMMANDS.values()}
    declared = {
        f"{module}:{command.callback.__name__}": command.name
        for module in modules
        for command in vars(importlib.import_module(module)).values()
        if isinstance(command, click.Command) and command.callback is not None
    }
    assert declared == {target: name for name, (target, _) in COMMANDS.items()}


def test_help_lists_every_command_with_its_summary(twin: click.Group) -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(twin, ["--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    commands = result.output.split("Commands:", 1)[1]
    for name, (_, summary) in COMMANDS.items():
        assert f"  {name}  " in commands and summary in commands, name


def test_an_unknown_command_is_a_usage_error(twin: click.Group) -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(twin, ["nonesuch"])
    assert result.exit_code == 2 and "No such command 'nonesuch'" in result.output


def test_every_public_name_of_twin_is_there_when_asked_for() -> None:
    import twin
    from twin.engine import simulate
    from twin.errors import TwinError

    assert all(getattr(twin, name) is not None for name in twin.__all__)
    assert twin.simulate is simulate and twin.TwinError is TwinError
    with pytest.raises(AttributeError, match="nonesuch"):
        twin.nonesuch  # noqa: B018 - the attribute access is the test
