"""Leave nothing running when the test run ends, however it ends.

Fixtures stop what they start in ``finally`` blocks, and pytest runs those finalizers on a failing
test and on Ctrl-C (KeyboardInterrupt ends the session through its normal teardown). Three gaps
remain, and this module closes them for the whole suite (``tests/conftest.py`` wires it up):

* a fixture that starts several processes and fails half-way (the second API server does not come
  up) leaks the first ones: :func:`reap_children` finds every child process of the test run that is
  still alive after the last finalizer, kills its process group and names it, so the leak is fixed
  and reported (``pytest_sessionfinish``, and again ``atexit`` for runs that end by an exception);
* SIGTERM (a CI job's timeout, ``kill``) would end Python without any finalizer:
  :func:`interrupt_on_sigterm` turns it into KeyboardInterrupt, so pytest tears down as for Ctrl-C;
* SIGKILL cannot be caught: the harness starts roles under a parent-death signal instead
  (``tests/cluster.py``, :func:`tests.cluster.die_with_parent`).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType


def _children() -> list[tuple[int, str]]:
    """(pid, command line) of this process's live (non-zombie) children."""
    me = os.getpid()
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
            # the command name is in parentheses and may contain spaces: split after the last ')'
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if int(ppid) != me or state == "Z":
                continue
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError, IndexError):
            continue
        out.append((int(p.name), cmd))
    return out


def _signal_group_or_pid(pid: int, sig: int) -> None:
    try:
        pgid = os.getpgid(pid)
        if pgid != os.getpgrp():
            os.killpg(pgid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def reap_children(grace: float = 5.0) -> list[str]:
    """Stop every child process still running (SIGTERM, then SIGKILL after ``grace``); describe them."""
    leaked = [(pid, cmd) for pid, cmd in _children() if "multiprocessing" not in cmd]
    for pid, _ in leaked:
        _signal_group_or_pid(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    pending = {pid for pid, _ in leaked}
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                pending.discard(pid)
        time.sleep(0.05)
    for pid in pending:
        _signal_group_or_pid(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    return [f"pid {pid}: {cmd[:200]}" for pid, cmd in leaked]


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def interrupt_on_sigterm() -> None:
    """Make SIGTERM raise KeyboardInterrupt in the main thread (if nobody else handles SIGTERM)."""
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _raise_interrupt)
