"""What `--db` accepts, and the clear error for what it does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import StoreError, open_store
from storage.urls import display_url, normalize_url


def test_a_plain_path_is_a_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = normalize_url("runs.db")
    assert url.drivername == "sqlite+pysqlite" and url.database == str(tmp_path / "runs.db")
    assert normalize_url("sqlite:///runs.db") == url
    assert display_url(url) == str(tmp_path / "runs.db")


@pytest.mark.parametrize(
    "raw",
    [
        "postgresql://u:secret@db/twin",
        "postgres://u:secret@db/twin",
        "postgresql+psycopg://u:secret@db/twin",
    ],
)
def test_postgresql_urls_use_psycopg(raw: str) -> None:
    url = normalize_url(raw)
    assert url.drivername == "postgresql+psycopg" and url.database == "twin"
    assert "secret" not in display_url(url)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("mysql://u@db/twin", "unsupported store URL scheme 'mysql'"),
        ("postgresql+psycopg2://u@db/twin", "unsupported"),
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        ("", "empty store URL"),
        ("/no/such/folder/runs.db", "folder"),
        ("://", "cannot parse"),
    ],
)
def test_bad_urls_are_store_errors(raw: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        normalize_url(raw)


def test_a_folder_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="directory"):
        normalize_url(str(tmp_path))


def test_reading_never_creates_a_sqlite_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store at"):
        open_store(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()


def test_an_unreachable_server_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot open store"):
        open_store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")


def test_a_file_that_is_not_sqlite_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database, " * 100)
    with pytest.raises(StoreError, match="cannot open store"):
        open_store(path)
