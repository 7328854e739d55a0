"""`twin runs`, `twin show`, `twin export`: look into the store (`twin query`: cli.query_command).

Each command parses its options, calls one `storage` function and prints;
store errors are `StoreError`, which the group turns into exit code 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.formats import cell as _cell
from cli.formats import plain as _plain
from cli.formats import print_rows
from cli.options import db_option
from twin.records import nest_kpis

if TYPE_CHECKING:  # pandas is imported by storage when a command reads; `twin run` never pays
    import pandas as pd

__all__ = ["COMMANDS", "runs", "show", "export"]

_RUN_COLUMNS = {
    "run_id": "run",
    "started": "started",
    "status": "status",
    "scenario": "scenario",
    "seed": "seed",
    "days": "days",
    "systems": "systems",
    "wall_s": "wall s",
}


# -- formatting --------------------------------------------------------------


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = [str(c) for c in frame.columns]
    return [
        {name: _plain(value) for name, value in zip(columns, row, strict=True)}
        for row in frame.itertuples(index=False, name=None)
    ]


def _print_table(frame: pd.DataFrame, title: str | None = None) -> None:
    from pandas.api.types import is_numeric_dtype

    numeric = [is_numeric_dtype(frame[name]) for name in frame.columns]
    rows = frame.itertuples(index=False, name=None)
    print_rows([str(c) for c in frame.columns], rows, title=title, numeric=numeric)


def _echo_lines(lines: Iterable[str]) -> None:
    for line in lines:
        click.echo(line)


# -- commands ----------------------------------------------------------------


@click.command()
@click.option("--scenario", metavar="NAME", help="Only runs of this scenario name.")
@click.option(
    "--status",
    type=click.Choice(["running", "completed", "failed", "interrupted"]),
    help="Only runs with this status.",
)
@click.option(
    "--since", metavar="YYYY-MM-DD", type=click.DateTime(["%Y-%m-%d"]),
    help="Only runs started on or after this day (UTC).",
)  # fmt: skip
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True,
    help="Show at most N runs.",
)  # fmt: skip
@db_option
def runs(
    scenario: str | None, status: str | None, since: datetime | None, limit: int, db_url: str
) -> None:
    """List stored runs, latest first.

    Failed and interrupted runs are listed too (filter with --status); only
    completed runs count in the views and reports.

    Example:

    \b
        twin runs --scenario hall --status completed --since 2025-01-01 --limit 10
    """
    from storage import read_runs

    frame = read_runs(db_url, scenario=scenario, status=status, since=since, limit=limit)
    frame["days"] = frame["until_h"] / 24.0
    shown = frame[list(_RUN_COLUMNS)].rename(columns=_RUN_COLUMNS)
    _print_table(shown, title=f"{len(shown)} run(s)")


@click.command()
@click.argument("run_id", metavar="RUN", type=int)
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def show(run_id: int, db_url: str, as_json: bool) -> None:
    """Show one run: status, KPIs, events by kind and cause, resolved scenario.

    Example:

    \b
        twin show 12 --db runs.db --json
    """
    from storage import event_summary, open_store, read_kpis, read_run

    with open_store(db_url, create=False) as store:
        header = read_run(store, run_id)
        kpis = read_kpis(store, run_id)
        summary = event_summary(store, run_id)
    document = header.pop("scenario_document")
    if as_json:
        flat = dict(zip(kpis["name"], kpis["value"], strict=True))
        out = {
            "run": {key: _plain(value) for key, value in header.items()},
            "kpis": nest_kpis(flat, clean=_plain),
            "events": _records(summary),
            "scenario": document,
        }
        click.echo(json.dumps(out))
        return
    _echo_lines(f"{key:>13}: {_cell(value)}" for key, value in header.items())
    _print_table(kpis.rename(columns={"name": "KPI"}), title="KPIs")
    _print_table(summary, title="Events by kind and cause")
    click.echo("Resolved scenario:")
    click.echo(json.dumps(document, indent=2, sort_keys=True))


@click.command()
@click.argument("run_id", metavar="RUN", type=int)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True,
    help="File format.",
)  # fmt: skip
@click.option(
    "--out", "out_dir", required=True, metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path), help="Folder to write into (created).",
)  # fmt: skip
@db_option
def export(run_id: int, fmt: str, out_dir: Path, db_url: str) -> None:
    """Write a run's events, metrics and KPIs to files, one per table.

    Files are named run-RUN-events, run-RUN-metrics and run-RUN-kpis with
    the format's extension; existing files are replaced.

    Example:

    \b
        twin export 12 --format parquet --out exports/
    """
    from storage import open_store, read_events, read_kpis, read_metrics

    with open_store(db_url, create=False) as store:
        tables = {
            "events": read_events(store, run_id),
            "metrics": read_metrics(store, run_id),
            "kpis": read_kpis(store, run_id),
        }
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        path = out_dir / f"run-{run_id}-{name}.{fmt}"
        if fmt == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
        click.echo(f"{path} ({len(frame)} rows)")


COMMANDS = [runs, show, export]
