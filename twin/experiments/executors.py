"""Where replications run: this process, a local process pool, or a Dask cluster.

Each executor takes a batch of `Task`s and yields their `Outcome`s as they
finish, in whatever order. The local pool starts its workers from a fork
server that has imported the engine once (``spawn`` where there is no fork
server), so a worker costs a fork, not an import; a worker exits on its own
when the process that owns the pool is gone (killed with SIGKILL). `DaskCluster` submits the
same tasks to an existing ``dask.distributed`` scheduler, each under a key
of its own (`Task.key`), with retries: a task run twice returns the same
outcome, and the sweep commits each replication once whatever arrives. Dask
is optional (``pip install 'wafertwin[dask]'``); asking for a scheduler
without it is a clear error.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from multiprocessing.context import BaseContext
from typing import Any, Protocol

from twin.errors import ScenarioError
from twin.experiments.replication import Outcome, Task, run_replication

__all__ = ["Executor", "InProcess", "ProcessPool", "DaskCluster", "default_workers", "executor"]

DASK_RETRIES = 3  # a task lost with its worker is run again (its outcome is the same)
DASK_TIMEOUT_S = 10
WATCH_S = 1.0  # how often a pool worker checks that the process that owns its pool lives


class Executor(Protocol):
    """Runs tasks and yields their outcomes as they finish."""

    description: str

    def run(self, tasks: Sequence[Task]) -> Iterator[Outcome]: ...

    def close(self) -> None: ...


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class InProcess:
    """Runs each task here, one after another (one worker: no process to start)."""

    description = "1 worker (this process)"

    def run(self, tasks: Sequence[Task]) -> Iterator[Outcome]:
        return map(run_replication, tasks)

    def close(self) -> None:
        return None


def _start_worker(sweep_pid: int) -> None:
    """A pool worker's start: import the engine once, and watch the process that owns the
    pool. A worker's parent is the fork server, not that process, so nothing tells it when
    that process is killed (SIGKILL): it would wait for tasks forever, and keep the fork
    server alive too. It exits within `WATCH_S` of the owner's end instead."""
    import twin.engine  # noqa: F401  (a spawned worker imports it once, here)

    def watch() -> None:
        while True:
            time.sleep(WATCH_S)
            try:
                os.kill(sweep_pid, 0)
            except ProcessLookupError:
                os._exit(1)

    threading.Thread(target=watch, name="watch-sweep-process", daemon=True).start()


class ProcessPool:
    """A pool of `workers` local processes."""

    def __init__(self, workers: int) -> None:
        context: BaseContext
        if "forkserver" in multiprocessing.get_all_start_methods():
            server = multiprocessing.get_context("forkserver")
            server.set_forkserver_preload(["twin.engine", "twin.experiments.replication"])
            context = server
        else:
            context = multiprocessing.get_context("spawn")
        self.description = f"{workers} local worker processes"
        self._pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                         initargs=(os.getpid(),))

    def run(self, tasks: Sequence[Task]) -> Iterator[Outcome]:
        futures: list[Future[Outcome]] = [self._pool.submit(run_replication, t) for t in tasks]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskCluster:
    """The workers of the Dask scheduler at `address` (``tcp://HOST:PORT``)."""

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise ScenarioError(
                "--scheduler", address,
                "dask.distributed installed to use a Dask cluster "
                "(pip install 'wafertwin[dask]'), or --workers for local processes",
            ) from None
        try:
            self._client: Any = Client(address, timeout=DASK_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ScenarioError(
                "--scheduler", address, f"a Dask scheduler that answers ({exc})"
            ) from None
        self.description = f"Dask scheduler {address}"

    def run(self, tasks: Sequence[Task]) -> Iterator[Outcome]:
        from distributed import as_completed as dask_completed

        if not tasks:
            return
        futures = self._client.map(
            run_replication, list(tasks), key=[task.key for task in tasks], pure=False,
            retries=DASK_RETRIES,
        )
        try:
            for future in dask_completed(futures):
                outcome: Outcome = future.result()
                future.release()
                yield outcome
        finally:
            self._client.cancel(futures)

    def close(self) -> None:
        self._client.close()


def executor(workers: int | None, scheduler: str | None) -> Executor:
    """The executor the command line asks for: a Dask scheduler, else `workers`
    local processes (default: every core), one meaning this process."""
    if scheduler is not None:
        return DaskCluster(scheduler)
    count = default_workers() if workers is None else workers
    return InProcess() if count == 1 else ProcessPool(count)
