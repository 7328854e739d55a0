"""Is the process that owns a running run still there? Host, pid and heartbeat checks.

A run killed with SIGKILL cannot mark itself: its row stays ``running``.
When a store is opened, such a run is declared ``interrupted`` if it was
started on this host by a process that no longer exists, or if its heartbeat
(refreshed by every flush) is older than the stale limit, which is the only
evidence available for runs on other hosts.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["this_host", "pid_alive", "utcnow", "why_dead"]


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


def why_dead(
    host: str | None,
    pid: int | None,
    last_seen: datetime,
    now: datetime,
    stale_after: timedelta,
) -> str | None:
    """Why a run marked running is gone, or None when it may still be running."""
    if host == this_host() and pid is not None and not pid_alive(pid):
        return f"process {pid} on {host} no longer exists"
    if now - last_seen > stale_after:
        return f"no heartbeat since {last_seen:%Y-%m-%d %H:%M:%S} UTC"
    return None
