"""`twin runs`, `twin show`, `twin query`, `twin export`: look into the store.

Each command parses its options, calls one `storage` function and prints;
store errors are `StoreError`, which the group turns into exit code 2.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.options import db_option
from twin.records import nest_kpis

if TYPE_CHECKING:  # pandas is imported by storage when a command reads; `twin run` never pays
    import pandas as pd

__all__ = ["COMMANDS", "runs", "show", "query", "export"]

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


def _plain(value: Any) -> Any:
    """A JSON-ready Python value: NaN, NaT and infinities -> None, timestamps -> ISO text."""
    if value is None or value != value:  # only missing values differ from themselves
        return None
    if isinstance(value, float | Decimal) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    item = getattr(value, "item", None)  # numpy scalars
    return _plain(item()) if callable(item) else value


def _cell(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.6g}"
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        return value[:19].replace("T", " ")  # timestamps to the second
    return str(value)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = [str(c) for c in frame.columns]
    return [
        {name: _plain(value) for name, value in zip(columns, row, strict=True)}
        for row in frame.itertuples(index=False, name=None)
    ]


def _print_table(frame: pd.DataFrame, title: str | None = None) -> None:
    from pandas.api.types import is_numeric_dtype
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name in frame.columns:
        numeric = is_numeric_dtype(frame[name])
        table.add_column(str(name), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False, name=None):
        table.add_row(*(_cell(v) for v in row))
    width = None if sys.stdout.isatty() else 200
    Console(width=width).print(table)


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
@click.argument("sql")
@db_option
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
    show_default=True, help="Output format.",
)  # fmt: skip
def query(sql: str, db_url: str, fmt: str) -> None:
    """Run one read-only SQL statement against the store.

    The statement runs on a connection that cannot write: INSERT, UPDATE,
    DELETE, DROP and the like are refused (exit code 2), as is a second
    statement after a semicolon. The views v_availability,
    v_failures_by_cause, v_capacity_lost_by_cause and v_kpi_trend answer the
    common questions, and the view metrics gives every metric one row per
    bucket (run_id, t, bucket, scope, name, value); see docs/store.md.

    Example:

    \b
        twin query "SELECT * FROM v_failures_by_cause WHERE run_id = 12" --format csv
    """
    from storage import open_store

    with open_store(db_url, create=False) as store:
        frame = store.query(sql)
    if fmt == "json":
        click.echo(json.dumps(_records(frame)))
    elif fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    else:
        _print_table(frame)


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


COMMANDS = [runs, show, query, export]
