"""`twin runs`, `show`, `export`, `rm`: look into the store, and tidy it (`twin query`:
cli.query_command).

Each command parses its options, calls one `storage` function and prints;
store errors are `StoreError`, which the group turns into exit code 2.
`runs` and `show` print a table (for people), CSV or JSON (for programs);
values print as `cli.formats` writes them: timestamps ISO 8601 in UTC
(``2026-12-01T14:00:00Z``) on every backend, stored text with its control
characters escaped.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.formats import cell as _cell
from cli.formats import plain as _plain
from cli.formats import print_rows, write_csv, write_json
from cli.options import db_option
from cli.terminal import printable
from twin.records import nest_kpis

if TYPE_CHECKING:  # pandas is imported by storage when a command reads; `twin run` never pays
    import pandas as pd

__all__ = ["runs", "show", "export", "rm"]

_RUN_COLUMNS = {
    "run_id": "run",
    "started": "started",
    "status": "status",
    "scenario": "scenario",
    "hash": "hash",
    "label": "label",
    "seed": "seed",
    "days": "days",
    "systems": "systems",
    "wall_s": "wall s",
}
_FORMATS = ("table", "csv", "json")


def format_option(func):  # type: ignore[no-untyped-def]
    """``--format table|csv|json``."""
    return click.option(
        "--format", "fmt", type=click.Choice(_FORMATS), default="table", show_default=True,
        help="Output format: a table, or CSV / JSON for programs.",
    )(func)  # fmt: skip


class _UsageError(click.ClickException):
    """A command that cannot do what was asked as it was asked (exit code 2)."""

    exit_code = 2


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


def _print_csv(columns: list[str], rows: Iterable[Sequence[Any]]) -> None:
    write_csv(sys.stdout, columns, rows)


def _print_frame(frame: pd.DataFrame, fmt: str, title: str | None = None) -> None:
    columns, rows = [str(c) for c in frame.columns], frame.itertuples(index=False, name=None)
    if fmt == "json":
        write_json(sys.stdout, columns, rows)
    elif fmt == "csv":
        _print_csv(columns, rows)
    else:
        _print_table(frame, title=title)


def _echo_lines(lines: Iterable[str]) -> None:
    for line in lines:
        click.echo(line)


# -- commands ----------------------------------------------------------------


@click.command()
@click.option("--scenario", metavar="NAME", help="Only runs that go by this name.")
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
@format_option
@db_option
def runs(
    scenario: str | None,
    status: str | None,
    since: datetime | None,
    limit: int,
    fmt: str,
    db_url: str,
) -> None:
    """List stored runs, latest first.

    Failed and interrupted runs are listed too (filter with --status); only
    completed runs count in the views and reports. A run goes by its
    --label, or its scenario's name (followed by + and 8 digits of the
    scenario's hash when --set changed it); the table shows the scenario's
    hash, CSV and JSON every column, --set overrides included.

    Example:

    \b
        twin runs --scenario hall --status completed --since 2025-01-01 --limit 10
    """
    from storage import read_runs

    frame = read_runs(db_url, scenario=scenario, status=status, since=since, limit=limit)
    if fmt != "table":
        _print_frame(frame, fmt)
        return
    frame["days"] = frame["until_h"] / 24.0
    frame["hash"] = frame["scenario_hash"].str[:12]
    shown = frame[list(_RUN_COLUMNS)].rename(columns=_RUN_COLUMNS)
    _print_table(shown, title=f"{len(shown)} run(s)")


@click.command()
@click.argument("run_id", metavar="RUN", type=int)
@db_option
@format_option
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option(
    "--scenario", "as_scenario", is_flag=True,
    help="Print the scenario the run ran as a TOML file, which `twin run` reproduces it from.",
)  # fmt: skip
def show(run_id: int, db_url: str, fmt: str, as_json: bool, as_scenario: bool) -> None:
    """Show one run: status, KPIs, events by kind and cause, resolved scenario.

    The scenario is shown with this run's own seed and horizon. --format
    json prints one object; --format csv one row: the run's columns, then
    one column per KPI. --scenario prints the scenario as TOML instead:
    `twin run` on that file (no --set needed) repeats the run exactly; its
    name is the name the run goes by, so a re-run is listed with it.

    Example:

    \b
        twin show 12 --db runs.db --format json
        twin show 12 --scenario > rerun.toml && twin run rerun.toml
    """
    from storage import event_summary, open_store, read_kpis, read_run

    with open_store(db_url, create=False) as store:
        header = read_run(store, run_id)
        kpis = read_kpis(store, run_id)
        summary = event_summary(store, run_id)
    document = header.pop("scenario_document")
    if as_scenario:
        click.echo(_scenario_file(header, document), nl=False)
        return
    flat = dict(zip(kpis["name"], kpis["value"], strict=True))
    fmt = "json" if as_json else fmt
    if fmt == "json":
        out = {
            "run": {key: _plain(value) for key, value in header.items()},
            "kpis": nest_kpis(flat, clean=_plain),
            "events": _records(summary),
            "scenario": document,
        }
        click.echo(json.dumps(out))
    elif fmt == "csv":
        _print_csv([*header, *flat], [[*header.values(), *flat.values()]])
    else:
        _echo_lines(f"{key:>13}: {_cell(value)}" for key, value in header.items())
        _print_table(kpis.rename(columns={"name": "KPI"}), title="KPIs")
        _print_table(summary, title="Events by kind and cause")
        click.echo("Resolved scenario:")
        click.echo(json.dumps(document, indent=2, sort_keys=True))


def _scenario_file(header: dict[str, Any], document: dict[str, Any]) -> str:
    """The TOML file that reruns a run: named as the run goes, its provenance in comments."""
    from cli.scenario_toml import scenario_toml

    comments = [
        f"run {header['run_id']} ({header['status']}, wafertwin {header['code_version']}), "
        f"started {_plain(header['started'])}",
        f"scenario {header['scenario_name']}, hash {header['scenario_hash']}",
    ]
    if header["overrides"]:
        made = (o if o.startswith("--") else f"--set {o}" for o in header["overrides"])
        comments.append("made with " + " ".join(made))
    if header["label"]:
        comments.append(f"label {header['label']}")
    return scenario_toml({**document, "name": header["scenario"]}, comments)


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
    the format's extension, each row starting with its run_id; existing
    files are replaced. The files appear together once all are written: a
    folder that cannot be written is an error (exit code 2) that leaves no
    file behind.

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
    files = {}
    for name, frame in tables.items():
        frame.insert(0, "run_id", run_id)
        files[out_dir / f"run-{run_id}-{name}.{fmt}"] = frame
    _write_together(files, fmt, out_dir)
    for path, frame in files.items():
        click.echo(f"{printable(str(path))} ({len(frame)} rows)")


def _write_together(files: dict[Path, pd.DataFrame], fmt: str, out_dir: Path) -> None:
    """Write every frame to a hidden file beside its path, then rename them all into
    place; on any error remove what was written and raise `_UsageError`."""
    temporary = {path: path.with_name(f".{path.name}.{os.getpid()}.part") for path in files}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for path, frame in files.items():
            if fmt == "parquet":
                frame.to_parquet(temporary[path], index=False)
            else:
                frame.to_csv(temporary[path], index=False)
        for path, part in temporary.items():
            os.replace(part, path)
    except OSError as exc:
        for part in temporary.values():
            with contextlib.suppress(OSError):  # never written, or its folder is not one
                part.unlink()
        where = printable(str(out_dir))
        raise _UsageError(f"--out {where}: cannot write there ({exc.strerror or exc})") from exc


@click.command()
@click.argument("run_id", metavar="RUN", type=int)
@click.option("--yes", is_flag=True, help="Delete without asking.")
@db_option
def rm(run_id: int, yes: bool, db_url: str) -> None:
    """Delete a run with its events, metrics and KPIs.

    Asks first, unless --yes is given; with no answer (no terminal to ask) it
    deletes nothing and exits 2, a "no" keeps the run and exits 0.
    A run that is still running is refused (exit code 2); one whose process
    is gone is marked interrupted when the store opens and can be deleted.

    Example:

    \b
        twin rm 12 --yes
    """
    from storage import open_store, read_run
    from storage.remove import delete_run

    with open_store(db_url, create=False) as store:  # an existing store, or no store
        run = read_run(store, run_id)
    if not yes:
        question = (
            f"Delete run {run_id} ({_cell(run['scenario'])}, {run['status']}, started "
            f"{_plain(run['started'])}) with its events, metrics and KPIs?"
        )
        try:
            agreed = click.confirm(question)
        except click.Abort:  # no answer: end of input, no terminal to ask
            raise _UsageError(f"run {run_id} not deleted: no answer to the question; "
                              "give --yes to delete without asking") from None
        if not agreed:
            click.echo(f"kept run {run_id}")
            return
    with open_store(db_url) as store:  # deleting writes: opened (and migrated) to write
        delete_run(store, run_id)
    click.echo(f"deleted run {run_id}")
