"""The PostgreSQL migration lock: the store's own, waited for within a bound.

Advisory locks have no permissions (any session, a reader's query included,
can take any key), so a lock held on one key must hold up migrations of one
store only, and for a bounded time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from storage import StoreError, open_store
from storage import migrate as migrate_module
from storage.engines import make_write_engine
from storage.migrate import HEAD, PG_LOCK_CLASS, current_revision, pg_lock_key, upgrade
from storage.testing import pg_test_schema
from storage.urls import display_url, normalize_url

pytestmark = pytest.mark.pg

OLD_CONSTANT_KEY = 0x7A1F_7781  # the one key every store's migration took before


@pytest.fixture
def admin(base_url: str) -> Iterator[sa.Connection]:
    """A session of its own, outside any store schema, to hold locks with."""
    engine = sa.create_engine(normalize_url(base_url), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn
    engine.dispose()


@pytest.fixture
def new_schema(base_url: str) -> Iterator[str]:
    with pg_test_schema(base_url) as url:
        yield url


def _key_of(url: str) -> int:
    engine = sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        key = pg_lock_key(conn)
    engine.dispose()
    return key


def _tables(url: str) -> list[str]:
    engine = sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        names = sa.inspect(conn).get_table_names()
    engine.dispose()
    return names


def test_each_store_has_its_own_key(base_url: str, new_schema: str) -> None:
    with pg_test_schema(base_url) as other:
        assert _key_of(new_schema) == _key_of(new_schema)  # every session of one store agrees
        assert _key_of(new_schema) != _key_of(other)
    assert _key_of(new_schema) != OLD_CONSTANT_KEY


def test_the_old_constant_key_held_does_not_block_creating_a_store(
    admin: sa.Connection, new_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a reader could: `SELECT pg_advisory_lock(2048882561), pg_sleep(...)`."""
    monkeypatch.setattr(migrate_module, "LOCK_WAIT_S", 1.0)
    url = normalize_url(new_schema)
    # Bounds the wait on code that sets no lock wait of its own, too.
    impatient = url.update_query_dict({"options": f"{url.query['options']} -clock_timeout=1000"})
    admin.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": OLD_CONSTANT_KEY})
    try:
        with open_store(impatient) as store, store.engine.connect() as conn:
            assert current_revision(conn) == HEAD
    finally:
        admin.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": OLD_CONSTANT_KEY})


def test_another_stores_key_held_does_not_block_creating_a_store(
    admin: sa.Connection, base_url: str, new_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrate_module, "LOCK_WAIT_S", 1.0)
    with pg_test_schema(base_url) as other:
        other_key = _key_of(other)
        admin.execute(
            sa.text("SELECT pg_advisory_lock(:c, :k)"), {"c": PG_LOCK_CLASS, "k": other_key}
        )
        try:
            with open_store(new_schema) as store, store.engine.connect() as conn:
                assert current_revision(conn) == HEAD
        finally:
            admin.execute(
                sa.text("SELECT pg_advisory_unlock(:c, :k)"), {"c": PG_LOCK_CLASS, "k": other_key}
            )


def test_a_held_store_lock_fails_its_migration_in_one_line_after_the_wait(
    admin: sa.Connection, new_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrate_module, "LOCK_WAIT_S", 0.5)
    key = _key_of(new_schema)
    admin.execute(sa.text("SELECT pg_advisory_lock(:c, :k)"), {"c": PG_LOCK_CLASS, "k": key})
    try:
        with pytest.raises(StoreError) as info:
            open_store(new_schema)
        assert _tables(new_schema) == []  # nothing half-written
    finally:
        admin.execute(sa.text("SELECT pg_advisory_unlock(:c, :k)"), {"c": PG_LOCK_CLASS, "k": key})
    message = str(info.value)
    assert "\n" not in message
    assert "another session has held its migration lock for over 0.5 s" in message
    assert f"store at {display_url(normalize_url(new_schema))}:" in message
    finder = (
        f"SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = {PG_LOCK_CLASS}"
        f" AND objid = {key}"
    )
    assert finder in message
    with open_store(new_schema) as store, store.engine.connect() as conn:  # released: it goes on
        assert current_revision(conn) == HEAD


def test_two_migrations_of_one_new_store_wait_for_each_other(
    admin: sa.Connection, new_schema: str
) -> None:
    """Both are made to wait on the lock, then let go at once: one creates the store, the
    other finds it current; neither fails."""
    key = _key_of(new_schema)
    engines = [make_write_engine(normalize_url(new_schema)) for _ in range(2)]
    errors: list[BaseException] = []

    def migrate(engine: sa.Engine) -> None:
        try:
            upgrade(engine, where=new_schema)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    admin.execute(sa.text("SELECT pg_advisory_lock(:c, :k)"), {"c": PG_LOCK_CLASS, "k": key})
    threads = [threading.Thread(target=migrate, args=(engine,)) for engine in engines]
    try:
        for thread in threads:
            thread.start()
        _wait_for_waiters(admin, key, 2)
    finally:
        admin.execute(sa.text("SELECT pg_advisory_unlock(:c, :k)"), {"c": PG_LOCK_CLASS, "k": key})
        for thread in threads:
            thread.join(timeout=120)
    assert errors == []
    with engines[0].connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").all() == [(HEAD,)]
    for engine in engines:
        engine.dispose()


def _wait_for_waiters(admin: sa.Connection, key: int, count: int) -> None:
    deadline = time.monotonic() + 30  # waiting for the other threads, not measuring them
    waiting = sa.text(
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :c"
        " AND objid = :k AND objsubid = 2 AND NOT granted"
    )
    while time.monotonic() < deadline:
        if admin.execute(waiting, {"c": PG_LOCK_CLASS, "k": key}).scalar() == count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{count} migrations never waited for the lock")
