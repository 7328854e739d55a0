"""A resolved scenario written back as a TOML file that `twin run` accepts.

`twin show RUN --scenario` prints the document a run ran with. Floats are
written as their shortest exact repr (TOML reads them back bit for bit),
quantities as the canonical strings the document holds, tables before their
sub-tables; a key whose value is None (an optional table left out) is
omitted, as a scenario file would omit it. Strings escape every character
that is not printable, so the file is safe to print to a terminal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from cli.terminal import printable
from twin.text import unprintable

__all__ = ["scenario_toml"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def scenario_toml(document: Mapping[str, Any], comments: Sequence[str] = ()) -> str:
    """`document` as TOML text, after `comments` (one ``#`` line each)."""
    lines = [f"# {printable(comment)}" for comment in comments]
    _table(lines, (), document)
    return "\n".join(lines).strip("\n") + "\n"


def _table(lines: list[str], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
    values = [(k, v) for k, v in table.items() if v is not None and not isinstance(v, Mapping)]
    tables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    if path and (values or not tables):
        lines += ["", f"[{'.'.join(map(_key, path))}]"]
    lines += [f"{_key(key)} = {_value(value)}" for key, value in values]
    for key, value in tables:
        _table(lines, (*path, key), value)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return f"[{', '.join(_value(item) for item in value)}]"
    raise TypeError(f"no TOML for a {type(value).__name__}: {value!r}")


def _string(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif not unprintable(char):  # twin.text's rule, with TOML's own escapes
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return f'"{"".join(out)}"'
