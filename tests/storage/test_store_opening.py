"""How stores are opened: readers never create, migrate or touch what is not a current
store; writers refuse a database that is not a store, or that they cannot write."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import storage
import storage.store
from storage import Store, StoreError, open_store, read_run, read_runs, schema
from storage.engines import CONNECT_TIMEOUT_S, make_write_engine, pg_connect_args
from storage.liveness import utcnow
from storage.migrate import current_revision, upgrade
from storage.testing import synthetic_run, write_run
from storage.urls import normalize_url

ROOT = Path(storage.__file__).resolve().parents[1]
HALL = ROOT / "scenarios" / "hall.toml"


def _foreign_sqlite(path: Path) -> str:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.commit()
    conn.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("create", [False, True], ids=["reader", "writer"])
def test_a_foreign_sqlite_database_is_refused_and_untouched(tmp_path: Path, create: bool) -> None:
    path = tmp_path / "other.db"
    digest = _foreign_sqlite(path)
    with pytest.raises(StoreError, match="is not a wafertwin store \\(it holds notes\\)"):
        open_store(path, create=create)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # no switch to WAL
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("notes",)]


def test_a_foreign_postgresql_schema_is_refused_and_untouched(store_url: str) -> None:
    engine = make_write_engine(normalize_url(store_url))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (body TEXT)")
    for create in (False, True):
        with pytest.raises(StoreError, match="not a wafertwin store"):
            open_store(store_url, create=create)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == ["notes"]
    engine.dispose()


def test_a_reader_does_not_create_a_store_in_an_empty_database(store_url: str) -> None:
    with pytest.raises(StoreError, match="no store at"):
        open_store(store_url, create=False)
    engine = make_write_engine(normalize_url(store_url))
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []
    engine.dispose()


def test_a_reader_does_not_migrate_an_older_store(store_url: str) -> None:
    engine = make_write_engine(normalize_url(store_url))
    upgrade(engine, "0003")
    with pytest.raises(StoreError, match="run a writing command once"):
        open_store(store_url, create=False)
    with engine.connect() as conn:
        assert current_revision(conn) == "0003"
    engine.dispose()
    open_store(store_url).close()  # a writer migrates it
    open_store(store_url, create=False).close()


def test_a_store_opened_for_reading_cannot_write(store_url: str) -> None:
    open_store(store_url).close()
    with open_store(store_url, create=False) as store:
        with pytest.raises(StoreError, match="opened for reading only"):
            write_run(store, synthetic_run(1, 1))


def _stale(store: Store, run_id: int) -> None:
    """Make `run_id` look like a run of another host that stopped beating two hours ago."""
    runs = schema.runs
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(runs)
            .where(runs.c.id == run_id)
            .values(host="elsewhere", heartbeat=utcnow() - timedelta(hours=2))
        )


def test_a_reader_that_may_write_marks_dead_runs(store_url: str) -> None:
    with open_store(store_url) as store:
        run_id = write_run(store, synthetic_run(5, 5), complete=False)
        _stale(store, run_id)
    with open_store(store_url, create=False) as reader:
        assert read_run(reader, run_id)["status"] == "interrupted"


def test_a_run_that_beats_while_it_is_judged_stays_running(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = write_run(store, synthetic_run(5, 5), complete=False)
    _stale(store, run_id)
    judge = storage.store.why_dead

    def judge_then_beat(*args: Any) -> str | None:
        reason = judge(*args)
        with store.engine.begin() as conn:  # the run's process, still alive, beats now
            conn.execute(sa.update(schema.runs).values(heartbeat=utcnow()))
        return reason

    monkeypatch.setattr(storage.store, "why_dead", judge_then_beat)
    assert store.recover_interrupted() == []
    assert read_run(store, run_id)["status"] == "running"


@pytest.mark.parametrize("raw", ["postgresql://[::1", "postgresql://u@host:port/db"])
def test_a_malformed_postgresql_url_is_a_store_error(raw: str) -> None:
    with pytest.raises(StoreError, match="cannot parse store URL"):
        open_store(raw)


def test_postgresql_connections_have_a_connect_timeout() -> None:
    assert pg_connect_args(normalize_url("postgresql://u@h/db")) == {
        "connect_timeout": CONNECT_TIMEOUT_S
    }
    assert pg_connect_args(normalize_url("postgresql://u@h/db?connect_timeout=3")) == {}


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_a_server_that_never_answers_is_an_error_not_a_hang(silent_server: int) -> None:
    code = (
        "import storage.engines as e; e.CONNECT_TIMEOUT_S = 1\n"
        "from storage import open_store, StoreError\n"
        "try:\n"
        f"    open_store('postgresql://u@127.0.0.1:{silent_server}/db')\n"
        "except StoreError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,  # a bound on a hang, far above the 1 s asked for
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert "cannot open store" in done.stdout, done.stderr


# -- read-only SQLite files, as a user who may not write them ----------------------


def _unprivileged() -> Callable[[list[str]], list[str]] | None:
    if os.geteuid() != 0:
        return lambda args: args
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    return lambda args: [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *args]


@pytest.fixture(params=["folder writable", "folder read-only"])
def read_only_store(request: pytest.FixtureRequest) -> Iterator[tuple[Path, Path]]:
    """A store file nobody but its owner may write; returns it and a folder for exports."""
    if _unprivileged() is None:
        pytest.skip("running as root without setpriv: cannot drop the right to write")
    top = Path(tempfile.mkdtemp(prefix="twin_ro_"))
    try:
        top.chmod(0o755)
        folder, out = top / "store", top / "out"
        folder.mkdir()
        out.mkdir()
        out.chmod(0o777)
        path = folder / "runs.db"
        with open_store(path) as store:
            write_run(store, synthetic_run(20, 20, scenario_name="hall"))
        path.chmod(0o444)
        folder.chmod(0o777 if request.param == "folder writable" else 0o555)
        yield path, out
    finally:
        (top / "store").chmod(0o755)
        shutil.rmtree(top)


def _twin_as_reader(*commands: list[str]) -> list[tuple[int, str]]:
    """Run twin commands in one process as a user who may not write the store: (code, output)."""
    wrap = _unprivileged()
    assert wrap is not None
    script = (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "from cli.main import cli\n"
        "out = []\n"
        "for args in json.loads(sys.argv[1]):\n"
        "    result = CliRunner().invoke(cli, args)\n"
        "    out.append((result.exit_code, result.output))\n"
        "print(json.dumps(out))\n"
    )
    command = wrap([sys.executable, "-c", script, json.dumps(commands)])
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1", HOME="/tmp")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return [(code, output) for code, output in json.loads(done.stdout)]


def test_reading_commands_work_on_a_read_only_store(read_only_store: tuple[Path, Path]) -> None:
    path, out = read_only_store
    before = path.read_bytes()
    db = ["--db", str(path)]
    results = _twin_as_reader(
        ["runs", *db],
        ["show", "1", *db],
        ["query", "SELECT COUNT(*) AS n FROM events", "--format", "csv", *db],
        ["export", "1", "--out", str(out), *db],
    )
    for code, output in results:
        assert code == 0, output
    assert results[2][1].splitlines() == ["n", "20"]
    assert (out / "run-1-events.csv").exists()
    assert path.read_bytes() == before


def test_a_run_on_a_read_only_store_is_a_clear_error(read_only_store: tuple[Path, Path]) -> None:
    path, _out = read_only_store
    ((code, output),) = _twin_as_reader(["run", str(HALL), "--until", "24h", "--db", str(path)])
    assert code == 2, output
    assert "read-only" in output and "Traceback" not in output
    assert len(output.strip().splitlines()) == 1
    with open_store(path, create=False) as store:
        assert len(read_runs(store)) == 1
