"""`twin query` through click's CliRunner: stdin, parameters, streaming, limits, JSON of
every column type, on a SQLite store and (marked pg) on PostgreSQL."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from cli.query_command import TABLE_MAX_ROWS
from storage import open_store
from storage.query import MAX_TIMEOUT_S
from storage.testing import PG_URL_ENV, pg_test_schema, synthetic_run, write_run

COUNT_TO = "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {n}) "
LATE_ERROR = COUNT_TO.format(n=100000) + (
    "SELECT x, CASE WHEN x <= 5000 THEN x ELSE abs(-9223372036854775807 - 1) END AS y FROM g"
)


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "runs.db")
    with open_store(path) as store:
        write_run(store, synthetic_run(60, 40, seed=1, scenario_name="hall"))
        write_run(store, synthetic_run(30, 20, seed=2, scenario_name="small"))
    return path


@pytest.fixture
def pg_db() -> Iterator[str]:
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(f"{PG_URL_ENV} is not set")
    with pg_test_schema(base) as url:
        with open_store(url) as store:
            write_run(store, synthetic_run(10, 10, scenario_name="hall"))
        yield url


def _query(twin: click.Group, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(twin, ["query", *args], input=stdin)


def test_the_sql_can_come_from_stdin(twin: click.Group, db: str) -> None:
    sql = "SELECT COUNT(*) AS n\nFROM runs;\n"
    result = _query(twin, "-", "--db", db, "--format", "csv", stdin=sql)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["n", "2"]


def test_parameters_are_bound(twin: click.Group, db: str) -> None:
    sql = "SELECT run_id, scenario FROM v_availability WHERE scenario = :s AND seed = :seed"
    result = _query(twin, sql, "-p", "s=small", "-p", "seed=2", "--db", db, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"run_id": 2, "scenario": "small"}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "nonsense"], "expected NAME=VALUE"),
        (["-p", "x=1"], "'x' given, but the query has no :x"),
        (["--timeout", "0"], "--timeout"),
    ],
)
def test_bad_parameters_exit_2(twin: click.Group, db: str, args: list[str], message: str) -> None:
    result = _query(twin, "SELECT 1 AS one", *args, "--db", db)
    assert result.exit_code == 2 and message in result.output


def test_bytes_are_json_hex_text(twin: click.Group, db: str) -> None:
    result = _query(twin, "SELECT x'00ff' AS b, 1.5 AS f", "--db", db, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"b": "\\x00ff", "f": 1.5}]


@pytest.mark.pg
def test_postgresql_types_are_json(twin: click.Group, pg_db: str) -> None:
    sql = (
        "SELECT '1 day 2 hours 3.5 seconds'::interval AS i, '12:30'::time AS t,"
        " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, '\\x00ff'::bytea AS b,"
        " DATE '2025-06-01' AS d, TIMESTAMP '2025-06-01 02:03:04' AS ts, 12.50::numeric AS n,"
        " ARRAY[1, 2] AS a, '{\"k\": [1]}'::jsonb AS j, '10.0.0.1'::inet AS ip"
    )
    result = _query(twin, sql, "--db", pg_db, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {
            "i": "P1DT2H3.5S",
            "t": "12:30:00",
            "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "b": "\\x00ff",
            "d": "2025-06-01",
            "ts": "2025-06-01T02:03:04Z",
            "n": 12.5,
            "a": [1, 2],
            "j": {"k": [1]},
            "ip": "10.0.0.1",
        }
    ]
    csv = _query(twin, sql, "--db", pg_db, "--format", "csv")
    assert csv.exit_code == 0 and csv.stdout.splitlines()[1].startswith("P1DT2H3.5S,12:30:00,")


@pytest.mark.pg
def test_a_superuser_reader_url_is_refused_with_a_way_out(twin: click.Group, pg_db: str) -> None:
    result = _query(twin, "SELECT 1", "--db", pg_db, "--reader-db", pg_db)
    assert result.exit_code == 2
    assert "superuser" in result.output and "docs/store.md" in result.output


@pytest.mark.pg
def test_postgresql_rows_stream_to_csv(twin: click.Group, pg_db: str) -> None:
    sql = (
        "SELECT g, CASE WHEN g <= 5000 THEN g ELSE 1 / (g - g) END AS y"
        " FROM generate_series(1, 100000) g"
    )
    result = _query(twin, sql, "--db", pg_db, "--format", "csv")
    assert result.exit_code == 2 and "division by zero" in result.stderr
    assert len(result.stdout.splitlines()) == 5001  # header and every good row


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_rows_are_written_as_they_come(twin: click.Group, db: str, fmt: str) -> None:
    """Held whole, the result would fail before its first row; streamed, the good rows are out."""
    result = _query(twin, LATE_ERROR, "--db", db, "--format", fmt)
    assert result.exit_code == 2 and "integer overflow" in result.stderr
    assert result.stdout.count("\n") >= 4999 if fmt == "csv" else result.stdout.count("}") >= 4999


def test_the_table_stops_at_its_row_limit(twin: click.Group, db: str) -> None:
    result = _query(twin, LATE_ERROR, "--db", db)
    assert result.exit_code == 0, result.output
    assert f"the first {TABLE_MAX_ROWS} rows" in result.stderr
    assert f"│ {TABLE_MAX_ROWS} │" in result.stdout.replace("  ", " ").replace("  ", " ")
    small = _query(twin, LATE_ERROR, "--db", db, "--format", "csv", "--max-rows", "3")
    assert small.exit_code == 0 and small.stdout.splitlines() == ["x,y", "1,1", "2,2", "3,3"]


def test_max_rows_0_lifts_the_table_limit(twin: click.Group, db: str) -> None:
    sql = COUNT_TO.format(n=TABLE_MAX_ROWS + 5) + "SELECT x FROM g"
    result = _query(twin, sql, "--db", db, "--max-rows", "0")
    assert result.exit_code == 0 and not result.stderr
    assert str(TABLE_MAX_ROWS + 5) in result.stdout


def test_a_query_past_its_timeout_exits_2(twin: click.Group, db: str) -> None:
    endless = "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g) SELECT MAX(x) FROM g"
    result = _query(twin, endless, "--db", db, "--timeout", "0.2")
    assert result.exit_code == 2 and "time limit of 0.2 s" in result.output


@pytest.mark.parametrize("seconds", ["3600.5", "1e7", "inf"])
def test_a_timeout_above_the_maximum_is_a_usage_error(
    twin: click.Group, db: str, seconds: str
) -> None:
    result = _query(twin, "SELECT 1 AS one", "--db", db, "--timeout", seconds)
    assert result.exit_code == 2
    assert "--timeout" in result.output and f"<={MAX_TIMEOUT_S:g}" in result.output


def test_a_timeout_that_is_not_a_number_exits_2(twin: click.Group, db: str) -> None:
    result = _query(twin, "SELECT 1 AS one", "--db", db, "--timeout", "nan")
    assert result.exit_code == 2 and f"at most {MAX_TIMEOUT_S:g}, got nan" in result.output


@pytest.mark.pg
def test_the_longest_timeout_reaches_postgresql_whole(twin: click.Group, pg_db: str) -> None:
    sql = "SELECT current_setting('statement_timeout') AS t"
    result = _query(twin, sql, "--db", pg_db, "--timeout", str(MAX_TIMEOUT_S), "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["t", "1h"]


def test_the_query_command_is_documented_with_an_example(twin: click.Group) -> None:
    result = CliRunner().invoke(twin, ["query", "-h"])
    assert result.exit_code == 0 and "Example:" in result.output and "-p" in result.output
