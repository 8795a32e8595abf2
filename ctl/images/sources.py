"""Where images are imported from: an OCI layout directory, or a tarball (OCI layout or ``docker save``).

:class:`Source` gives the importer one way to test for, open and read the files of either,
whatever the container; a tarball may be gzip-compressed. Paths are always relative to the
layout root, and a directory source refuses paths that leave it.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import IO

from ctl.images.errors import InvalidImage


class Source:
    def exists(self, rel: str) -> bool:
        raise NotImplementedError

    def open(self, rel: str) -> IO[bytes]:
        raise NotImplementedError

    def read(self, rel: str) -> bytes:
        with self.open(rel) as fh:
            return fh.read()

    def close(self) -> None:
        pass


class DirSource(Source):
    def __init__(self, root: Path) -> None:
        self.root = root

    def _p(self, rel: str) -> Path:
        p = (self.root / rel).resolve()
        if not str(p).startswith(str(self.root.resolve())):
            raise InvalidImage(f"path {rel!r} escapes the image directory")
        return p

    def exists(self, rel: str) -> bool:
        return self._p(rel).is_file()

    def open(self, rel: str) -> IO[bytes]:
        try:
            return open(self._p(rel), "rb")
        except FileNotFoundError:
            raise InvalidImage(f"image directory is missing {rel}") from None


class TarSource(Source):
    def __init__(self, path: Path) -> None:
        self.tf = tarfile.open(path, "r:*")
        self.members: dict[str, tarfile.TarInfo] = {}
        for m in self.tf.getmembers():
            self.members[os.path.normpath(m.name.lstrip("/")).removeprefix("./")] = m

    def _m(self, rel: str) -> tarfile.TarInfo | None:
        m = self.members.get(os.path.normpath(rel))
        seen = 0
        while m is not None and (m.issym() or m.islnk()) and seen < 10:
            seen += 1
            base = os.path.dirname(m.name) if m.issym() else ""
            m = self.members.get(os.path.normpath(os.path.join(base, m.linkname)).removeprefix("./"))
        return m

    def exists(self, rel: str) -> bool:
        m = self._m(rel)
        return m is not None and m.isfile()

    def open(self, rel: str) -> IO[bytes]:
        m = self._m(rel)
        fh = self.tf.extractfile(m) if m is not None else None
        if fh is None:
            raise InvalidImage(f"archive is missing {rel}")
        return fh

    def close(self) -> None:
        self.tf.close()
