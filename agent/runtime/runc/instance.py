"""One run of one container, as the runc runtime records it on disk, and its root filesystem.

An instance lives in ``pods/<uid>/containers/<name>/<n>/`` (``n`` = the restart count): the OCI
bundle (``config.json``, ``rootfs/``, ``upper/``, ``work/``), ``meta.json`` (container ID, image,
start time, shim pid, status note), ``pid`` (written by runc once the process runs) and ``exit``
(``"<code> <epoch finished>"``, written by the shim). :class:`Instance` reads those files and
nothing else, so any :class:`~agent.runtime.runc.RuncRuntime` over the same directory, including
one started after an agent restart, sees the same state.

The root filesystem is an overlay with the image's cached rootfs as its lower layer (mounted with
the syscall, no mount(8) process) or, where overlayfs is unavailable, a copy of it
(:func:`prepare_rootfs`); its top directory takes the image root's mode, whatever the agent's
umask, so that a non-root container user can enter ``/``. :func:`cleanup_rootfs` unmounts and
removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.cni.bridge import run_cmd
from agent.cni.netlink import mount, umount
from agent.runtime.base import RuntimeError_
from ctl.util.procs import pid_alive, read_pid


def container_id(uid: str, name: str, n: int) -> str:
    """``<first 12 hex of the pod uid>-<container name>-<restart count>``: unique, readable in ``runc list``."""
    return f"{uid.replace('-', '')[:12]}-{name}-{n}"


class Instance:
    """One run of one container, as recorded on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.n = int(path.name)
        try:
            self.meta: dict[str, Any] = json.loads((path / "meta.json").read_text())
        except (OSError, ValueError):
            self.meta = {}

    @property
    def id(self) -> str:
        return str(self.meta.get("id", ""))

    def exit(self) -> tuple[int, float] | None:
        try:
            code, when = (self.path / "exit").read_text().split()[:2]
            return int(code), float(when)
        except (OSError, ValueError):
            return None

    def record_exit(self, code: int, when: float) -> None:
        """Write the exit record ourselves (the shim is gone, or runc never ran the container)."""
        tmp = self.path / "exit.tmp"
        tmp.write_text(f"{code} {when}\n")
        os.replace(tmp, self.path / "exit")

    def save_meta(self) -> None:
        (self.path / "meta.json").write_text(json.dumps(self.meta))

    def log_path(self) -> Path:
        """``pods/<uid>/logs/<name>/<n>.log``."""
        return self.path.parent.parent.parent / "logs" / self.path.parent.name / f"{self.n}.log"

    def start_error(self) -> str | None:
        """runc's message when the container process never started (bad command, bad config)."""
        if self.exit() is None or (self.path / "pid").exists():
            return None
        try:
            log = self.log_path().read_text()
        except OSError:
            log = ""
        for line in reversed(log.strip().splitlines()):
            m = re.search(r'msg="(.*)"', line)
            return (m.group(1) if m else line).replace('\\"', '"')
        return "container process did not start"

    def pid(self) -> int | None:
        return read_pid(self.path / "pid")

    def shim_alive(self) -> bool:
        pid = self.meta.get("shim_pid")
        return pid is not None and pid_alive(int(pid))

    def state(self) -> str:
        """``running``, ``starting``, ``exited`` or ``lost`` (shim gone without an exit record)."""
        if self.exit() is not None:
            return "exited"
        pid = self.pid()
        if pid is not None and pid_alive(pid):
            return "running"
        if self.shim_alive():
            return "starting"
        if self.exit() is not None:  # the shim may have finished between the checks
            return "exited"
        return "lost"

    def active(self) -> bool:
        return self.state() in ("running", "starting")


def latest_instance(pdir: Path, name: str) -> Instance | None:
    """The newest recorded instance of container ``name`` of the pod in ``pdir``."""
    cdir = pdir / "containers" / name
    if not cdir.is_dir():
        return None
    ns = sorted(int(p.name) for p in cdir.iterdir() if p.name.isdigit() and (p / "meta.json").exists())
    return Instance(cdir / str(ns[-1])) if ns else None


def instance_at(pdir: Path, name: str, n: int) -> Instance | None:
    p = pdir / "containers" / name / str(n)
    return Instance(p) if (p / "meta.json").exists() else None


def instance_dirs(pdir: Path) -> Iterator[Path]:
    """Every instance directory of every container of the pod in ``pdir`` (recorded or not)."""
    cdirs = pdir / "containers"
    if not cdirs.is_dir():
        return
    for cdir in cdirs.iterdir():
        for idir in cdir.iterdir():
            if idir.name.isdigit():
                yield idir


async def prepare_rootfs(lower: Path, idir: Path, overlay: bool | None) -> bool | None:
    """Mount (or copy) the image rootfs ``lower`` at ``idir/rootfs``.

    ``overlay``: True to require overlayfs, False to copy, None to try overlayfs and fall back.
    Returns what to use next time (True after a successful overlay mount, False after a copy).
    """
    rootfs = idir / "rootfs"
    rootfs.mkdir(exist_ok=True)
    if os.path.ismount(rootfs):
        return overlay
    top_mode = stat.S_IMODE(os.stat(lower).st_mode)
    os.chmod(rootfs, top_mode)
    if overlay is not False:
        (idir / "upper").mkdir(exist_ok=True)
        os.chmod(idir / "upper", top_mode)  # the overlay's root directory takes the upper one's mode
        (idir / "work").mkdir(exist_ok=True)
        opts = f"lowerdir={lower},upperdir={idir / 'upper'},workdir={idir / 'work'}"
        try:
            mount("overlay", rootfs, "overlay", 0, opts)  # the syscall: no mount(8) process
        except OSError as e:
            if overlay:
                raise RuntimeError_("CreateContainerError", f"overlay mount failed: {e}") from None
        else:
            return True
    rc, out = await run_cmd("cp", "-a", f"{lower}/.", str(rootfs), check=False, timeout=120)
    if rc != 0:
        raise RuntimeError_("CreateContainerError", f"cannot copy image rootfs: {out}")
    return False


async def cleanup_rootfs(idir: Path) -> None:
    """Unmount the instance's rootfs (lazily if busy) and remove rootfs, upper and work."""
    rootfs = idir / "rootfs"
    if os.path.ismount(rootfs):
        try:
            await asyncio.to_thread(umount, rootfs)
        except OSError:
            with contextlib.suppress(OSError):
                umount(rootfs, detach=True)
    for sub in ("rootfs", "upper", "work"):
        p = idir / sub
        if p.exists() and not os.path.ismount(p):
            await asyncio.to_thread(shutil.rmtree, p, True)
