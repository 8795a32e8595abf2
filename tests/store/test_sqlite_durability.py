"""Crash durability of the embedded sqlite store.

A child process writes through ``SqliteStore`` (concurrent creates and updates, so the
writer's group commit batches them) and prints every write the store acknowledged. The
test SIGKILLs the child mid-stream, reopens the database and requires every acknowledged
write to be there with its acknowledged revision: an acknowledged write survives a crash.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ctl.store import open_store

from .conftest import HAVE_SQLITE

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not HAVE_SQLITE, reason="ctl.store.sqlite not available yet"),
]

WRITER = r"""
import asyncio, json, sys
from ctl.store import open_store

async def main(path):
    store = open_store("sqlite://" + path)
    await store.start()

    async def worker(t):
        i = 0
        while True:
            key = f"/registry/pods/w{t}/k{i:06d}"
            kv = await store.create(key, f"{t}:{i}".encode())
            print(json.dumps([kv.key, kv.value.decode(), kv.mod_revision]), flush=True)
            if i % 3 == 0:
                kv = await store.update(key, f"{t}:{i}:u".encode(), expected_revision=kv.mod_revision)
                print(json.dumps([kv.key, kv.value.decode(), kv.mod_revision]), flush=True)
            i += 1

    await asyncio.gather(*(worker(t) for t in range(8)))

asyncio.run(main(sys.argv[1]))
"""


async def test_acknowledged_writes_survive_kill9(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    acked: dict[str, tuple[str, int]] = {}
    deadline = time.monotonic() + 20
    try:
        assert proc.stdout is not None
        while len(acked) < 2000 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            key, value, rev = json.loads(line)
            acked[key] = (value, rev)  # later lines for a key are later acknowledgements
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=10)
    assert len(acked) >= 2000, f"writer produced only {len(acked)} acks: {err.decode()[-2000:]}"
    assert proc.returncode == -signal.SIGKILL

    store = open_store("sqlite://" + str(db))
    await store.start()
    try:
        items = {kv.key: kv for kv in (await store.list("/registry/pods/")).items}
        missing = [k for k in acked if k not in items]
        assert not missing, f"{len(missing)} acknowledged keys lost, e.g. {missing[:3]}"
        for key, (value, rev) in acked.items():
            kv = items[key]
            # the store may hold a later (unacknowledged-but-committed) update, never an older state
            assert kv.mod_revision >= rev, (key, kv, rev)
            if kv.mod_revision == rev:
                assert kv.value.decode() == value
        assert await store.current_revision() >= max(rev for _, rev in acked.values())
        # the store keeps working after recovery
        await store.create("/registry/pods/after-crash", b"ok")
    finally:
        await store.close()
