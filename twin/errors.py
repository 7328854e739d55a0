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

    def __init__(
        self,
        source: str,
        key: str,
        expected: str,
        got: object = None,
        also: tuple[ScenarioError, ...] = (),
    ) -> None:
        # the arguments, as they were, are the exception's args: SimPy (re-raising an
        # error from a process) and pickle (from a worker) rebuild it from them
        super().__init__(source, key, expected, got, also)
        self.source = source
        self.key = key
        self.expected = expected
        self.got = got
        self.also = also  # more problems of the same input, one line each

    def __str__(self) -> str:
        where = f"{self.source}: {self.key}" if self.key else self.source
        tail = "" if self.got is None else f", got {self.got!r}"
        return "\n".join([f"{where}: expected {self.expected}{tail}", *map(str, self.also)])


class StoreError(TwinError):
    """The store cannot be opened, written or queried as asked (exit code 2)."""

    exit_code = 2
