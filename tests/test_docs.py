"""The docs: they cover what the code has (every scenario key, every KPI), they
render as written (tables are tables) and every relative link resolves inside
the repository, to a heading that exists. The project stands alone: nothing in
it points at material outside the repository.
"""

from __future__ import annotations

import re
import typing
import unicodedata
from functools import cache
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token
from pydantic import BaseModel

from twin.engine import simulate
from twin.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        annotation = field.annotation
        if name in ("wafer", "spare_systems"):  # a wafer-scale hall's tables, its keys too
            annotation = typing.get_args(annotation)[0]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(_keys(annotation, f"{key}."))
        else:
            keys.append(key)
    return keys


def test_every_scenario_key_is_documented() -> None:
    text = (DOCS / "scenarios.md").read_text()
    documented = set(re.findall(r"`([a-z_.A-Z]+)`", text))
    for key in _keys(Scenario):
        if key in ("components", "spares"):
            continue  # documented per entry as components.NAME.* and spares.PART.*
        assert key in documented, f"docs/scenarios.md does not document {key}"
    for field in Scenario.model_fields["components"].annotation.__args__[1].model_fields:
        assert f"components.NAME.{field}" in text, field
    for field in Scenario.model_fields["spares"].annotation.__args__[1].model_fields:
        assert f"spares.PART.{field}" in text, field


def test_every_kpi_is_documented() -> None:
    text = (DOCS / "kpis.md").read_text()
    names = set(re.findall(r"`([a-z_.<>]+)`", text))
    kpis = simulate(Scenario(hall={"rows": 2}), until=24.0 * 60).kpis
    classes = set(Scenario().components) | set(Scenario().spares) | {"wafer", "cores", "thermal"}
    for name in kpis:
        parts = name.split(".")
        generic = {
            ".".join(p if p not in classes or i == 0 else f"<{kind}>" for i, p in enumerate(parts))
            for kind in ("class", "part", "cause")
        }
        assert name in names or generic & names, f"docs/kpis.md does not define {name}"


# -- Markdown renders as written ----------------------------------------------------

MARKDOWN = sorted([*ROOT.glob("*.md"), *DOCS.glob("*.md")])

def _name(path: Path, root: Path = ROOT) -> str:
    return path.relative_to(root).as_posix()


@cache
def _tokens(path: Path) -> list[Token]:
    """Block tokens of a Markdown file as GitHub renders it (CommonMark and pipe tables)."""
    return MarkdownIt("commonmark").enable("table").parse(path.read_text())


def _cells(line: str) -> int:
    """How many cells a pipe-table row has (GFM: an unescaped | splits, even in code)."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return len(re.split(r"(?<!\\)\|", body))


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(
        ch for ch in heading.strip().lower()
        if ch in " -_" or unicodedata.category(ch)[0] in "LN"
    )
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file (repeats get -1, -2, ... as on GitHub)."""
    tokens = _tokens(path)
    seen: dict[str, int] = {}
    out = set()
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            slug = _slug(tokens[i + 1].content.replace("`", ""))
            out.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return out


def table_problems(path: Path, root: Path = ROOT) -> list[str]:
    """Rows that do not render as rows: outside any table, or with a wrong cell count."""
    lines = path.read_text().splitlines()
    tokens = _tokens(path)
    problems = []
    in_table: set[int] = set()
    for i, token in enumerate(tokens):
        if token.type != "table_open" or token.map is None:
            continue
        header_end = next(j for j in range(i, len(tokens)) if tokens[j].type == "tr_close")
        columns = sum(t.type == "th_open" for t in tokens[i:header_end])
        in_table.update(range(*token.map))
        problems.extend(
            f"{_name(path, root)}:{n + 1}: {_cells(lines[n])} cells in a table of {columns}"
            for n in range(*token.map) if _cells(lines[n]) != columns
        )
    in_code = {
        n for t in tokens if t.type in ("fence", "code_block") and t.map for n in range(*t.map)
    }
    problems.extend(
        f"{_name(path, root)}:{n + 1}: a table row outside a table: {line}"
        for n, line in enumerate(lines)
        if line.lstrip().startswith("|") and n not in in_code | in_table
    )
    return problems


def link_problems(path: Path, root: Path = ROOT) -> list[str]:
    """Relative links (and images) that leave `root`, miss their file or their heading."""
    problems = []
    for token in (c for t in _tokens(path) for c in t.children or ()):
        target = str(token.attrs.get("href" if token.type == "link_open" else "src", ""))
        if token.type not in ("link_open", "image") or re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # not a link, or an absolute URL (https:, mailto:, ...)
        file, _, anchor = target.partition("#")
        where = f"{_name(path, root)}: {target!r}"
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.is_relative_to(root):
            problems.append(f"{where} points outside the repository")
        elif not resolved.exists():
            problems.append(f"{where}: no such file")
        elif anchor and (resolved.suffix != ".md" or anchor not in anchors(resolved)):
            problems.append(f"{where}: no heading with that anchor")
    return problems


@pytest.mark.parametrize("path", MARKDOWN, ids=_name)
def test_every_table_row_renders_as_a_row_of_its_table(path: Path) -> None:
    assert not table_problems(path)


@pytest.mark.parametrize("path", MARKDOWN, ids=_name)
def test_every_relative_link_resolves_inside_the_repository(path: Path) -> None:
    assert not link_problems(path)


def test_the_checks_see_broken_tables_bad_links_and_anchors(tmp_path: Path) -> None:
    assert _slug("A3. CS-3 system: power, cooling, redundancy") == (
        "a3-cs-3-system-power-cooling-redundancy"
    )
    assert _cells("| `a` | b \\| c |") == 2 and _cells("a | b") == 2
    (tmp_path / "other.md").write_text("# Top\n")
    page = tmp_path / "docs" / "page.md"
    page.parent.mkdir()
    page.write_text(
        "# Title\n\n## Twice\n\n## Twice\n\n"
        "[ok](../other.md#top) [ok](#twice-1) [ok](https://example.org/x.md#y)\n"
        "[gone](none.md) [anchor](../other.md#nope) [out](../../elsewhere.md)\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n| 1 | 2 | 3 |\n\nSome text.\n| x | y |\n"
    )
    assert anchors(page) == {"title", "twice", "twice-1"}
    assert link_problems(page, tmp_path) == [
        "docs/page.md: 'none.md': no such file",
        "docs/page.md: '../other.md#nope': no heading with that anchor",
        "docs/page.md: '../../elsewhere.md' points outside the repository",
    ]
    assert table_problems(page, tmp_path) == [
        "docs/page.md:13: 3 cells in a table of 2",
        "docs/page.md:16: a table row outside a table: | x | y |",
    ]


# -- the project stands alone -------------------------------------------------------

# a pointer at material that is not in a clone: the sibling folder and its files
OUTSIDE = re.compile(r"\.\./shared|\bFACTS\b|\bDESIGN\.md\b")
SOURCE_DIRS = ("twin", "storage", "cli", "bench", "scenarios", "tests", "docs")
TEXT_SUFFIXES = (".py", ".md", ".toml", ".ini", ".txt")

def _project_files() -> list[Path]:
    files = [*ROOT.glob("*.md"), ROOT / "Makefile", ROOT / "pyproject.toml"]
    for folder in SOURCE_DIRS:
        files.extend(p for p in (ROOT / folder).rglob("*") if p.suffix in TEXT_SUFFIXES)
    return sorted(p for p in files if p.resolve() != Path(__file__).resolve())


def _outside_citations(path: Path) -> list[str]:
    return [
        f"{_name(path)}:{n}: {line.strip()}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if OUTSIDE.search(line)
    ]


def test_no_file_cites_material_outside_the_repository() -> None:
    found = [line for path in _project_files() for line in _outside_citations(path)]
    assert not found, "cite docs/sources.md#<anchor> instead:\n" + "\n".join(found)
