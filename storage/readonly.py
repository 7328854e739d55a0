"""A lexical pre-check of ad-hoc SQL, so a refused write gets a clear message.

This is not what keeps `Store.query` read-only (the read engine is; see
`storage.engines`). It scans the statement outside strings, quoted names and
comments, accepts exactly one statement that starts like a read, and names
the first write keyword it meets, including one hidden in a CTE
(``WITH x AS (DELETE ...)``) or after a semicolon.
"""

from __future__ import annotations

import re

from twin.errors import StoreError

__all__ = ["check_read_only", "words_outside_literals"]

READ_STARTS = frozenset({"SELECT", "WITH", "VALUES", "EXPLAIN", "TABLE"})
WRITE_WORDS = frozenset(
    {
        "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "DROP", "CREATE",
        "ALTER", "TRUNCATE", "GRANT", "REVOKE", "ATTACH", "DETACH", "PRAGMA", "VACUUM",
        "REINDEX", "COPY", "COMMIT", "ROLLBACK", "BEGIN", "SET",
    }
)  # fmt: skip

# One alternative per lexical element; only `word` and `semi` matter to us.
_TOKEN = re.compile(
    r"""
      (?P<comment>--[^\n]*|/\*.*?\*/)
    | (?P<string>[eE]?'(?:[^'\\]|''|\\.)*')
    | (?P<dollar>\$(?P<tag>[A-Za-z_]\w*)?\$.*?\$(?P=tag)?\$)
    | (?P<quoted>"(?:[^"]|"")*"|`[^`]*`)
    | (?P<word>[^\W\d]\w*)
    | (?P<semi>;)
    | (?P<other>\S)
    """,
    re.VERBOSE | re.DOTALL,
)


def words_outside_literals(sql: str) -> list[str]:
    """Upper-cased words of `sql` outside literals and comments; ';' kept as a word."""
    words: list[str] = []
    for match in _TOKEN.finditer(sql):
        if match.lastgroup == "word":
            words.append(match.group().upper())
        elif match.lastgroup == "semi":
            words.append(";")
    return words


def check_read_only(sql: str) -> str:
    """Return `sql` without trailing semicolons, or raise `StoreError` saying why not."""
    words = words_outside_literals(sql)
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
