"""etcd-specific behaviour that the shared contract suite cannot express.

* compaction done by *another* client is learned (``compacted_revision`` probe and the
  watch/list errors carry the real compacted revision);
* a store whose etcd is down, unreachable or hung fails with a clear :class:`StoreError`;
* :class:`EtcdProcess` restarts on the same data directory and ports with data intact.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from ctl.cluster.etcd_process import EtcdProcess, free_port
from ctl.store import CompactedError, StoreError, open_store
from ctl.store.etcd import EtcdStore, grpc_target

from .conftest import HAVE_ETCD

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not HAVE_ETCD, reason="/usr/bin/etcd not installed")]


async def test_compaction_by_other_client_is_learned(etcd_proc: EtcdProcess, root: str) -> None:
    a, b = EtcdStore(etcd_proc.endpoints), EtcdStore(etcd_proc.endpoints)
    await a.start()
    await b.start()
    try:
        prefix = root + "/registry/pods/"
        first = await a.create(prefix + "x", b"1")
        for i in range(3):
            await a.update(prefix + "x", str(i).encode())
        rev = await a.current_revision()
        before = await b.compacted_revision()
        assert before < first.mod_revision
        await a.compact(rev)
        assert await b.compacted_revision() == rev
        with pytest.raises(CompactedError) as ei:
            await anext(EtcdStore(etcd_proc.endpoints).watch(prefix, first.mod_revision))
        assert ei.value.compacted == rev
        c = EtcdStore(etcd_proc.endpoints)
        try:
            with pytest.raises(CompactedError) as ei2:
                await c.list(prefix, revision=first.mod_revision)
            assert ei2.value.compacted == rev
        finally:
            await c.close()
    finally:
        await a.close()
        await b.close()


async def test_unreachable_etcd_is_a_store_error() -> None:
    store = EtcdStore([f"127.0.0.1:{free_port()}"], timeout=3)
    with pytest.raises(StoreError, match="unavailable"):
        async with asyncio.timeout(10):
            await store.start()
    await store.close()


def test_bad_endpoints_rejected() -> None:
    with pytest.raises(ValueError):
        EtcdStore(["nohostport"])
    with pytest.raises(ValueError):
        EtcdStore(["a.example:1", "b.example:2"])
    assert grpc_target(["http://127.0.0.1:2379"]) == "127.0.0.1:2379"
    assert grpc_target(["127.0.0.1:1", "127.0.0.2:2"]) == "ipv4:127.0.0.1:1,127.0.0.2:2"


async def test_restart_keeps_data_and_ports_and_errors_while_down(tmp_path: Path) -> None:
    proc = EtcdProcess(tmp_path / "data", die_with_parent=True)
    url = proc.start()
    try:
        assert proc.healthy() and url == proc.url
        store = open_store(proc.store_url)
        await store.start()
        kv = await store.create("/registry/pods/a", b"persisted")
        w = store.watch("/registry/", kv.mod_revision)
        waiter = asyncio.ensure_future(anext(w))
        await asyncio.sleep(0.2)
        proc.stop()
        with pytest.raises(StoreError):  # an active watch fails loudly when etcd goes away
            await asyncio.wait_for(waiter, 15)
        assert not proc.running()
        with pytest.raises(StoreError):
            async with asyncio.timeout(15):
                await store.get("/registry/pods/a")
        assert proc.start() == url  # same ports on restart
        async with asyncio.timeout(15):
            while True:  # the channel reconnects on its own
                try:
                    got = await store.get("/registry/pods/a")
                    break
                except StoreError:
                    await asyncio.sleep(0.1)
        assert got == kv
        await store.close()
    finally:
        proc.stop()
    assert not proc.running()
    proc.stop()  # idempotent


async def test_frozen_etcd_times_out_as_store_error(tmp_path: Path) -> None:
    """A hung etcd (SIGSTOP) fails calls at the store timeout, not never (deadlines hold)."""
    proc = EtcdProcess(tmp_path / "data", die_with_parent=True)
    proc.start()
    store = EtcdStore(proc.endpoints, timeout=1.5)
    try:
        await store.start()
        await store.create("/registry/pods/f", b"v")
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            with pytest.raises(StoreError, match="timed out"):
                await store.get("/registry/pods/f")
            assert 1.0 < time.monotonic() - t0 < 5
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        assert (await store.get("/registry/pods/f")) is not None
    finally:
        await store.close()
        proc.stop()
