"""Fixtures for the store contract suite: one ``store`` fixture parametrized over backends.

* ``sqlite``: a fresh database file per test through ``ctl.store.open_store``.
* ``etcd``: one real etcd per session (:class:`ctl.cluster.etcd_process.EtcdProcess` on
  loopback); every test gets its own key root so tests cannot see each other's keys.

Tests build keys with the ``root`` fixture (``root + "/registry/pods/a"``); for sqlite the
root is empty-ish but still unique, so the same test code runs on both backends.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ctl.cluster.etcd_process import ETCD_BINARY, EtcdProcess
from ctl.store import Store, WatchEvent, open_store

HAVE_SQLITE = importlib.util.find_spec("ctl.store.sqlite") is not None
HAVE_ETCD = os.access(ETCD_BINARY, os.X_OK)

BACKENDS = [
    pytest.param(
        "sqlite", marks=pytest.mark.skipif(not HAVE_SQLITE, reason="ctl.store.sqlite not available yet")
    ),
    pytest.param(
        "etcd",
        marks=[pytest.mark.slow, pytest.mark.skipif(not HAVE_ETCD, reason=f"{ETCD_BINARY} not installed")],
    ),
]


@pytest.fixture(scope="session")
def etcd_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdProcess]:
    if not HAVE_ETCD:
        pytest.skip(f"{ETCD_BINARY} not installed (apt-get install etcd-server)")
    proc = EtcdProcess(tmp_path_factory.mktemp("etcd") / "data", die_with_parent=True)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def root() -> str:
    return "/t" + uuid.uuid4().hex[:10]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return "sqlite://" + str(tmp_path / "store.db")
    proc: EtcdProcess = request.getfixturevalue("etcd_proc")
    return proc.store_url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    s = open_store(store_url)
    await s.start()
    yield s
    await s.close()


async def next_events(it: AsyncIterator[WatchEvent], n: int, timeout: float = 5.0) -> list[WatchEvent]:
    """Exactly ``n`` events from a watch, failing if they do not arrive in ``timeout``."""
    out: list[WatchEvent] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            out.append(await anext(it))
    return out
