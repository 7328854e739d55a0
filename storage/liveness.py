"""Is the process that owns a running run still there? Host, pid and heartbeat checks.

A run killed with SIGKILL cannot mark itself: its row stays ``running``.
When a store is opened, such a run is declared ``interrupted`` if it was
started on this host by a process that no longer exists (or, on Linux, whose
pid now belongs to a process started after the run was), or if its heartbeat
(refreshed every minute by the run's heartbeat thread, see `storage.writer`,
and by every flush) is older than the stale limit, which is the only
evidence available for runs on other hosts.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["this_host", "pid_alive", "process_started", "utcnow", "why_dead"]

# A process records its run after it starts; /proc counts ticks from a boot time
# in whole seconds, and the wall clock can be stepped. A pid taken by a process
# that started more than this after the run did was reused.
_START_SLACK = timedelta(seconds=60)


def this_host() -> str:
    """The name this machine records in `runs.host`."""
    return socket.gethostname()


def utcnow() -> datetime:
    """Naive UTC now, the store's time convention."""
    return datetime.now(UTC).replace(tzinfo=None)


def pid_alive(pid: int) -> bool:
    """True when a process `pid` exists on this host and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    # A killed child that nobody has reaped still answers kill(pid, 0).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def process_started(pid: int) -> datetime | None:
    """When process `pid` of this host started (naive UTC), where /proc tells (Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        ticks = int(stat.rsplit(")", 1)[-1].split()[19])  # field 22: starttime
        seconds = boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def why_dead(
    host: str | None,
    pid: int | None,
    last_seen: datetime,
    now: datetime,
    stale_after: timedelta,
    started: datetime,
) -> str | None:
    """Why a run marked running is gone, or None when it may still be running.

    `started`: when the run began; a live process with its pid that started
    later is another process that was given the same pid.
    """
    if host == this_host() and pid is not None:
        if not pid_alive(pid):
            return f"process {pid} on {host} no longer exists"
        began = process_started(pid)
        if began is not None and began > started + _START_SLACK:
            return (
                f"process {pid} on {host} started at {began:%Y-%m-%d %H:%M:%S} UTC, after the "
                "run did: the run's process is gone and its pid was reused"
            )
    if now - last_seen > stale_after:
        return f"no heartbeat since {last_seen:%Y-%m-%d %H:%M:%S} UTC"
    return None
