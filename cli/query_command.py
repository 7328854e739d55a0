"""`twin query`: one read-only SQL statement against the store, printed as it streams.

The statement runs as a session that can only read (`storage.query`), for at
most ``--timeout`` seconds. CSV and JSON are written row by row, so any
result size passes through; the table keeps at most ``--max-rows`` rows.
"""

from __future__ import annotations

import re
import sys
from itertools import islice

import click

from cli.formats import print_rows, write_csv, write_json
from cli.options import db_option
from storage.query import DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S
from twin.errors import StoreError

__all__ = ["query", "TABLE_MAX_ROWS"]

TABLE_MAX_ROWS = 1000
_NAME = re.compile(r"[^\W\d]\w*")


def _parameters(pairs: tuple[str, ...]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not _NAME.fullmatch(name):
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="'-p'")
        params[name] = value
    return params


def _read_sql(sql: str) -> str:
    if sql != "-":
        return sql
    try:
        return sys.stdin.read()
    except UnicodeDecodeError as exc:
        raise StoreError(f"the SQL on standard input is not UTF-8 text ({exc.reason})") from exc


@click.command()
@click.argument("sql")
@db_option
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
    show_default=True, help="Output format.",
)  # fmt: skip
@click.option(
    "-p", "--param", "params", multiple=True, metavar="NAME=VALUE",
    help="Value of the query's :NAME placeholder, as text (repeatable).",
)  # fmt: skip
@click.option(
    "--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True, max=MAX_TIMEOUT_S),
    default=DEFAULT_TIMEOUT_S, show_default=True, metavar="SECONDS",
    help=f"Stop the query after this long (at most {MAX_TIMEOUT_S:g}).",
)  # fmt: skip
@click.option(
    "--max-rows", type=click.IntRange(min=0), metavar="N",
    help=f"Print at most N rows, 0 for all [default: {TABLE_MAX_ROWS} for the table, "
    "all for csv and json].",
)  # fmt: skip
@click.option(
    "--reader-db", "reader_url", envvar="TWIN_READER_DB", metavar="URL",
    help="PostgreSQL: the URL of a role that can only read the store, for the query "
    "(env TWIN_READER_DB; default: the --db user if it can only read, else wafertwin_reader).",
)  # fmt: skip
def query(
    sql: str,
    db_url: str,
    fmt: str,
    params: tuple[str, ...],
    timeout_s: float,
    max_rows: int | None,
    reader_url: str | None,
) -> None:
    """Run one read-only SQL statement against the store.

    SQL is the statement, or - to read it from standard input. Placeholders
    :NAME take their values from -p NAME=VALUE. The statement runs as a
    session that can only read the store: INSERT, UPDATE, DELETE, DROP and
    the like are refused (exit code 2), as is a second statement after a
    semicolon. The views v_availability, v_failures_by_cause,
    v_capacity_lost_by_cause and v_kpi_trend answer the common questions,
    and the view metrics gives every metric one row per bucket (run_id, t,
    bucket, scope, name, value); see docs/store.md.

    Example:

    \b
        twin query "SELECT * FROM v_failures_by_cause WHERE run_id = :run" -p run=12 --format csv
        echo "SELECT COUNT(*) AS runs FROM runs" | twin query - --format json
    """
    from storage import open_store

    statement = _read_sql(sql)
    values = _parameters(params)
    limit = (TABLE_MAX_ROWS if fmt == "table" else 0) if max_rows is None else max_rows
    out = sys.stdout
    with (
        open_store(db_url, create=False, reader_url=reader_url) as store,
        store.query_rows(statement, values, timeout_s=timeout_s) as result,
    ):
        rows = result.rows if limit == 0 else islice(result.rows, limit + 1)
        if fmt == "table":
            shown = list(rows)
            print_rows(result.columns, shown[:limit] if limit else shown)
            more = bool(limit) and len(shown) > limit
        else:
            write = write_json if fmt == "json" else write_csv
            written = write(out, result.columns, islice(rows, limit or None))
            more = bool(limit) and written == limit and next(rows, None) is not None
    if more:
        click.echo(f"(the first {limit} rows; --max-rows 0 prints all)", err=True)
