"""Builds the default ``busybox:latest`` container image from the host's static busybox.

No registry is needed: Debian's ``busybox-static`` package (installed by ``setup.sh``) provides a
statically linked ``/bin/busybox``. The image is one layer holding that binary, a symlink for every
applet it lists (``busybox --list-full``), the usual top-level directories (``/tmp`` sticky and
world-writable), and minimal ``/etc/passwd``, ``/etc/group``, ``/etc/hosts`` and ``/etc/nsswitch.conf``.

The layer tarball is deterministic (sorted entries, fixed mtimes and owners), so building twice gives
the same digests and ``build_busybox_image`` is idempotent.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

from ctl.images.store import ImageError, ImageRecord, ImageStore, tar_bytes

DEFAULT_NAME = "busybox:latest"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

_DIRS = {
    "bin": 0o755,
    "dev": 0o755,
    "etc": 0o755,
    "home": 0o755,
    "proc": 0o555,
    "root": 0o700,
    "run": 0o755,
    "sbin": 0o755,
    "sys": 0o555,
    "tmp": 0o1777,
    "usr": 0o755,
    "usr/bin": 0o755,
    "usr/sbin": 0o755,
    "var": 0o755,
    "var/log": 0o755,
    "var/tmp": 0o1777,
    "var/run": 0o755,
}

_FILES = {
    "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    "etc/group": b"root:x:0:\nnogroup:x:65534:\n",
    "etc/hosts": b"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    "etc/nsswitch.conf": b"hosts: files dns\n",
    "etc/hostname": b"busybox\n",
}


def find_busybox() -> Path:
    for c in BUSYBOX_CANDIDATES:
        p = Path(c)
        if p.is_file() and os.access(p, os.X_OK):
            return p
    raise ImageError(
        "busybox binary not found (install Debian's busybox-static: apt-get install busybox-static)"
    )


def busybox_layer(busybox: Path) -> bytes:
    """The deterministic layer tarball for the busybox image."""
    try:
        listing = subprocess.run(
            [str(busybox), "--list-full"], capture_output=True, check=True, timeout=10
        ).stdout
    except (subprocess.SubprocessError, OSError) as e:
        raise ImageError(f"cannot list busybox applets: {e}") from None
    data = busybox.read_bytes()
    if b"\x7fELF" != data[:4]:
        raise ImageError(f"{busybox} is not an ELF binary")

    def info(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.mode = mode
        ti.size = size
        ti.linkname = link
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        ti.mtime = 0
        return ti

    entries: dict[str, tarfile.TarInfo] = {}
    contents: dict[str, bytes] = {}
    for d, mode in _DIRS.items():
        entries[d] = info(d, tarfile.DIRTYPE, mode)
    entries["bin/busybox"] = info("bin/busybox", tarfile.REGTYPE, 0o755, len(data))
    contents["bin/busybox"] = data
    for rel, body in _FILES.items():
        entries[rel] = info(rel, tarfile.REGTYPE, 0o644, len(body))
        contents[rel] = body
    for line in listing.decode().split():
        rel = line.strip().lstrip("/")
        if not rel or rel in entries or rel == "linuxrc":
            continue
        parent = os.path.dirname(rel)
        while parent and parent not in entries:
            entries[parent] = info(parent, tarfile.DIRTYPE, 0o755)
            parent = os.path.dirname(parent)
        entries[rel] = info(rel, tarfile.SYMTYPE, 0o777, link="/bin/busybox")
    ordered = [entries[k] for k in sorted(entries)]
    return tar_bytes(ordered, contents)


def build_busybox_image(
    store: ImageStore, name: str = DEFAULT_NAME, busybox: Path | None = None
) -> ImageRecord:
    """Build (or rebuild, idempotently) the busybox image into ``store``."""
    bb = busybox or find_busybox()
    layer = busybox_layer(bb)
    config = {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["sh"],
        "WorkingDir": "/",
    }
    return store.add_image(name, [layer], config)
