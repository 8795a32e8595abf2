"""Informers: a local, always-current copy of a set of objects, with change callbacks.

An :class:`Informer` lists, then watches from the list's resourceVersion; on 410 Gone (the
server compacted past us) it relists and reports the differences as ordinary
events, so handlers never miss a deletion. Controllers, the scheduler, node agents and
the TUI build on this instead of talking to watches directly. Objects are keyed by
:func:`ctl.types.meta.object_key` (``TENANT/NAMESPACE/NAME``).

:class:`SharedInformers` starts one informer per kind (across all tenants by default) no
matter how many consumers use it, and each :class:`SharedInformer` keeps secondary
:class:`Index` es (``by_namespace``, ``by_node``, ``by_controller`` or any function of an
object) up to date before any consumer's handler sees the event.

A handler that raises is logged once per object and event type (not once per event), so a
malformed object already in the store cannot flood the log; the informer goes on with
the other handlers and objects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ctl.client.aio import ApiError, Client, WatchExpired, resolve_kind
from ctl.client.reportonce import ReportOnce, describe
from ctl.types import kinds, meta
from ctl.types.kinds import Kind
from ctl.types.meta import object_key
from ctl.types.shapes import WatchEventType
from ctl.util.tasks import cancel_and_wait

log = logging.getLogger("centaurus.informer")

Handler = Callable[[WatchEventType, dict[str, Any], dict[str, Any] | None], Awaitable[None] | None]


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
        self._failed = ReportOnce()  # object key -> resourceVersion a handler failed on

    def add_handler(self, h: Handler) -> None:
        self.handlers.append(h)

    async def _emit(self, typ: WatchEventType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        for h in self.handlers:
            try:
                r = h(typ, obj, old)
                if asyncio.iscoroutine(r):
                    await r
            except Exception as e:
                self._handler_failed(h, typ, obj, e)
        if typ == "DELETED":
            self._failed.forget(object_key(obj))

    def _handler_failed(self, h: Handler, typ: str, obj: dict[str, Any], e: Exception) -> None:
        """Report a handler's failure on one version of an object once (a warning line, no traceback)."""
        key = object_key(obj)
        md = obj.get("metadata")
        rv = str(md.get("resourceVersion", "")) if isinstance(md, dict) else ""
        if not self._failed.first(key, rv):
            log.debug(
                "informer %s: handler failed again on %s %s: %s", self.kind.plural, typ, key, describe(e)
            )
            return
        log.warning(
            "informer %s: handler %s failed on %s %s (resourceVersion %s), ignoring this version: %s",
            self.kind.plural,
            getattr(h, "__qualname__", repr(h)),
            typ,
            key,
            rv,
            describe(e),
        )
        log.debug("handler traceback", exc_info=e)

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
        await cancel_and_wait(self._task)

    def list(self) -> list[dict[str, Any]]:
        return list(self.store.values())

    def get(self, namespace: str, name: str, tenant: str = "") -> dict[str, Any] | None:
        return self.store.get(f"{tenant}/{namespace}/{name}")


class Index:
    """A secondary index over an informer's store: index value -> set of object keys."""

    def __init__(self, fn: Callable[[dict[str, Any]], list[str]]) -> None:
        self.fn = fn
        self.values: dict[str, set[str]] = {}

    def update(self, typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        k = object_key(obj)
        if old is not None:
            for v in self.fn(old):
                s = self.values.get(v)
                if s is not None:
                    s.discard(k)
                    if not s:
                        del self.values[v]
        if typ != "DELETED":
            for v in self.fn(obj):
                self.values.setdefault(v, set()).add(k)


def by_namespace(obj: dict[str, Any]) -> list[str]:
    """``TENANT/NAMESPACE`` of a namespaced object."""
    md = obj.get("metadata") or {}
    return [f"{md.get('tenant', '')}/{md.get('namespace', '')}"]


def by_node(obj: dict[str, Any]) -> list[str]:
    """The node a pod is bound to (none while unbound)."""
    n = (obj.get("spec") or {}).get("nodeName")
    return [n] if n else []


def by_controller(obj: dict[str, Any]) -> list[str]:
    """The uid of the object's controlling owner."""
    ref = meta.controller_of(obj)
    return [ref["uid"]] if ref and ref.get("uid") else []


class SharedInformer:
    """One informer shared by several consumers, with named secondary indexes."""

    def __init__(self, informer: Informer) -> None:
        self.informer = informer
        self.indexes: dict[str, Index] = {}
        informer.handlers.insert(0, self._index)

    def _index(self, typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        for ix in self.indexes.values():
            ix.update(typ, obj, old)

    def add_index(self, name: str, fn: Callable[[dict[str, Any]], list[str]]) -> None:
        if name in self.indexes:
            return
        ix = Index(fn)
        for o in self.informer.store.values():
            ix.update("ADDED", o, None)
        self.indexes[name] = ix

    def by_index(self, name: str, value: str) -> list[dict[str, Any]]:
        store = self.informer.store
        return [store[k] for k in self.indexes[name].values.get(value, ()) if k in store]

    def add_handler(self, h: Handler) -> None:
        self.informer.add_handler(h)

    def get_key(self, key: str) -> dict[str, Any] | None:
        return self.informer.store.get(key)

    def list(self) -> list[dict[str, Any]]:
        return self.informer.list()

    @property
    def synced(self) -> asyncio.Event:
        return self.informer.synced


class SharedInformers:
    """A factory handing out one :class:`SharedInformer` per (kind, tenant, namespace)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.informers: dict[str, SharedInformer] = {}
        self.started = False

    def get(
        self, kind: Kind | str, namespace: str | None = None, tenant: str | None = "all"
    ) -> SharedInformer:
        inf = Informer(self.client, kind, namespace=namespace, tenant=tenant)
        if inf.kind.scope == kinds.CLUSTER:
            inf.tenant = tenant = None
        k = f"{inf.kind.api_version}/{inf.kind.plural}/{tenant}/{namespace}"
        if k not in self.informers:
            self.informers[k] = SharedInformer(inf)
            if self.started:
                inf.start()
        return self.informers[k]

    def start(self) -> None:
        self.started = True
        for s in self.informers.values():
            if s.informer._task is None:
                s.informer.start()

    async def wait_synced(self) -> None:
        await asyncio.gather(*(s.synced.wait() for s in self.informers.values()))

    async def stop(self) -> None:
        await cancel_and_wait(s.informer._task for s in self.informers.values())
