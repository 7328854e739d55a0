"""The one exception root of wafertwin and its user-facing subclasses.

`TwinError` is what the CLI turns into a clear message: `ScenarioError` (bad
input, exit code 2) names the file, the dotted key and what was expected.
"""

from __future__ import annotations

__all__ = ["TwinError", "ScenarioError", "StoreError"]


class TwinError(Exception):
    """Root of every error wafertwin raises on purpose."""

    exit_code = 1


class ScenarioError(TwinError):
    """A scenario file, override or argument is invalid (exit code 2)."""

    exit_code = 2

    def __init__(self, source: str, key: str, expected: str, got: object = None) -> None:
        self.source = source
        self.key = key
        self.expected = expected
        self.got = got
        where = f"{source}: {key}" if key else source
        tail = "" if got is None else f", got {got!r}"
        super().__init__(f"{where}: expected {expected}{tail}")


class StoreError(TwinError):
    """The store cannot be opened, written or queried as asked (exit code 2)."""

    exit_code = 2
