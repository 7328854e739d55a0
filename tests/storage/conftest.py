"""Fixtures for store tests: the same test on a SQLite file and on PostgreSQL.

The PostgreSQL variant needs TWIN_TEST_PG_URL and gets a schema of its own
per test, dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import Store, open_store
from storage.testing import PG_URL_ENV, pg_test_schema

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty store on each backend."""
    if request.param == "sqlite":
        yield str(tmp_path / "store.db")
        return
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(f"{PG_URL_ENV} is not set")
    with pg_test_schema(base) as url:
        yield url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open, migrated, empty store on each backend."""
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def base_url() -> str:
    """The URL of the PostgreSQL server named by TWIN_TEST_PG_URL (skips without it)."""
    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.skip(f"{PG_URL_ENV} is not set")
    return url


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; any still running at its end is killed and reaped."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
