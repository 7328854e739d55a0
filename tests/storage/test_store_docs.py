"""Every SQL query docs/store.md shows runs on SQLite and PostgreSQL, and its Python
example runs as written."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from storage import Store
from storage.migrate import LOCK_WAIT_S, PG_LOCK_CLASS
from storage.query import MAX_TIMEOUT_S
from storage.readonly import READ_STARTS
from storage.testing import synthetic_run, write_run

DOC = Path(__file__).resolve().parents[2] / "docs" / "store.md"
ROOT = DOC.parents[1]
_FENCE = re.compile(r"^[ \t]*```(\w*)\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)
_ADMIN_WORDS = ("CREATE", "GRANT", "ALTER")  # an operator's statements, not queries


def _blocks(language: str) -> list[str]:
    text = DOC.read_text()
    return [textwrap.dedent(body) for lang, body in _FENCE.findall(text) if lang == language]


def documented_queries() -> list[tuple[str, dict[str, str]]]:
    """(sql, parameters) of every query the page shows: SQL blocks, command lines, inline."""
    text = DOC.read_text()
    queries: list[tuple[str, dict[str, str]]] = []
    for block in _blocks("sql"):
        first = block.split(None, 1)[0].upper()
        if first in _ADMIN_WORDS:
            continue
        assert first in READ_STARTS, block
        queries.append((block.strip(), {}))
    for block in _blocks(""):
        for line in block.splitlines():
            if match := re.search(r'twin query "([^"]+)"(.*)', line):
                queries.append((match.group(1), dict(re.findall(r"-p (\w+)=(\S+)", line))))
            elif match := re.search(r'echo "([^"]+)" \| twin query -', line):
                queries.append((match.group(1), {}))
    for span in re.findall(r"`((?:SELECT|WITH) [^`]+)`", text):
        queries.append((span, {}))
    for call in re.findall(r'store\.query\("([^"]+)", \{"(\w+)": (\w+)\}\)', text):
        queries.append((call[0], {call[1]: call[2]}))
    return queries


def test_the_page_shows_queries_of_every_kind() -> None:
    found = documented_queries()
    assert len(found) >= 10
    assert any("pragma_table_info" in sql for sql, _ in found)
    assert any(params for _, params in found)


@pytest.mark.parametrize(
    ("sql", "params"), documented_queries(), ids=lambda v: str(v)[:40] if isinstance(v, str) else ""
)
def test_every_documented_query_runs(store: Store, sql: str, params: dict[str, str]) -> None:
    if "pragma_table_info" in sql and store.backend != "sqlite":
        pytest.skip("documented as a SQLite feature")
    write_run(store, synthetic_run(50, 48, seed=1, scenario_name="hall"))
    store.query(sql, params)


def test_the_python_example_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (example,) = _blocks("python")
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(example, str(DOC), "exec"), namespace)  # noqa: S102
    assert namespace["run_id"] == 1
    assert isinstance(namespace["failures"], int) and namespace["failures"] > 0


def test_the_page_states_the_migration_lock_and_query_bounds_the_code_has() -> None:
    text = " ".join(DOC.read_text().split())
    assert f"the pair ({PG_LOCK_CLASS}, a hash of the store's database and schema names)" in text
    assert f"by at most {LOCK_WAIT_S:g} s" in text
    assert f"at most {MAX_TIMEOUT_S:g} s" in text
