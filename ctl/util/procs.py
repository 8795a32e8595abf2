"""Process liveness, as the supervisor, the runc runtime and the libvirt helper ask it.

``kill(pid, 0)`` alone says yes for a zombie (a child that exited and was not reaped yet),
so :func:`pid_alive` also reads the process state from ``/proc``.
"""

from __future__ import annotations

import os
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """True if ``pid`` names a running (not zombie) process; a process we may not signal counts as alive."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def read_pid(path: Path) -> int | None:
    """The pid stored in a pid file, or None when the file is missing or does not hold a number."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def pidfile_alive(path: Path) -> bool:
    """True if the pid file exists and names a live process."""
    pid = read_pid(path)
    return pid is not None and pid_alive(pid)
