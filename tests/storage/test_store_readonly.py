"""`Store.query` cannot change the store: refused with a clear message, and refused
by the database itself when the SQL slips past the lexical check."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import SQLAlchemyError

from storage import Store, StoreError, read_runs
from storage.readonly import check_read_only
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


@pytest.mark.parametrize("sql", WRITES)
def test_the_database_refuses_writes_without_the_lexical_check(filled: Store, sql: str) -> None:
    before = _counts(filled)
    with pytest.raises(SQLAlchemyError):
        with filled.read_engine.connect() as conn:
            conn.execution_options(no_parameters=True).exec_driver_sql(sql)
            conn.commit()
    assert _counts(filled) == before


def test_sqlite_query_cannot_attach_a_file(tmp_path: Path) -> None:
    from storage import open_store

    with open_store(tmp_path / "s.db") as store:
        target = tmp_path / "other.db"
        with pytest.raises(SQLAlchemyError):
            with store.read_engine.connect() as conn:
                conn.exec_driver_sql(f"ATTACH DATABASE '{target}' AS other")
        assert not target.exists()


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
