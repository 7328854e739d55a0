"""Option groups shared by several commands (decorators, sqlite-utils style)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["db_option", "DEFAULT_DB_URL"]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_DB_URL = "sqlite:///twin.db"


def db_option(func: F) -> F:
    """``--db URL``: the store; falls back to $TWIN_DB, then ./twin.db (SQLite)."""
    return click.option(
        "--db",
        "db_url",
        envvar="TWIN_DB",
        default=DEFAULT_DB_URL,
        show_default=True,
        metavar="URL",
        help="Store URL: a SQLite path/URL or postgresql+psycopg://... (env TWIN_DB).",
    )(func)
