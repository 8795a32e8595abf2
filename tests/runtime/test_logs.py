"""``follow_file``: the one log streamer behind ``logs`` of the runc and libvirt runtimes. No root needed.

Real files in a temporary directory, appended to by a task while the streamer follows: the
``--tail`` cut, chunked full reads, following until ``done()``, data written just before
``done()`` still delivered, a file that is truncated or replaced (rotation) read from its start,
and a file that appears only after following began.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from agent.runtime.logs import CHUNK, follow_file, last_lines


async def collect(path: Path, **kw) -> bytes:
    return b"".join([c async for c in follow_file(path, **kw)])


def test_last_lines() -> None:
    data = b"a\nb\nc\n"
    assert last_lines(data, 2) == b"b\nc\n" and last_lines(data, 10) == data
    assert last_lines(data, 0) == b"" and last_lines(data, -1) == b""
    assert last_lines(b"a\nno newline", 1) == b"no newline"


async def test_read_all_tail_and_missing(tmp_path: Path) -> None:
    p = tmp_path / "log"
    assert await collect(p) == b"" and await collect(p, tail=3) == b""
    big = b"x" * (CHUNK * 2 + 10) + b"\nlast\n"
    p.write_bytes(big)
    chunks = [c async for c in follow_file(p)]
    assert b"".join(chunks) == big and len(chunks) == 3  # read in chunks, not at once
    assert await collect(p, tail=1) == b"last\n"
    assert await collect(p, tail=0) == b""


async def test_follow_until_done(tmp_path: Path) -> None:
    p = tmp_path / "log"
    p.write_bytes(b"one\ntwo\n")
    finished = False

    async def writer() -> None:
        nonlocal finished
        for i in range(3):
            await asyncio.sleep(0.05)
            with open(p, "ab") as f:
                f.write(f"more{i}\n".encode())
        with open(p, "ab") as f:
            f.write(b"just before the end\n")
        finished = True  # the streamer must still send the line above

    task = asyncio.create_task(writer())
    got = await asyncio.wait_for(collect(p, tail=1, follow=True, done=lambda: finished, interval=0.02), 5)
    await task
    assert got == b"two\nmore0\nmore1\nmore2\njust before the end\n"


async def test_follow_truncated_replaced_and_late_file(tmp_path: Path) -> None:
    p = tmp_path / "console.log"
    seen: list[bytes] = []
    finished = False

    async def follower() -> None:
        async for c in follow_file(p, follow=True, done=lambda: finished, interval=0.02):
            seen.append(c)

    task = asyncio.create_task(follower())

    async def until(text: bytes) -> None:
        for _ in range(250):
            if text in b"".join(seen):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{text!r} never streamed; got {b''.join(seen)!r}")

    await asyncio.sleep(0.1)
    p.write_bytes(b"appeared late\n")  # did not exist when following began
    await until(b"appeared late")
    p.write_bytes(b"new\n")  # truncated and rewritten shorter: read from the start
    await until(b"new\n")
    tmp = tmp_path / "console.log.new"
    tmp.write_bytes(b"rotated file with a much longer first line\n")
    os.replace(tmp, p)  # replaced by another file (virtlogd rotation), longer than what was read
    await until(b"rotated file")
    finished = True
    await asyncio.wait_for(task, 5)
    assert b"".join(seen) == b"appeared late\nnew\nrotated file with a much longer first line\n"
