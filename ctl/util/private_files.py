"""Files at rest readable only by their owner: the umask every role runs under and a start-up fix-up.

A cluster's data directory holds what an attacker on the machine wants most: the store
(``store.db`` and its ``-wal``/``-shm``, where every Secret and issued token lives), the
bootstrap ``tokens.json``, the PKI keys, the kubeconfigs, component logs, and the agent's
pod state (``pod.json``, container logs). All of it is meant for root alone.

Two measures keep it so:

* :data:`PRIVATE_UMASK` (``0o077``) is the process umask of every role
  (:func:`ctl.util.daemon.run_daemon` sets :func:`role_umask`) and of ``centaurusctl init``,
  so whatever a role creates is born ``0600``/``0700``. The node agent runs under it too:
  the files containers see (a root filesystem's upper directory, the ``/etc/hosts`` it
  bind-mounts, directories unpacked from image layers) are given explicit modes by the
  runtime and the image store, so a container's non-root user can still read them.
  :data:`CONTAINER_HOST_ROLES` lists roles that would need the looser
  :data:`CONTAINER_HOST_UMASK` instead (none today).
* :func:`secure_tree` runs when a role starts on an existing data directory (one created
  by an older version, or by hand): the directory becomes ``0700`` and every file and
  directory below loses its group and other bits.

The walk leaves alone what is not ours to close: container root filesystems and the
files bind-mounted into containers (``rootfs``, ``upper``, ``work``, a pod's ``etc``) and
the unpacked image store (``images``, the overlay lower layers), whose modes a container's
non-root user depends on; sockets and symbolic links are not touched either. The data
directory's own ``0700`` already keeps every other local user out of those.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
CONTAINER_HOST_UMASK = 0o022
# Roles whose processes create files that containers (with their own non-root users) read.
CONTAINER_HOST_ROLES: frozenset[str] = frozenset()
# Directory names whose contents are container-visible: their modes matter inside the container.
CONTAINER_VISIBLE = frozenset({"rootfs", "upper", "work", "etc", "images"})


def role_umask(role: str) -> int:
    """The umask a role runs under (module docstring)."""
    return CONTAINER_HOST_UMASK if role in CONTAINER_HOST_ROLES else PRIVATE_UMASK


def set_private_umask() -> int:
    """Set the process umask to :data:`PRIVATE_UMASK`; returns the previous one."""
    return os.umask(PRIVATE_UMASK)


def secure_tree(root: Path | str, *, prune: frozenset[str] = CONTAINER_VISIBLE) -> int:
    """Make ``root`` 0700 and strip group/other bits below it; returns how many modes changed.

    Subdirectories named in ``prune`` are left as they are (module docstring). A missing
    ``root`` is created 0700. Only regular files and directories owned by this process's
    user are changed; the walk does not follow symbolic links.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    changed = _restrict(root, force_dir=True)
    uid = os.geteuid()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in prune]
        for name in (*dirnames, *filenames):
            changed += _restrict(Path(dirpath) / name, uid=uid)
    return changed


def _restrict(path: Path, *, force_dir: bool = False, uid: int | None = None) -> int:
    try:
        st = path.lstat()
    except FileNotFoundError:  # removed while we walked
        return 0
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        return 0
    if uid is not None and st.st_uid != uid:
        return 0
    mode = stat.S_IMODE(st.st_mode)
    want = 0o700 if force_dir else mode & 0o700
    if want == mode:
        return 0
    os.chmod(path, want)
    return 1
