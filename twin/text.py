"""Which characters may reach a terminal as they are, and how the others are written.

A control, format or line-separator character (Unicode categories Cc, Cf,
Cs, Co, Cn, Zl, Zp: an escape sequence, a bidi override, a bell) printed raw
can move the cursor, retitle the window or hide text. Scenario validation
refuses them in names and text; the CLI writes stored text with them
escaped. One rule for both, and nothing heavy to import.
"""

from __future__ import annotations

import unicodedata

__all__ = ["unprintable", "escaped"]

_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def unprintable(char: str) -> bool:
    """Whether `char` must not reach a terminal as it is."""
    return unicodedata.category(char) in _UNPRINTABLE


def escaped(text: str, keep: str = "") -> str:
    """`text` with every unprintable character but those in `keep` written as an escape
    by its code (``\\x1b``, ``\\x0a``, ``\\u202e``, ``\\U000e0001``)."""
    if text.isprintable():
        return text
    return "".join(_code(c) if c not in keep and unprintable(c) else c for c in text)


def _code(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
