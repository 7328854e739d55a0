"""Turn what a user types after ``--db`` into a SQLAlchemy URL the store can open.

Accepted: a plain file path (``runs.db``, ``~/twin/runs.db``) or ``sqlite:///`` URL
for SQLite, and ``postgresql://`` / ``postgres://`` / ``postgresql+psycopg://``
for PostgreSQL (always driven by psycopg 3). Anything else is a `StoreError`
that says what would have worked.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from twin.errors import StoreError

__all__ = ["normalize_url", "sqlite_path", "display_url"]

_PG_ALIASES = {"postgresql", "postgres", "postgresql+psycopg"}
_SQLITE_ALIASES = {"sqlite", "sqlite+pysqlite"}
_HINT = "use a SQLite file path, sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"


def normalize_url(raw: str | os.PathLike[str] | URL) -> URL:
    """Return the canonical URL for `raw`: absolute SQLite path or psycopg 3 driver."""
    if isinstance(raw, URL):
        text = raw.render_as_string(hide_password=False)
    else:
        text = os.fspath(raw).strip()
    if not text:
        raise StoreError(f"empty store URL; {_HINT}")
    if "://" not in text:
        return _sqlite_url(Path(text))
    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as exc:  # ValueError: a bad port, an unclosed [
        raise StoreError(f"cannot parse store URL {text!r}; {_HINT}") from exc
    if url.drivername in _SQLITE_ALIASES:
        if not url.database or url.database == ":memory:":
            raise StoreError("an in-memory SQLite store cannot be shared or kept; use a file path")
        return _sqlite_url(Path(url.database))
    if url.drivername in _PG_ALIASES:
        return url.set(drivername="postgresql+psycopg")
    raise StoreError(f"unsupported store URL scheme {url.drivername!r}; {_HINT}")


def _sqlite_url(path: Path) -> URL:
    path = path.expanduser().resolve()
    if path.is_dir():
        raise StoreError(f"store path {str(path)!r} is a directory, not a SQLite file")
    if not path.parent.is_dir():
        raise StoreError(f"cannot create store {str(path)!r}: folder {str(path.parent)!r} missing")
    return URL.create("sqlite+pysqlite", database=str(path))


def sqlite_path(url: URL) -> Path | None:
    """The file behind a normalized SQLite URL, or None for other backends."""
    if url.get_backend_name() != "sqlite" or url.database is None:
        return None
    return Path(url.database)


def display_url(url: URL) -> str:
    """A URL safe to show in messages (password hidden; SQLite as its file path)."""
    path = sqlite_path(url)
    return str(path) if path is not None else url.render_as_string(hide_password=True)
