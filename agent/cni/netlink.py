"""In-process network namespace and link plumbing over netlink (no ``ip`` processes).

:mod:`agent.cni.bridge` used to shell out to iproute2 about fourteen times per pod; on a 2-core node
that process churn was most of a pod's start-up cost. This module does the same work in the agent's
own process:

* **Named network namespaces** the way ``ip netns add`` makes them: ``/run/netns`` is made a shared
  mount point once, an empty file ``/run/netns/NAME`` is created, and a thread that has
  ``unshare(CLONE_NEWNET)`` bind-mounts ``/proc/thread-self/ns/net`` onto it. ``ip netns`` and
  ``nsenter --net=/run/netns/NAME`` see such a namespace exactly like one made by ``ip``. Removal is
  ``umount2(MNT_DETACH)`` + ``unlink`` (``ip netns delete``).
* **Links, addresses, routes** with pyroute2's ``IPRoute`` (rtnetlink).

Network namespaces are a property of a *thread*, and a netlink socket talks to the namespace its
creating thread was in. The agent may itself run in a namespace (tests and benchmarks ``setns`` the
event-loop thread into a simulated host), and pyroute2's synchronous ``IPRoute`` cannot run on a thread
that runs an asyncio loop. So every operation runs in a **fresh thread** started from the event-loop
thread (:func:`run_in_fresh_thread`): it inherits the loop thread's current namespace, opens its host
socket there, may then switch itself into a pod namespace, and exits when done, so no pooled thread
is ever left in a stale or foreign namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]

T = TypeVar("T")


def _oserror(what: str, path: str | os.PathLike[str] | None = None) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}", None if path is None else str(path))


def mount(source: str, target: str | os.PathLike[str], fstype: str, flags: int = 0, data: str = "") -> None:
    """The mount(2) system call; raises OSError."""
    if (
        _libc.mount(
            source.encode(), os.fsencode(target), fstype.encode(), flags, data.encode() if data else None
        )
        != 0
    ):
        raise _oserror(f"mount {fstype}", target)


def umount(target: str | os.PathLike[str], detach: bool = False) -> None:
    """umount2(2) (``MNT_DETACH`` with ``detach``); raises OSError."""
    if _libc.umount2(os.fsencode(target), MNT_DETACH if detach else 0) != 0:
        raise _oserror("umount", target)


def setns_net(fd: int) -> None:
    """Move the calling thread into the network namespace open as ``fd``."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise _oserror("setns")


async def run_in_fresh_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a new thread that starts in the calling thread's network namespace."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def deliver(ok: bool, value: object) -> None:
        if fut.done():
            return
        if ok:
            fut.set_result(value)  # type: ignore[arg-type]
        else:
            assert isinstance(value, BaseException)
            fut.set_exception(value)

    def body() -> None:
        try:
            r = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting coroutine
            loop.call_soon_threadsafe(deliver, False, e)
        else:
            loop.call_soon_threadsafe(deliver, True, r)

    threading.Thread(target=body, name="netns-op", daemon=True).start()
    return await fut


_rundir_shared: set[str] = set()
_rundir_lock = threading.Lock()


def _share_rundir(rundir: Path) -> None:
    """Make ``rundir`` a shared mount point (what iproute2 does before its first ``netns add``)."""
    with _rundir_lock:
        if str(rundir) in _rundir_shared:
            return
        rundir.mkdir(parents=True, exist_ok=True)
        try:
            mount("", rundir, "none", MS_SHARED | MS_REC)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            mount(str(rundir), rundir, "none", MS_BIND | MS_REC)
            mount("", rundir, "none", MS_SHARED | MS_REC)
        _rundir_shared.add(str(rundir))


def create_netns_here(path: Path) -> None:
    """Create the named netns at ``path`` and move the *calling thread* into it.

    Must run in a thread of its own (see :func:`run_in_fresh_thread`), which ends up inside the new
    namespace. Raises FileExistsError when ``path`` already exists.
    """
    _share_rundir(path.parent)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0)
    os.close(fd)
    try:
        if _libc.unshare(CLONE_NEWNET) != 0:
            raise _oserror("unshare(CLONE_NEWNET)")
        mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", path, "none", MS_BIND)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise


def enter_netns_here(path: Path) -> None:
    """Move the calling thread into the named netns at ``path`` (must be a thread of its own)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        setns_net(fd)
    finally:
        os.close(fd)


def delete_netns(path: Path) -> None:
    """``ip netns delete``: detach the bind mount and remove the file. Missing is fine."""
    if _libc.umount2(os.fsencode(path), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, f"umount netns: {os.strerror(err)}", str(path))
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
