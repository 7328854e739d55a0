"""A lexical pre-check of ad-hoc SQL, so a refused write gets a clear message.

This is not what keeps `Store.query` read-only: the database's permissions
are (see `storage.query`). It scans the statement outside strings, quoted
names and comments, accepts exactly one statement that starts like a read,
and names the first write keyword it meets, including one hidden in a CTE
(``WITH x AS (DELETE ...)``) or after a semicolon.

It splits the text as the database's own lexer would, so that the message
matches what the server sees: standard strings have no backslash escapes
(only ``''``), PostgreSQL's ``E'...'`` strings do, PostgreSQL nests ``/* */``
comments and SQLite does not, ``$tag$...$tag$`` quotes only where a dollar
cannot continue a name (``a$b$`` is one identifier), SQLite's ``[name]``
quotes a name. The same scan finds the ``:name`` parameters of a query
(`parameter_names`, `to_pyformat`), so a ``:`` inside a string stays text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from twin.errors import StoreError

__all__ = [
    "check_read_only",
    "tokens",
    "words_outside_literals",
    "parameter_names",
    "to_pyformat",
    "READ_STARTS",
]

READ_STARTS = frozenset({"SELECT", "WITH", "VALUES", "EXPLAIN", "TABLE"})
WRITE_WORDS = frozenset(
    {
        "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "DROP", "CREATE",
        "ALTER", "TRUNCATE", "GRANT", "REVOKE", "ATTACH", "DETACH", "PRAGMA", "VACUUM",
        "REINDEX", "COPY", "COMMIT", "ROLLBACK", "BEGIN", "SET",
    }
)  # fmt: skip

_WORD = re.compile(r"[^\W\d][\w$]*")
_DOLLAR = re.compile(r"\$([^\W\d]\w*)?\$")
_CLOSERS = {"'": "'", '"': '"', "`": "`", "[": "]"}


def tokens(sql: str, dialect: str = "postgresql") -> Iterator[tuple[str, int, int]]:
    """(kind, start, end) of each lexical element of `sql` but blanks.

    Kinds: ``word``, ``param`` (``:name``), ``semi``, ``literal`` (a string,
    quoted name or comment) and ``other``. `dialect` ("postgresql" or
    "sqlite") picks the rules that differ.
    """
    pg = dialect == "postgresql"
    i, n = 0, len(sql)
    while i < n:
        ch, start = sql[i], i
        kind = "literal"
        if ch.isspace():
            i += 1
            continue
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i, nested=pg)
        elif pg and ch in "eE" and sql.startswith("'", i + 1):
            i = _skip_escape_string(sql, i + 2)
        elif ch in _CLOSERS and (ch in "'\"" or not pg):
            i = _skip_quoted(sql, i + 1, _CLOSERS[ch])
        elif pg and ch == "$" and (match := _DOLLAR.match(sql, i)):
            end = sql.find(match.group(), match.end())
            i = n if end < 0 else end + len(match.group())
        elif match := _WORD.match(sql, i):
            kind, i = "word", match.end()
        elif ch == ":" and (i == 0 or sql[i - 1] != ":") and (match := _WORD.match(sql, i + 1)):
            kind, i = "param", match.end()
        else:
            kind, i = ("semi" if ch == ";" else "other"), i + 1
        yield kind, start, i


def words_outside_literals(sql: str, dialect: str = "postgresql") -> list[str]:
    """Upper-cased words of `sql` outside literals and comments; ';' kept as a word."""
    return [
        sql[start:end].upper() if kind == "word" else ";"
        for kind, start, end in tokens(sql, dialect)
        if kind in ("word", "semi")
    ]


def parameter_names(sql: str, dialect: str = "postgresql") -> set[str]:
    """The ``:name`` placeholders of `sql`, outside literals and comments."""
    return {sql[start + 1 : end] for kind, start, end in tokens(sql, dialect) if kind == "param"}


def to_pyformat(sql: str) -> str:
    """PostgreSQL `sql` with ``:name`` as ``%(name)s`` and every other ``%`` doubled (psycopg)."""
    out, last = [], 0
    for kind, start, end in tokens(sql, "postgresql"):
        if kind == "param":
            out.append(sql[last:start].replace("%", "%%"))
            out.append(f"%({sql[start + 1 : end]})s")
            last = end
    out.append(sql[last:].replace("%", "%%"))
    return "".join(out)


def _skip_block_comment(sql: str, i: int, *, nested: bool) -> int:
    depth, i = 1, i + 2
    while i < len(sql):
        if sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0 or not nested:
                return i
        elif nested and sql.startswith("/*", i):
            depth += 1
            i += 2
        else:
            i += 1
    return i


def _skip_quoted(sql: str, i: int, closer: str) -> int:
    # The closer doubled stands for itself ('it''s', "a""b"); nothing else escapes.
    while i < len(sql):
        if sql[i] == closer:
            if sql.startswith(closer, i + 1) and closer != "]":
                i += 2
                continue
            return i + 1
        i += 1
    return i


def _skip_escape_string(sql: str, i: int) -> int:
    while i < len(sql):
        if sql[i] == "\\":
            i += 2
        elif sql[i] == "'":
            if sql.startswith("'", i + 1):
                i += 2
                continue
            return i + 1
        else:
            i += 1
    return i


def check_read_only(sql: str, dialect: str = "postgresql") -> str:
    """Return `sql` without trailing semicolons, or raise `StoreError` saying why not."""
    words = words_outside_literals(sql, dialect)
    while words and words[-1] == ";":
        words.pop()
    if not words:
        raise StoreError("empty query: give one SELECT statement")
    if ";" in words:
        raise StoreError("refused: one statement per query (found ';' between statements)")
    for word in words:
        if word in WRITE_WORDS:
            raise StoreError(f"refused: queries are read-only, and this one contains {word}")
    if words[0] not in READ_STARTS:
        starts = ", ".join(sorted(READ_STARTS))
        raise StoreError(f"refused: a query must start with one of {starts}, not {words[0]}")
    return sql.strip().rstrip(";").rstrip()
