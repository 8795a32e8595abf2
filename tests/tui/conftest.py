"""Fixtures of the TUI tests: a real API server, a namespace per test, and the app driven by Pilot.

``tui_ns`` is a fresh namespace on the module's API server (``apiserver``, an anonymous-admin
server process), so tests sharing a server never see each other's objects. ``open_tui`` runs a
:class:`~ctl.tui.app.CentaurusApp` headless (``App.run_test``) on that namespace and waits until
its first table is listed; ``until`` waits (bounded) for a condition while the app runs.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from ctl.client import ClientConfig, SyncClient
from ctl.tui.app import CentaurusApp
from ctl.tui.data.rows import Clock
from tests.cluster import ApiServerProcess
from tests.controllers.conftest import deployment as _deployment
from tests.helpers.wait import eventually

_n = itertools.count()


def pod(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
    }


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    return _deployment(name, replicas, {"app": name})


@pytest.fixture()
def client(apiserver: ApiServerProcess) -> Any:
    c = apiserver.sync_client()
    yield c
    c.close()


@pytest.fixture()
def tui_ns(client: SyncClient) -> str:
    ns = f"tui{next(_n)}-{id(client) % 10000}"
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    return ns


async def until(fn: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    return await eventually(fn, timeout, 0.05, what)


@asynccontextmanager
async def open_tui(
    server: ApiServerProcess,
    namespace: str | None,
    kind: str = "pods",
    clock: Clock | None = None,
    size: tuple[int, int] = (120, 32),
    token: str | None = None,
) -> AsyncIterator[tuple[CentaurusApp, Any]]:
    cfg = ClientConfig(server.url, token=token, namespace=namespace or "default", context="test")
    kw: dict[str, Any] = {"kind": kind, "monitor_interval": 0.25}
    if clock is not None:
        kw["clock"] = clock
    app = CentaurusApp(cfg, **kw)
    if namespace is None:
        app.session.config.namespace = ""
    async with app.run_test(size=size) as pilot:
        await until(
            lambda: app.main.ready.is_set() and app.main.feed and app.main.feed.synced.is_set(), "first list"
        )
        yield app, pilot
