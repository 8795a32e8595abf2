"""Streaming a log file the way ``kubectl logs [-f] [--tail N]`` reads it on a node.

Both real runtimes keep a pod's output in a plain file that another process appends to: the
runc shim redirects a container's stdout and stderr into ``logs/<name>/<n>.log``, and virtlogd
copies a VM's serial console into ``console.log``. :func:`follow_file` serves such a file for
both: the last ``tail`` lines (or all of it, in 64 KiB chunks), then, when following, whatever
is appended, polled every ``interval`` seconds until the caller's ``done()`` says the writer
has finished (the container exited, the VM's directory was removed); what arrived in between
is still sent. A file that shrinks or is replaced under the same name (virtlogd rotates console
logs) is read again from its start, and a file that does not exist yet yields nothing until it
appears. :func:`last_lines` is the ``--tail`` cut on its own.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

CHUNK = 65536


def last_lines(data: bytes, n: int) -> bytes:
    """The last ``n`` lines of ``data`` (line endings kept); nothing for ``n <= 0``."""
    if n <= 0:
        return b""
    return b"".join(data.splitlines(keepends=True)[-n:])


class _Reader:
    """Reads a file by name from where it stopped; starts over when the file shrank or was replaced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pos = 0
        self.ino: int | None = None

    def read(self, size: int = CHUNK) -> bytes:
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                if st.st_ino != self.ino or st.st_size < self.pos:
                    self.ino, self.pos = st.st_ino, 0
                f.seek(self.pos)
                data = f.read(size)
        except FileNotFoundError:
            return b""
        self.pos += len(data)
        return data


def _never() -> bool:
    return False


async def follow_file(
    path: Path,
    *,
    follow: bool = False,
    tail: int | None = None,
    done: Callable[[], bool] = _never,
    interval: float = 0.1,
) -> AsyncIterator[bytes]:
    """Yield the file's content (its last ``tail`` lines if given), then appended data while following.

    Following ends once ``done()`` is true and everything written until then has been yielded.
    """
    reader = _Reader(path)
    if tail is not None:
        chunk = last_lines(reader.read(-1), tail)
        if chunk:
            yield chunk
    else:
        while chunk := reader.read():
            yield chunk
    if not follow:
        return
    while True:
        chunk = reader.read()
        if chunk:
            yield chunk
            continue
        if done():
            while chunk := reader.read():
                yield chunk
            return
        await asyncio.sleep(interval)
