"""Informers: a local, always-current copy of a set of objects, with change callbacks.

An informer lists, then watches from the list's resourceVersion; on 410 Gone (the
server compacted past us) it relists and reports the differences as ordinary
events, so handlers never miss a deletion. Controllers, the scheduler and node agents
build on this instead of talking to watches directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ctl.client.aio import ApiError, Client, WatchExpired, resolve_kind
from ctl.types.kinds import Kind

log = logging.getLogger("centaurus.informer")

Handler = Callable[[str, dict[str, Any], dict[str, Any] | None], Awaitable[None] | None]


def object_key(obj: dict[str, Any]) -> str:
    md = obj.get("metadata") or {}
    return f"{md.get('tenant', '')}/{md.get('namespace', '')}/{md.get('name', '')}"


class Informer:
    def __init__(
        self,
        client: Client,
        kind: Kind | str,
        namespace: str | None = None,
        tenant: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> None:
        self.client = client
        self.kind = resolve_kind(kind)
        self.namespace = namespace
        self.tenant = tenant
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.store: dict[str, dict[str, Any]] = {}
        self.handlers: list[Handler] = []
        self.synced = asyncio.Event()
        self.resource_version = ""
        self._task: asyncio.Task[None] | None = None

    def add_handler(self, h: Handler) -> None:
        self.handlers.append(h)

    async def _emit(self, typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        for h in self.handlers:
            try:
                r = h(typ, obj, old)
                if asyncio.iscoroutine(r):
                    await r
            except Exception:
                log.exception("informer handler failed on %s %s", typ, object_key(obj))

    async def _relist(self) -> None:
        lst = await self.client.list_all(
            self.kind,
            namespace=self.namespace,
            tenant=self.tenant,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        fresh = {object_key(o): o for o in lst["items"]}
        old_store = self.store
        self.store = fresh
        for k, o in fresh.items():
            prev = old_store.get(k)
            if prev is None:
                await self._emit("ADDED", o, None)
            elif prev["metadata"].get("resourceVersion") != o["metadata"].get("resourceVersion"):
                await self._emit("MODIFIED", o, prev)
        for k, o in old_store.items():
            if k not in fresh:
                await self._emit("DELETED", o, o)
        self.resource_version = lst["metadata"]["resourceVersion"]

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self._relist()
                self.synced.set()
                async for typ, obj in self.client.watch(
                    self.kind,
                    self.namespace,
                    self.tenant,
                    self.resource_version,
                    self.label_selector,
                    self.field_selector,
                ):
                    k = object_key(obj)
                    old = self.store.get(k)
                    if typ == "DELETED":
                        self.store.pop(k, None)
                    else:
                        self.store[k] = obj
                    self.resource_version = obj["metadata"].get("resourceVersion", self.resource_version)
                    await self._emit(typ, obj, old)
                    backoff = 0.2
            except WatchExpired:
                log.info("informer %s: watch expired, relisting", self.kind.plural)
            except asyncio.CancelledError:
                raise
            except (ApiError, ConnectionError, OSError) as e:
                log.warning("informer %s: %s; retrying in %.1fs", self.kind.plural, e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name=f"informer-{self.kind.plural}")
        return self._task

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    def list(self) -> list[dict[str, Any]]:
        return list(self.store.values())

    def get(self, namespace: str, name: str, tenant: str = "") -> dict[str, Any] | None:
        return self.store.get(f"{tenant}/{namespace}/{name}")
