"""Live feeds: a view's objects, kept current by an informer, with every change handed on.

A :class:`Feed` is one :class:`~ctl.client.informer.Informer` (list, then watch from the
list's resourceVersion, relist after 410 Gone, reconnect after the API server restarts) for
one kind in one :class:`~ctl.tui.data.session.Scope`. Each change reaches ``sink(key, obj)``
with ``obj=None`` for a deletion, on the app's event loop, in the order the server sent it;
the resource table coalesces bursts (the first list of 5,000 pods is one batch).

Switching kind or scope stops the old feed (its watch is cancelled) and starts a new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ctl.client import Client
from ctl.client.informer import Informer
from ctl.tui.data.session import ALL, Scope
from ctl.types import kinds
from ctl.types.kinds import Kind
from ctl.types.meta import object_key

Sink = Callable[[str, dict[str, Any] | None], None]


class Feed:
    def __init__(self, client: Client, kind: Kind, scope: Scope, sink: Sink) -> None:
        self.kind = kind
        self.scope = scope
        self.sink = sink
        tenant = None if kind.scope == kinds.CLUSTER else scope.tenant
        namespace = scope.namespace if kind.namespaced else None
        self.informer = Informer(
            client, kind, namespace=namespace, tenant=tenant, label_selector=scope.label_selector
        )
        self.informer.add_handler(self._on_event)
        self.events = 0
        # The API server answers /tenants/all/namespaces/NS/... with every namespace's objects
        # today, so the namespace is also checked here (a no-op where the server filters).
        self._only_ns = namespace if tenant == ALL else None

    def _on_event(self, typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        if self._only_ns is not None and (obj.get("metadata") or {}).get("namespace") != self._only_ns:
            return
        self.events += 1
        self.sink(object_key(obj), None if typ == "DELETED" else obj)

    def start(self) -> asyncio.Task[None]:
        return self.informer.start()

    async def stop(self) -> None:
        await self.informer.stop()

    @property
    def synced(self) -> asyncio.Event:
        return self.informer.synced

    def get(self, key: str) -> dict[str, Any] | None:
        return self.informer.store.get(key)

    def objects(self) -> list[dict[str, Any]]:
        objs = self.informer.list()
        if self._only_ns is None:
            return objs
        return [o for o in objs if (o.get("metadata") or {}).get("namespace") == self._only_ns]
