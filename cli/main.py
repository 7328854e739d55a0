"""Entry point of the `twin` console script: the click group and error policy.

Exit codes: 0 success, 2 bad input (`ScenarioError`, `StoreError`, click usage
errors), 1 internal error, 130 Ctrl-C, 143 SIGTERM, 141 output closed by its
reader (see `cli.terminal`). Each
command lives in a small module and is registered in `COMMANDS` by name; a
command's module is imported only when the command runs or shows its help, so
`twin --help` loads no engine, numpy or database driver
(tests/cli/test_startup.py). `main` also spares start-up and exit the
garbage collector's passes over objects that live as long as the process
(see `main`); the command's own work runs with the collector on.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import textwrap
from collections.abc import Iterator, MutableMapping

import click

from cli.terminal import handle_signals, interrupted, output_closed, printable
from twin.errors import TwinError

__all__ = ["cli", "main", "COMMANDS"]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}

# name -> ("module:attribute", the first line of its docstring, as `twin --help` lists it;
# tests/cli/test_startup.py checks each against the command's own)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("cli.run_commands:run", "Simulate a scenario, store the run and print its KPIs."),
    "check": ("cli.run_commands:check", "Validate a scenario file without running it."),
    "runs": ("cli.store_commands:runs", "List stored runs, latest first."),
    "show": (
        "cli.store_commands:show",
        "Show one run: status, KPIs, events by kind and cause, resolved scenario.",
    ),
    "query": ("cli.query_command:query", "Run one read-only SQL statement against the store."),
    "export": (
        "cli.store_commands:export",
        "Write a run's events, metrics and KPIs to files, one per table.",
    ),
    "rm": ("cli.store_commands:rm", "Delete a run with its events, metrics and KPIs."),
    "perf": (
        "cli.perf_command:perf",
        "Tokens/s, time to first token and systems of a model over a grid, without a run.",
    ),
    "calibrate": (
        "cli.calibrate_command:calibrate",
        "Refit the throughput model's constants and print every figure against it.",
    ),
    "sweep": (
        "cli.sweep_commands:sweep",
        "Run a scenario's replications (and factor levels) with 95 % intervals per KPI.",
    ),
    "compare": (
        "cli.sweep_commands:compare",
        "Compare two scenarios replication by replication (paired by seed).",
    ),
    "nightly": (
        "cli.sweep_commands:nightly",
        "Run the nightly sweeps and flag watched KPIs that changed since the previous night.",
    ),
    "sensitivity": (
        "cli.sweep_commands:sensitivity",
        "Rank scenario parameters by their effect on a KPI (Morris elementary effects).",
    ),
}


class _LazyCommands(MutableMapping[str, click.Command]):
    """A group's command table that imports a command's module on first access."""

    def __init__(self, where: dict[str, tuple[str, str]]) -> None:
        self._where = {name: target for name, (target, _) in where.items()}
        self._summaries = {name: summary for name, (_, summary) in where.items()}
        self._loaded: dict[str, click.Command] = {}

    def summary(self, name: str) -> str:
        """The command's one-line help, without importing it if it is not loaded yet."""
        if name in self._loaded:
            return self._loaded[name].get_short_help_str(limit=1000)
        return self._summaries[name]

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            module, _, attribute = self._where[name].partition(":")
            self._loaded[name] = getattr(importlib.import_module(module), attribute)
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._where[name] = ""
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._where[name]
        self._summaries.pop(name, None)
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


class _Failure(click.ClickException):
    """A `TwinError` shown as a click error, keeping its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # per instance: 1 or 2


class TwinGroup(click.Group):
    """A group that turns a `TwinError` into a click error with the right exit code,
    and lists its commands from `COMMANDS` without importing them."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except TwinError as exc:
            raise _Failure(printable(str(exc), keep_newlines=True), exc.exit_code) from exc
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM as `Terminated`
            raise _Failure(*interrupted(exc)) from exc
        except BrokenPipeError:  # `twin query ... | head -1`: the reader went away
            raise SystemExit(output_closed()) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        table = self.commands
        if not isinstance(table, _LazyCommands):
            return super().format_commands(ctx, formatter)
        names = self.list_commands(ctx)
        if names:
            limit = formatter.width - 6 - max(len(name) for name in names)
            rows = [
                (name, textwrap.shorten(table.summary(name), limit, placeholder="..."))
                for name in names
            ]
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=TwinGroup, commands=_LazyCommands(COMMANDS), context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="wafertwin")
def cli() -> None:
    """wafertwin: an event-driven digital twin of a wafer-scale AI datacenter hall.

    Example:

        twin run scenarios/hall.toml --seed 7 --json
    """
    # the command's module is loaded: its work runs with the collector on (see `main`)
    global _collector_paused
    if _collector_paused:
        _collector_paused = False
        gc.enable()


# set by `main` while the command's modules load
_collector_paused = False


def main() -> None:
    """Run the CLI (console script `twin`).

    Loading a command (numpy, pydantic, the scenario schema) makes ~37k objects
    that live as long as the process: the collector's ~64 passes over them while
    they load free nothing, and neither would the interpreter's last full pass at
    exit. So the collector is off until the command's module is loaded (`cli`
    turns it back on), and what is left at exit is frozen, not collected: the
    process gives its memory back whole. Together 50-90 ms of a `twin run`
    (docs/performance.md).

    No command makes a BLAS call (the simulation is single-threaded): unless told
    otherwise, OpenBLAS starts no threads as numpy loads. Its one thread per core
    would only spin, ~50 ms of CPU taken from the run on a busy machine.
    """
    global _collector_paused
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    handle_signals()
    if gc.isenabled():
        gc.disable()
        _collector_paused = True
    atexit.register(gc.freeze)
    cli(prog_name="twin")
