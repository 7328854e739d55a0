"""The sweep issue's figures: replications per second of the default hall-year with
KPIs recorded, 1 vs 2 workers, a Dask LocalCluster against the local pool, the
store's size per 1,000 replications at each record level, and worker memory
over a long sweep. `bench/__main__.py` prints them (section ``sweep``).

Every figure is a wall time on whatever else the machine runs: the load is
printed beside each (`os.getloadavg`), and a shared machine reads slower.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from storage import Store, open_store
from storage.sweeps import new_sweep, run_stored
from twin.experiments.design import Level, factorial
from twin.experiments.executors import DaskCluster, Executor, InProcess, ProcessPool
from twin.experiments.sweep import SweepResults, settings

__all__ = ["Throughput", "hall_level", "throughput", "db_size_per_1000", "dask_overhead"]

HALL = Path(__file__).resolve().parents[1] / "scenarios" / "hall.toml"
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Throughput:
    """One timed sweep: replications, wall seconds (executor start-up included),
    worker resident memory sampled along the way (MB), load average at the end."""

    label: str
    replications: int
    wall_s: float
    rss_mb: tuple[float, ...]
    load: float

    @property
    def rate(self) -> float:
        return self.replications / self.wall_s

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "per_s": self.rate}


def hall_level() -> Level:
    """The default hall-year as the one level of a sweep."""
    return factorial(HALL, (), ())[0]


@contextmanager
def _store(record: str, level: Level, replications: int, folder: Path) -> Iterator[
    tuple[Store, int]
]:
    path = folder / f"sweep-{record}-{time.monotonic_ns()}.db"
    with open_store(path) as store:
        plan = settings(replications)
        yield store, new_sweep(store, [level], seed=1, settings=plan, record=record)


def _worker_rss_mb() -> list[float]:
    """Resident memory of each process below this one (pool workers, fork server)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    mine: set[int] = set()
    frontier = {os.getpid()}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - mine
        mine |= frontier
    sizes = []
    for pid in mine:
        try:
            pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except OSError:
            continue
        sizes.append(pages * PAGE / 1e6)
    return sizes


def throughput(
    label: str, make: Callable[[], Executor], replications: int, folder: Path,
    record: str = "kpis", samples: int = 10,
) -> Throughput:  # fmt: skip
    """Run `replications` hall-years on the executor `make` builds, committing to a
    fresh SQLite store in `folder`; wall time includes starting the executor."""
    level = hall_level()
    rss: list[float] = []
    every = max(1, replications // samples)

    def progress(done: int, planned: int, results: SweepResults) -> None:
        if done % every == 0:
            sizes = _worker_rss_mb()
            rss.append(max(sizes) if sizes else 0.0)

    with _store(record, level, replications, folder) as (store, sweep_id):
        started = time.perf_counter()
        executor = make()
        try:
            run_stored(store, sweep_id, executor, progress=progress)
        finally:
            executor.close()
        wall = time.perf_counter() - started
    return Throughput(label, replications, wall, tuple(rss), os.getloadavg()[0])


def db_size_per_1000(replications: int, folder: Path) -> dict[str, float]:
    """MB of SQLite store per 1,000 hall-year replications at each record level: the
    file after a checkpoint, less that of the same store with the sweep but no
    replication (KPIs alone are small: they get 4 times the replications)."""
    sizes = {}
    for record in ("kpis", "metrics", "events"):
        count = 4 * replications if record == "kpis" else replications
        grown = _size(record, count, folder) - _size(record, 0, folder)
        sizes[record] = grown * 1000 / count
    return sizes


def _size(record: str, replications: int, folder: Path) -> float:
    """MB of a store holding one sweep of `replications` hall-years (0: none run)."""
    import sqlite3

    with _store(record, hall_level(), replications, folder) as (store, sweep_id):
        if replications:
            run_stored(store, sweep_id, InProcess())
        path = Path(str(store.sa_url.database))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size / 1e6
    for leftover in folder.glob(path.name + "*"):
        leftover.unlink()
    return size


def dask_overhead(replications: int, folder: Path) -> tuple[Throughput, Throughput, float]:
    """The same sweep on the local pool and on a 2-worker Dask LocalCluster (processes,
    loopback); also the cluster's own start-up seconds (not in its wall time)."""
    import distributed

    pool = throughput("pool, 2 workers", lambda: ProcessPool(2), replications, folder)
    started = time.perf_counter()
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, protocol="tcp://",
        host="127.0.0.1", dashboard_address=None,
    ) as cluster:  # fmt: skip
        startup = time.perf_counter() - started
        address = cluster.scheduler_address
        dask = throughput("Dask LocalCluster, 2 workers", lambda: DaskCluster(address),
                          replications, folder)  # fmt: skip
    return pool, dask, startup


def temporary_folder() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="twin-bench-sweep-")
