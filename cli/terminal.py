"""What reaches the terminal: stored text made printable, and how a signal ends a command.

Text read from a store (scenario names, labels, errors, `--set` values) may
hold control characters, from an old store or another tool: `printable`
spells them as escapes, so nothing the store holds can move the cursor,
retitle the window or hide output. A command stopped by Ctrl-C exits 130 and
by SIGTERM 143 (128 + the signal), after a run in progress has been marked
interrupted; SIGTERM is raised as `Terminated`, a `KeyboardInterrupt`, so
every handler of Ctrl-C handles it too, and a signal the interpreter dropped
is said again. A command whose reader goes away
(`twin query ... | head -1`) stops quietly with 141, as a process killed by
SIGPIPE would, not with a traceback or the internal-error code.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

from twin.text import escaped

__all__ = ["printable", "Terminated", "handle_signals", "interrupted", "output_closed"]


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with every control character written as an escape (``\\x1b``, ``\\u2028``;
    `twin.text`). With `keep_newlines`, line feeds stay (messages of several lines)."""
    return escaped(text, keep="\n" if keep_newlines else "")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is, as Ctrl-C raises `KeyboardInterrupt`."""


# Python drops an exception raised while a finalizer runs (a generator closed by
# a garbage-collection pass during the simulation): a signal that lands there
# would be lost and the run go on. So each signal is said again after this
# long, unless the command has taken it by then; a repeat that lands while the
# first is being handled (the run recording its end) is ignored.
RESEND_S = 2.0
_resend: threading.Timer | None = None


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    global _resend
    if isinstance(sys.exc_info()[1], KeyboardInterrupt):
        return  # the first is being handled: let the run record its end
    if _resend is None:
        _resend = threading.Timer(RESEND_S, os.kill, (os.getpid(), signum))
        _resend.daemon = True
        _resend.start()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signal.Signals(signum).name)


def handle_signals() -> None:
    """Let Ctrl-C and SIGTERM end the command, each raised where the command is
    (call once, in the main thread)."""
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


def interrupted(exc: KeyboardInterrupt) -> tuple[str, int]:
    """The one-line message and exit code of a command ended by a signal (which it
    has now taken: no repeat)."""
    if _resend is not None:
        _resend.cancel()
    if isinstance(exc, Terminated):
        return "terminated (SIGTERM)", 128 + signal.SIGTERM
    return "interrupted (Ctrl-C)", 128 + signal.SIGINT


def output_closed() -> int:
    """The exit code of a command whose standard output was closed by its reader;
    what is still buffered goes nowhere, so the interpreter's last flush is quiet."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 128 + signal.SIGPIPE
