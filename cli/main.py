"""Entry point of the `twin` console script: the click group and error policy.

Exit codes: 0 success, 2 bad input (`ScenarioError`, `StoreError`, click usage
errors), 1 internal error, 130 Ctrl-C, 143 SIGTERM (see `cli.terminal`). Each
command lives in a small module and is registered here.
"""

from __future__ import annotations

import click

from cli import query_command, run_commands, store_commands
from cli.terminal import handle_sigterm, interrupted, printable
from twin.errors import TwinError

__all__ = ["cli", "main"]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


class _Failure(click.ClickException):
    """A `TwinError` shown as a click error, keeping its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # per instance: 1 or 2


class TwinGroup(click.Group):
    """A group that turns a `TwinError` into a click error with the right exit code."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except TwinError as exc:
            raise _Failure(printable(str(exc), keep_newlines=True), exc.exit_code) from exc
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM as `Terminated`
            raise _Failure(*interrupted(exc)) from exc


@click.group(cls=TwinGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="wafertwin")
def cli() -> None:
    """wafertwin: an event-driven digital twin of a wafer-scale AI datacenter hall.

    Example:

        twin run scenarios/hall.toml --seed 7 --json
    """


for _command in (*run_commands.COMMANDS, *store_commands.COMMANDS, *query_command.COMMANDS):
    cli.add_command(_command)


def main() -> None:
    """Run the CLI (console script `twin`)."""
    handle_sigterm()
    cli(prog_name="twin")
