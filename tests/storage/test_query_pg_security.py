"""`twin query` on a shared PostgreSQL: the attacks of issue 7 change nothing, even with the
lexical check bypassed, because the session that runs them can only read the store.

The store's own URL is a superuser's (as the test server's is), which is the
dangerous case: the query must not run as that user.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import storage.query
from storage import Store, StoreError, open_store, read_runs, schema
from storage.migrate import PG_LOCK_CLASS, pg_lock_key
from storage.reader_role import READER_ROLE
from storage.testing import pg_test_schema, synthetic_run, write_run
from storage.urls import normalize_url
from storage.views import VIEW_NAMES

pytestmark = pytest.mark.pg


@pytest.fixture(scope="module")
def pg_url(base_url: str) -> Iterator[str]:
    with pg_test_schema(base_url) as url:
        yield url


@pytest.fixture(scope="module")
def admin(base_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(normalize_url(base_url), poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def filled(pg_url: str) -> Iterator[Store]:
    """One store for the module: every attack must leave it as it was."""
    with open_store(pg_url) as store:
        write_run(store, synthetic_run(40, 40))
        yield store


@pytest.fixture(params=["checked", "bypassed"])
def lexical(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each attack with the text check, and with it replaced by one that lets all through."""
    if request.param == "bypassed":
        monkeypatch.setattr(storage.query, "check_read_only", lambda sql, _dialect: sql)
    return str(request.param)


def _counts(store: Store) -> tuple[int, int, int]:
    with store.engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM events),"
            " (SELECT COUNT(*) FROM kpis)"
        ).one()
    return (row[0], row[1], row[2])


def _server_file_exists(admin: sa.Engine, path: str) -> bool:
    with admin.connect() as conn:
        found = conn.execute(sa.text("SELECT pg_stat_file(:p, true)"), {"p": path}).scalar()
    return found is not None


def test_copy_to_program_through_nested_comments_runs_nothing(
    filled: Store, admin: sa.Engine, lexical: str
) -> None:
    target = f"/tmp/twin_pwned_{uuid.uuid4().hex}"
    attack = f"/* /* */ SELECT '\\' */ COPY (SELECT 1) TO PROGRAM 'touch {target}' -- '"
    with pytest.raises(StoreError, match="refused"):
        filled.query(attack)
    assert not _server_file_exists(admin, target)
    assert _counts(filled) == (1, 40, 2)


def test_copy_to_a_server_file_writes_nothing(
    filled: Store, admin: sa.Engine, lexical: str
) -> None:
    target = f"/tmp/twin_pwned_{uuid.uuid4().hex}"
    with pytest.raises(StoreError, match="refused"):
        filled.query(f"COPY (SELECT * FROM runs) TO '{target}'")
    assert not _server_file_exists(admin, target)


@pytest.mark.parametrize(
    "attack",
    [
        "SELECT pg_read_file('PG_VERSION')",
        "SELECT pg_read_binary_file('PG_VERSION')",
        "SELECT * FROM pg_ls_dir('.')",
        "SELECT pg_reload_conf()",
        "SELECT pg_rotate_logfile()",
        "SELECT set_config('role', 'postgres', true), "
        "query_to_xml('SELECT pg_read_file(''PG_VERSION'')', true, true, '')",
        "SELECT set_config('session_authorization', 'postgres', true)",
        "SELECT lo_import('/etc/hostname')",
    ],
)
def test_superuser_powers_are_refused(filled: Store, attack: str) -> None:
    with pytest.raises(StoreError, match="refused: permission denied"):
        filled.query(attack)


@pytest.mark.parametrize(
    "attack",
    [
        "SELECT 'a\\'; DELETE FROM runs; --'",
        "SELECT a$b$ FROM (SELECT 1 AS a$b$) t; DELETE FROM runs; --$b$",
        "SELECT 1; COMMIT; DELETE FROM runs",
        "WITH gone AS (DELETE FROM runs RETURNING id) SELECT * FROM gone",
        "DELETE FROM runs",
        "TRUNCATE runs CASCADE",
        "DROP TABLE events",
        "UPDATE runs SET status = 'failed'",
        "CREATE TABLE twin_pwned (a int)",
        "SELECT set_config('transaction_read_only', 'off', true), 1",
    ],
)
def test_writes_change_nothing(filled: Store, attack: str, lexical: str) -> None:
    refused = "refused|read-only|read only|permission denied|cannot|must be"
    with pytest.raises(StoreError, match=refused):
        frame = filled.query(attack)
        if lexical == "bypassed" and "transaction_read_only" in attack:
            # PostgreSQL lets a READ ONLY transaction call this and stays read-only:
            # show it did, with a write in the same session afterwards
            assert frame.iloc[0, 0] == "off"
            filled.query("DELETE FROM runs")
    assert _counts(filled) == (1, 40, 2)
    assert read_runs(filled)["status"].tolist() == ["completed"]


def test_another_twin_connection_cannot_be_terminated(filled: Store, lexical: str) -> None:
    with filled.engine.connect() as victim:
        pid = victim.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        for attack in (f"SELECT pg_terminate_backend({pid})", f"SELECT pg_cancel_backend({pid})"):
            with pytest.raises(StoreError, match="refused: (permission denied|must be)"):
                filled.query(attack)
        assert victim.exec_driver_sql("SELECT 1").scalar() == 1


def test_queries_run_as_the_reader_role(filled: Store) -> None:
    who = filled.query("SELECT current_user AS c, session_user AS s")
    assert who.values.tolist() == [[READER_ROLE, READER_ROLE]]


def test_a_statement_is_stopped_at_its_time_limit(filled: Store) -> None:
    with pytest.raises(StoreError, match="time limit of 0.5 s"):
        filled.query("SELECT pg_sleep(60)", timeout_s=0.5)


def test_a_query_holding_the_migration_lock_does_not_stall_an_open(
    filled: Store, pg_url: str, admin: sa.Engine
) -> None:
    """The lock a migration takes is one any session can take; a current store needs none."""
    failures: list[StoreError] = []
    with filled.engine.connect() as conn:
        key = pg_lock_key(conn)

    def hold() -> None:
        try:
            filled.query(
                f"SELECT pg_advisory_lock({PG_LOCK_CLASS}, {key}), pg_sleep(60)", timeout_s=60
            )
        except StoreError as exc:
            failures.append(exc)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        pid = _wait_for_advisory_lock(admin, key)
        url = normalize_url(pg_url)
        impatient = url.update_query_dict(
            {"options": f"{url.query['options']} -clock_timeout=1000"}
        )
        with open_store(impatient) as other:  # would fail on the lock's 1 s timeout
            assert len(read_runs(other)) == 1
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_cancel_backend(:pid)"), {"pid": pid})
    finally:
        holder.join(timeout=90)
    assert failures and "query stopped" in str(failures[0])


def _wait_for_advisory_lock(admin: sa.Engine, key: int) -> int:
    deadline = time.monotonic() + 30  # waiting for the other thread, not measuring it
    while time.monotonic() < deadline:
        with admin.connect() as conn:
            pid = conn.execute(
                sa.text(
                    "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE l.locktype = 'advisory' AND l.classid = :cls AND l.objid = :key"
                    " AND l.granted AND a.usename = :reader"
                ),
                {"cls": PG_LOCK_CLASS, "key": key, "reader": READER_ROLE},
            ).scalar()
        if pid is not None:
            return int(pid)
        time.sleep(0.05)
    raise AssertionError("the query never took the lock")


def test_a_superuser_reader_url_is_refused(filled: Store, pg_url: str) -> None:
    with open_store(pg_url, create=False, reader_url=pg_url) as store:
        with pytest.raises(StoreError, match="superuser") as info:
            store.query("SELECT 1")
    assert "--reader-db" in str(info.value) and "\n" not in str(info.value)


@pytest.fixture
def login_role(admin: sa.Engine) -> Iterator[str]:
    """A login role of this test's own, dropped afterwards."""
    name = f"twin_test_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {name} LOGIN IN ROLE {READER_ROLE}")
    yield name
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP OWNED BY {name}")
        conn.exec_driver_sql(f"DROP ROLE {name}")


def _as(url: str, user: str) -> str:
    return normalize_url(url).set(username=user).render_as_string(hide_password=False)


def test_an_analyst_in_the_reader_role_queries_as_itself(
    filled: Store, pg_url: str, login_role: str
) -> None:
    with open_store(_as(pg_url, login_role), create=False) as store:
        assert store.query("SELECT session_user AS s, COUNT(*) AS n FROM runs").values.tolist() == [
            [login_role, 1]
        ]


@pytest.mark.parametrize(
    ("grant", "reason"),
    [
        ("GRANT pg_signal_backend TO {role}", "member of pg_signal_backend"),
        ("GRANT pg_read_server_files TO {role}", "member of pg_read_server_files"),
        ("GRANT INSERT ON runs TO {role}", "may change the store"),
    ],
)
def test_a_session_with_more_than_reading_is_refused(
    filled: Store, pg_url: str, login_role: str, grant: str, reason: str
) -> None:
    with filled.engine.begin() as conn:
        conn.exec_driver_sql(grant.format(role=login_role))
    with open_store(pg_url, create=False, reader_url=_as(pg_url, login_role)) as store:
        with pytest.raises(StoreError, match=reason):
            store.query("SELECT 1")


def test_every_relation_of_the_store_is_readable_by_the_reader_and_none_writable(
    filled: Store,
) -> None:
    rights = filled.query(
        "SELECT c.relname AS name,"
        " has_table_privilege(c.oid, 'SELECT') AS reads,"
        " has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') AS writes"
        " FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace"
        " AND c.relkind IN ('r', 'v', 'm', 'p') ORDER BY 1"
    )
    assert set(rights["name"]) == {"alembic_version", *schema.metadata.tables, *VIEW_NAMES}
    assert rights["reads"].all() and not rights["writes"].any()


def test_a_reader_that_cannot_connect_is_refused_with_a_way_out(filled: Store, pg_url: str) -> None:
    missing = _as(pg_url, f"twin_test_{uuid.uuid4().hex[:12]}")
    with open_store(pg_url, create=False, reader_url=missing) as store:
        with pytest.raises(StoreError, match="cannot connect") as info:
            store.query("SELECT 1")
    assert "docs/store.md" in str(info.value)
