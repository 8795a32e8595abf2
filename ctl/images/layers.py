"""Applying image layers to a root filesystem, safely, and writing deterministic tarballs.

:func:`apply_layer` extracts one (possibly gzip-compressed) layer tarball into a rootfs,
honouring OCI whiteouts (``.wh.NAME`` removes a path, ``.wh..wh..opq`` empties a directory).
Every path is resolved inside the rootfs as if the rootfs were ``/`` (:func:`_scoped`), so a
layer cannot write outside it, not even through absolute symlinks it planted itself.
Ownership (when root), modes and times come from the tar headers; directories the layer
only implies are made ``0755`` whatever the process umask. :func:`tar_bytes` is the writer
the built-in image builders use.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import Any

from ctl.images.errors import InvalidImage


def _scoped(root: Path, rel: str, follow_last: bool = False) -> Path:
    """Resolve ``rel`` inside ``root``, following symlinks as if ``root`` were ``/``."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    cur: list[str] = []
    hops = 0
    while parts:
        p = parts.pop(0)
        if p == "..":
            if cur:
                cur.pop()
            continue
        candidate = root.joinpath(*cur, p)
        if (parts or follow_last) and candidate.is_symlink():
            hops += 1
            if hops > 40:
                raise InvalidImage(f"too many symlinks resolving {rel!r}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                cur = []
            parts = [x for x in target.split("/") if x not in ("", ".")] + parts
            continue
        cur.append(p)
    return root.joinpath(*cur)


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def apply_layer(root: Path, layer: Path) -> None:
    """Apply one (possibly gzip-compressed) layer tarball to ``root``, honouring OCI whiteouts."""
    with open(layer, "rb") as raw:
        magic = raw.read(2)
    opener: Any = gzip.open if magic == b"\x1f\x8b" else open
    with opener(layer, "rb") as fh, tarfile.open(fileobj=fh, mode="r|") as tf:
        dirs: list[tuple[Path, tarfile.TarInfo]] = []
        for m in tf:
            name = os.path.normpath("/" + m.name).lstrip("/")
            if not name or name == ".":
                continue
            parent_rel, base = os.path.split(name)
            parent = _scoped(root, parent_rel, follow_last=True)
            if not str(parent).startswith(str(root)):
                raise InvalidImage(f"layer entry {m.name!r} escapes the rootfs")
            if base == ".wh..wh..opq":
                if parent.is_dir():
                    for child in parent.iterdir():
                        _remove(child)
                continue
            if base.startswith(".wh."):
                _remove(parent / base[4:])
                continue
            _mkdirs(parent)
            target = parent / base
            if m.isdir():
                if target.exists() and not target.is_dir():
                    _remove(target)
                _mkdirs(target)
                dirs.append((target, m))
                continue
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            if m.isreg():
                src = tf.extractfile(m)
                assert src is not None
                with open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            elif m.issym():
                os.symlink(m.linkname, target)
            elif m.islnk():
                link_src = _scoped(root, os.path.normpath("/" + m.linkname).lstrip("/"))
                os.link(link_src, target)
                continue
            elif m.isfifo():
                os.mkfifo(target)
            elif m.ischr() or m.isblk():
                kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
                try:
                    os.mknod(target, kind | 0o600, os.makedev(m.devmajor, m.devminor))
                except PermissionError:
                    continue
            else:
                continue
            _set_meta(target, m)
        for d, m in reversed(dirs):
            _set_meta(d, m)


def _mkdirs(path: Path) -> None:
    """Create ``path`` and missing parents as ``0755`` whatever the process umask.

    A layer may list a file before (or without) its directories; the directories made for
    it must be readable by a container's non-root user even though the agent and the image
    tools run under the private umask (``ctl.util.private_files``). Directories the layer
    does list get their own mode afterwards from :func:`_set_meta`.
    """
    missing: list[Path] = []
    cur = path
    while not cur.exists():
        missing.append(cur)
        cur = cur.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir()
            os.chmod(d, 0o755)


def _set_meta(path: Path, m: tarfile.TarInfo) -> None:
    if os.geteuid() == 0:
        with contextlib.suppress(OSError):
            os.lchown(path, m.uid, m.gid)
    if not m.issym():
        with contextlib.suppress(OSError):
            os.chmod(path, m.mode & 0o7777)
    with contextlib.suppress(OSError, NotImplementedError):
        os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)


def tar_bytes(entries: list[tarfile.TarInfo], contents: dict[str, bytes]) -> bytes:
    """A deterministic uncompressed tarball from ``entries`` (file data looked up in ``contents``)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti in entries:
            data = contents.get(ti.name)
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()
