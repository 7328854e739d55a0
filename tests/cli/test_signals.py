"""How `twin` ends on a signal, and that stored text reaches the terminal escaped.

A `twin run` stopped by Ctrl-C (SIGINT) or SIGTERM marks its run interrupted
and exits 130 or 143 with one line; it used to leave a SIGTERM'd run
`running` until the next open and to exit 1 on Ctrl-C.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli.terminal import printable
from storage import open_store, read_runs
from twin.errors import StoreError

HALL = str(Path(__file__).resolve().parents[2] / "scenarios" / "hall.toml")
TWIN = str(Path(sys.executable).with_name("twin"))


def _running(db: str) -> bool:
    """One run is running in `db` (a store being made and migrated is not yet readable)."""
    try:
        return len(read_runs(db, status="running")) == 1
    except StoreError:
        return False


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background job may inherit "ignore"


@pytest.mark.parametrize(
    ("signum", "code", "line", "error"),
    [
        (signal.SIGINT, 130, "Error: interrupted (Ctrl-C)", "interrupted: KeyboardInterrupt"),
        (signal.SIGTERM, 143, "Error: terminated (SIGTERM)", "interrupted: SIGTERM"),
    ],
    ids=["SIGINT", "SIGTERM"],
)
def test_a_signal_marks_the_run_interrupted_and_sets_the_exit_code(
    tmp_path: Path, signum: int, code: int, line: str, error: str
) -> None:
    db = str(tmp_path / "s.db")
    # a century without events: a run that is still going when the signal comes
    args = [TWIN, "run", HALL, "--db", db, "--until", "36500d", "--set", "recording.events=false"]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_sigint,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60.0
        while not (Path(db).exists() and _running(db)):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.05)
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, stderr
    assert stderr.strip() == line
    [run] = read_runs(db).to_dict("records")
    assert (run["status"], run["error"]) == ("interrupted", error)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("hall", "hall"),
        ("h\x1b[2Jall", "h\\x1b[2Jall"),
        ("a\nb\tc\rd", "a\\x0ab\\x09c\\x0dd"),
        ("bell\x07 del\x7f c1\x9b", "bell\\x07 del\\x7f c1\\x9b"),
        ("line\u2028sep\u202eRLO", "line\\u2028sep\\u202eRLO"),
        ("café 20\u00a0°C", "café 20\u00a0°C"),
    ],
)
def test_control_characters_are_escaped(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_newlines_can_be_kept_for_messages_of_several_lines() -> None:
    assert printable("one\ntwo\x1b", keep_newlines=True) == "one\ntwo\\x1b"


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    open_store(db).close()
    rows = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) "
    query = subprocess.Popen(
        [TWIN, "query", rows + "SELECT i FROM n", "--db", db, "--format", "csv"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert query.stdout is not None
    assert query.stdout.readline() == b"i\n"
    query.stdout.close()  # as `| head -1` does
    _, stderr = query.communicate(timeout=60)
    assert (query.returncode, stderr) == (141, b"")


def test_a_signal_the_interpreter_drops_is_said_again() -> None:
    # A signal that lands while a finalizer runs (here __del__; in a run, a generator
    # closed by a garbage-collection pass) raises where Python ignores the exception.
    program = """
import os, signal, sys, time
from cli.terminal import handle_signals
handle_signals()

class Finalized:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler runs in here: its exception is dropped

Finalized()
try:
    time.sleep(20)
    print("lost")
except KeyboardInterrupt as exc:
    print(type(exc).__name__)
"""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, cwd=root
    )
    assert done.stdout.strip() == "Terminated", done.stderr
    assert "Exception ignored" in done.stderr  # the first one was indeed dropped
