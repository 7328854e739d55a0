"""Entry point of the `twin` console script: the click group and error policy.

Exit codes: 0 success, 2 bad input (`ScenarioError`, `StoreError`, click usage
errors), 1 internal error. Each command lives in a small module and is
registered here.
"""

from __future__ import annotations

import sys

import click

from cli import run_commands, store_commands
from twin.errors import TwinError

__all__ = ["cli", "main"]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="wafertwin")
def cli() -> None:
    """wafertwin: an event-driven digital twin of a wafer-scale AI datacenter hall.

    Example:

        twin run scenarios/hall.toml --seed 7 --json
    """


for _command in (*run_commands.COMMANDS, *store_commands.COMMANDS):
    cli.add_command(_command)


def main() -> None:
    """Run the CLI; a `TwinError` becomes a one-line message and its exit code."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except TwinError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
