"""`Store.query` cannot change the store: refused with a clear message, and refused
by the database itself when the SQL slips past the lexical check. It is bounded in
time, streams its rows, and binds ``:name`` parameters outside literals only."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import storage.query
from storage import Store, StoreError, open_store, read_runs
from storage.readonly import check_read_only, parameter_names, to_pyformat, words_outside_literals
from storage.testing import synthetic_run, write_run

WRITES = [
    "DELETE FROM runs",
    "delete from events where run_id = 1",
    "UPDATE runs SET status = 'completed'",
    "INSERT INTO kpis (run_id, name, value) VALUES (1, 'x', 1.0)",
    "DROP TABLE events",
    "DROP VIEW v_availability",
    "WITH gone AS (DELETE FROM runs RETURNING id) SELECT * FROM gone",
    "SELECT 1; DELETE FROM runs",
    "SELECT 1; COMMIT; DELETE FROM runs",
    "/* just a look */ DELETE FROM runs",
    "VACUUM",
    "CREATE TABLE x (a INT)",
]


@pytest.fixture
def filled(store: Store) -> Store:
    write_run(store, synthetic_run(40, 40))
    return store


def _counts(store: Store) -> tuple[int, int, int]:
    counts = store.query(
        "SELECT (SELECT COUNT(*) FROM runs) AS r, (SELECT COUNT(*) FROM events) AS e,"
        " (SELECT COUNT(*) FROM kpis) AS k"
    )
    return tuple(int(v) for v in counts.iloc[0])  # type: ignore[return-value]


@pytest.mark.parametrize("sql", WRITES)
def test_writes_are_refused_and_change_nothing(filled: Store, sql: str) -> None:
    before = _counts(filled)
    with pytest.raises(StoreError, match="refused"):
        filled.query(sql)
    assert _counts(filled) == before == (1, 40, 2)


@pytest.fixture
def unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let every statement past the lexical check, as if it had missed it."""
    monkeypatch.setattr(storage.query, "check_read_only", lambda sql, _dialect: sql)


@pytest.mark.parametrize("sql", WRITES)
@pytest.mark.usefixtures("unchecked")
def test_the_database_refuses_writes_without_the_lexical_check(filled: Store, sql: str) -> None:
    before = _counts(filled)
    with pytest.raises(StoreError):
        filled.query(sql)
    assert _counts(filled) == before


@pytest.mark.usefixtures("unchecked")
def test_sqlite_query_cannot_attach_a_file(tmp_path: Path) -> None:
    with open_store(tmp_path / "s.db") as store:
        target = tmp_path / "other.db"
        with pytest.raises(StoreError, match="refused"):
            store.query(f"ATTACH DATABASE '{target}' AS other")
        assert not target.exists()


def test_schema_pragmas_are_readable_as_tables(filled: Store) -> None:
    if filled.backend != "sqlite":
        pytest.skip("a SQLite feature")
    columns = filled.query("SELECT * FROM pragma_table_info('runs')")
    assert "status" in columns["name"].tolist()


# A result whose later rows fail: read whole, it is an error before any row.
LATE_ERROR = {
    "sqlite": "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 100000)"
    " SELECT x, CASE WHEN x <= 5000 THEN x ELSE abs(-9223372036854775807 - 1) END AS y FROM g",
    "postgresql": "SELECT g AS x, CASE WHEN g <= 5000 THEN g ELSE 1 / (g - g) END AS y"
    " FROM generate_series(1, 100000) g",
}


def test_rows_stream_from_the_database(filled: Store) -> None:
    sql = LATE_ERROR[filled.backend]
    with filled.query_rows(sql) as result:
        assert result.columns == ["x", "y"]
        assert [next(result.rows) for _ in range(10)] == [(i, i) for i in range(1, 11)]
    with filled.query_rows(sql) as result, pytest.raises(StoreError, match="query failed"):
        for count, _row in enumerate(result.rows, 1):  # noqa: B007
            pass
    assert count >= 4999  # the good rows came through (Python's sqlite3 steps one row ahead)


def test_a_query_is_stopped_at_its_time_limit(filled: Store) -> None:
    endless = {
        "sqlite": "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g)"
        " SELECT COUNT(*) FROM g",
        "postgresql": "SELECT pg_sleep(60)",
    }[filled.backend]
    with pytest.raises(StoreError, match="time limit of 0.2 s"):
        filled.query(endless, timeout_s=0.2)
    for bad in (0.0, storage.query.MAX_TIMEOUT_S + 1, math.inf, math.nan):
        with pytest.raises(StoreError, match="timeout: expected .* at most 3600, got"):
            filled.query("SELECT 1", timeout_s=bad)


def test_parameters_are_bound_outside_literals_only(filled: Store) -> None:
    frame = filled.query(
        "SELECT ':kind 50%' AS text, COUNT(*) AS n FROM events WHERE kind = :kind",
        {"kind": "failure"},
    )
    assert frame.values.tolist() == [[":kind 50%", 20]]
    with pytest.raises(StoreError, match=r"parameter :kind has no value"):
        filled.query("SELECT * FROM events WHERE kind = :kind")
    with pytest.raises(StoreError, match="'seed' given, but the query has no :seed"):
        filled.query("SELECT 1 AS one", {"seed": 7})


def test_reads_work_with_parameters_and_literals(filled: Store) -> None:
    frame = filled.query("SELECT COUNT(*) AS n FROM events WHERE kind = :kind", {"kind": "failure"})
    assert frame["n"][0] == 20
    literal = filled.query("SELECT '50% at 12:30; ok' AS s, COUNT(*) AS n FROM runs")
    assert literal.values.tolist() == [["50% at 12:30; ok", 1]]
    assert filled.query("select status from runs;")["status"].tolist() == ["completed"]
    assert "name" in filled.query("SELECT * FROM kpis WHERE 1 = 0").columns


def test_errors_are_one_line_store_errors(filled: Store) -> None:
    with pytest.raises(StoreError, match="query failed") as info:
        filled.query("SELECT nope FROM runs")
    assert "\n" not in str(info.value)
    with pytest.raises(StoreError, match="empty query"):
        filled.query("  ;  ")
    with pytest.raises(StoreError, match="must start with"):
        filled.query("ANALYZE runs")


def test_an_empty_result_keeps_its_columns(filled: Store) -> None:
    assert filled.query("SELECT * FROM kpis WHERE 1 = 0").columns.tolist() == [
        "run_id",
        "name",
        "value",
    ]


def test_read_helpers_do_not_write(filled: Store) -> None:
    assert len(read_runs(filled)) == 1  # through the read-only engine


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'DELETE FROM runs' AS text",
        'SELECT "update" FROM (SELECT 1 AS "update") AS t',
        "SELECT 1 -- DROP TABLE runs",
        "SELECT 1 /* ; DELETE */",
        "SELECT $$; DROP$$",
        "  with x as (select 1 as created) select created from x ;",
    ],
)
def test_lexical_check_ignores_literals_and_comments(sql: str) -> None:
    assert check_read_only(sql)


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        # PostgreSQL nests comments, and a standard string ends at its first lone quote.
        (
            "/* /* */ SELECT '\\' */ COPY (SELECT 1) TO PROGRAM 'touch pwned' -- '",
            ["COPY", "SELECT", "TO", "PROGRAM"],
        ),
        ("SELECT 'a\\'; DELETE FROM runs; --'", ["SELECT", ";", "DELETE", "FROM", "RUNS", ";"]),
        ("SELECT E'a\\'; b' AS s", ["SELECT", "AS", "S"]),
        ("SELECT a$b$ FROM t; DELETE --$b$", ["SELECT", "A$B$", "FROM", "T", ";", "DELETE"]),
        ("SELECT $t$ ; DROP $t$, $$x$$", ["SELECT"]),
    ],
)
def test_the_lexical_check_splits_as_postgresql_does(sql: str, words: list[str]) -> None:
    assert words_outside_literals(sql, "postgresql") == words


def test_the_lexical_check_splits_as_sqlite_does() -> None:
    assert words_outside_literals("SELECT [a;b] /* /* */ FROM x", "sqlite") == [
        "SELECT",
        "FROM",
        "X",
    ]


@pytest.mark.parametrize(
    "sql",
    [
        "/* /* */ SELECT '\\' */ COPY (SELECT 1) TO PROGRAM 'touch pwned' -- '",
        "SELECT 'a\\'; DELETE FROM runs; --'",
        "SELECT a$b$ FROM t; DELETE FROM runs; --$b$",
    ],
)
def test_the_lexical_check_names_the_hidden_write(sql: str) -> None:
    with pytest.raises(StoreError, match="refused"):
        check_read_only(sql, "postgresql")


def test_parameters_are_found_and_rewritten_outside_literals() -> None:
    sql = "SELECT :a, ':b', x::int, /* :c */ :d, '50%'"
    assert parameter_names(sql) == {"a", "d"}
    assert to_pyformat(sql) == "SELECT %(a)s, ':b', x::int, /* :c */ %(d)s, '50%%'"


def test_a_store_gone_after_opening_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    open_store(path).close()
    with open_store(path, create=False) as store:
        path.unlink()
        with pytest.raises(StoreError, match="cannot connect to run the query"):
            store.query("SELECT 1")
