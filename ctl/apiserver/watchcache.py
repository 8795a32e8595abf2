"""The API server's watch cache: every object in memory, LIST and WATCH served from it.

At start the cache lists every kind's prefix at one store revision, then follows a
single store watch on ``/registry/`` from that revision. Because that watch sees
every write, the cache knows exactly which store revision it reflects
(:attr:`WatchCache.revision`); a LIST that must be fresh waits until the cache has
caught up with the store's current revision, then answers from memory.

Each kind keeps a bounded window of recent events so that watches resume from a
recent resourceVersion without touching the store. Older (but uncompacted)
resourceVersions are replayed from the store's own history, compacted ones answer
410 Gone.

Watchers whose field selector pins ``spec.nodeName`` are indexed by node name, so an
event about a pod costs O(watchers of that node + unindexed watchers), not O(all
watchers): 20,000 node agents can watch their pods without every pod event visiting
20,000 queues.
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ctl.store import CompactedError, Store, WatchEvent
from ctl.types import kinds
from ctl.types.kinds import Kind
from ctl.types.selectors import FieldSelector, LabelSelector
from ctl.types.shapes import WatchEventType

log = logging.getLogger("centaurus.watchcache")

EVENT_WINDOW = 50_000
WATCHER_QUEUE_LIMIT = 20_000


def decode(kv_value: bytes, revision: int) -> dict[str, Any]:
    obj: dict[str, Any] = orjson.loads(kv_value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return obj


@dataclass(slots=True)
class CacheEvent:
    revision: int
    type: WatchEventType  # ADDED | MODIFIED | DELETED
    key: str
    obj: dict[str, Any]
    old: dict[str, Any] | None


class Watcher:
    """One client watch: a prefix, selectors and a queue of events to send."""

    def __init__(self, prefix: str, labels: LabelSelector, fields: FieldSelector, node: str | None) -> None:
        self.prefix = prefix
        self.labels = labels
        self.fields = fields
        self.node = node
        self.queue: asyncio.Queue[CacheEvent | None] = asyncio.Queue()
        self.overflowed = False

    def _match(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        if not self.labels.empty and not self.labels.matches(obj.get("metadata", {}).get("labels")):
            return False
        return self.fields.empty or self.fields.matches(obj)

    def translate(self, ev: CacheEvent) -> tuple[WatchEventType, dict[str, Any]] | None:
        """What this watcher should see of ``ev`` (selector transitions become ADDED/DELETED)."""
        if not ev.key.startswith(self.prefix):
            return None
        if ev.type == "DELETED":
            return ("DELETED", ev.obj) if self._match(ev.obj) else None
        new_ok = self._match(ev.obj)
        if ev.type == "ADDED":
            return ("ADDED", ev.obj) if new_ok else None
        old_ok = self._match(ev.old)
        if new_ok and old_ok:
            return ("MODIFIED", ev.obj)
        if new_ok:
            return ("ADDED", ev.obj)
        if old_ok:
            return ("DELETED", ev.obj)
        return None

    def offer(self, ev: CacheEvent) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() >= WATCHER_QUEUE_LIMIT:
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(ev)


class KindCache:
    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.objects: dict[str, dict[str, Any]] = {}
        self.keys: list[str] = []  # sorted keys of ``objects``: prefix lists without sorting
        self.events: deque[CacheEvent] = deque(maxlen=EVENT_WINDOW)
        self.window_start = 0  # events with revision > window_start are all in self.events
        self.watchers: set[Watcher] = set()
        self.by_node: dict[str, set[Watcher]] = {}

    def add_watcher(self, w: Watcher) -> None:
        if w.node is not None:
            self.by_node.setdefault(w.node, set()).add(w)
        else:
            self.watchers.add(w)

    def remove_watcher(self, w: Watcher) -> None:
        if w.node is not None:
            s = self.by_node.get(w.node)
            if s is not None:
                s.discard(w)
                if not s:
                    del self.by_node[w.node]
        else:
            self.watchers.discard(w)

    def apply(self, ev: CacheEvent) -> None:
        if len(self.events) == self.events.maxlen:
            self.window_start = self.events[0].revision
        self.events.append(ev)
        for w in self.watchers:
            w.offer(ev)
        if self.by_node:
            # An unbound pod has no spec.nodeName; field selectors read that as "" (spec.nodeName= watches).
            nodes = {(ev.obj.get("spec") or {}).get("nodeName") or ""}
            if ev.old is not None:
                nodes.add((ev.old.get("spec") or {}).get("nodeName") or "")
            for n in nodes:
                for w in self.by_node.get(n, ()):
                    w.offer(ev)


class WatchCache:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.caches: dict[str, KindCache] = {k.plural: KindCache(k) for k in kinds.KINDS}
        self.revision = 0
        self._cond = asyncio.Condition()
        self._waiters = 0
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    def cache(self, kind: Kind) -> KindCache:
        return self.caches[kind.plural]

    async def start(self) -> None:
        await self._load()
        self._task = asyncio.create_task(self._follow(), name="watchcache")
        self.ready.set()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        for c in self.caches.values():
            for w in list(c.watchers) + [w for s in c.by_node.values() for w in s]:
                w.queue.put_nowait(None)

    async def _load(self) -> None:
        rev = await self.store.current_revision()
        for c in self.caches.values():
            c.objects.clear()
            c.events.clear()
            start_after = None
            while True:
                res = await self.store.list(
                    c.kind.prefix(), limit=5000, start_after=start_after, revision=rev
                )
                for kv in res.items:
                    c.objects[kv.key] = decode(kv.value, kv.mod_revision)
                if not res.more:
                    break
                start_after = res.items[-1].key
            c.keys = sorted(c.objects)
            c.window_start = rev
        self.revision = rev

    async def _follow(self) -> None:
        while True:
            try:
                # every value is in memory here: etcd need not look up previous values
                watch = self.store.watch("/registry/", self.revision, prev_kv=False)
                async for ev in watch:
                    self._apply(ev)
                    if self._waiters:
                        async with self._cond:
                            self._cond.notify_all()
                return
            except CompactedError:
                log.warning("watch cache fell behind a compaction; relisting")
                await self._load()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # store hiccup: retry from where we are
                log.warning("watch cache: store watch failed (%s); retrying", e)
                await asyncio.sleep(0.5)

    def _apply(self, ev: WatchEvent) -> None:
        key = ev.kv.key
        rev = ev.revision
        self.revision = max(self.revision, rev)
        plural = key.split("/", 3)[2] if key.count("/") >= 3 else ""
        c = self.caches.get(plural)
        if c is None:
            return
        if ev.type == "DELETE":
            old = c.objects.pop(key, None)
            if old is not None:
                i = bisect.bisect_left(c.keys, key)
                if i < len(c.keys) and c.keys[i] == key:
                    del c.keys[i]
            if ev.kv.value or old is None:
                obj = decode(ev.kv.value or b"{}", rev)
            else:  # the last state as the cache had it, at the deletion revision
                obj = dict(old, metadata=dict(old.get("metadata") or {}, resourceVersion=str(rev)))
            c.apply(CacheEvent(rev, "DELETED", key, obj, old))
        else:
            obj = decode(ev.kv.value, rev)
            old = c.objects.get(key)
            c.objects[key] = obj
            if old is None:
                bisect.insort(c.keys, key)
            c.apply(CacheEvent(rev, "MODIFIED" if old is not None else "ADDED", key, obj, old))

    async def wait_for(self, revision: int, timeout: float = 5.0) -> bool:
        """Wait until the cache reflects ``revision``; False on timeout."""
        if self.revision >= revision:
            return True

        async def _wait() -> None:
            async with self._cond:
                await self._cond.wait_for(lambda: self.revision >= revision)

        self._waiters += 1
        try:
            await asyncio.wait_for(_wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters -= 1

    async def fresh(self) -> None:
        await self.wait_for(await self.store.current_revision())

    # ------------------------------------------------------------------ reads
    def get(self, kind: Kind, key: str) -> dict[str, Any] | None:
        return self.cache(kind).objects.get(key)

    def list(self, kind: Kind, prefix: str) -> list[dict[str, Any]]:
        return [v for _, v in self.list_items(kind, prefix)]

    def list_items(
        self, kind: Kind, prefix: str, start_after: str | None = None
    ) -> builtins.list[tuple[str, dict[str, Any]]]:
        """(key, object) under ``prefix`` in key order, optionally only keys after ``start_after``."""
        return builtins.list(self.iter_items(kind, prefix, start_after))

    def iter_items(
        self, kind: Kind, prefix: str, start_after: str | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Like :meth:`list_items`, lazily (a limited LIST stops early); do not await while iterating."""
        c = self.cache(kind)
        keys, objs = c.keys, c.objects
        if start_after is not None and start_after >= prefix:
            i = bisect.bisect_right(keys, start_after)
        else:
            i = bisect.bisect_left(keys, prefix)
        n = len(keys)
        while i < n:
            k = keys[i]
            if not k.startswith(prefix):
                return
            yield k, objs[k]
            i += 1

    # ------------------------------------------------------------------ watches
    async def watch(
        self, kind: Kind, prefix: str, after: int | None, labels: LabelSelector, fields: FieldSelector
    ) -> AsyncIterator[tuple[WatchEventType, dict[str, Any]]]:
        """Yield (type, object) for a client watch; raises CompactedError for a too-old revision.

        ``after`` None means "from now, starting with ADDED for every current object".
        """
        c = self.cache(kind)
        node = fields.equality_value("spec.nodeName") if kind.plural == "pods" else None
        w = Watcher(prefix, labels, fields, node)
        c.add_watcher(w)
        try:
            last = self.revision
            if after is None:
                for obj in self.list(kind, prefix):
                    if w._match(obj):
                        yield "ADDED", obj
            elif after < last:
                if after >= c.window_start:
                    replay = [e for e in c.events if e.revision > after]
                    for e in replay:
                        t = w.translate(e)
                        if t:
                            yield t
                else:
                    async for t in self._replay_from_store(kind, w, after, last):
                        yield t
            while True:
                ev = await w.queue.get()
                if ev is None:
                    return
                if ev.revision <= last:
                    continue
                t = w.translate(ev)
                if t:
                    yield t
        finally:
            c.remove_watcher(w)

    async def _replay_from_store(
        self, kind: Kind, w: Watcher, after: int, upto: int
    ) -> AsyncIterator[tuple[WatchEventType, dict[str, Any]]]:
        """History older than the in-memory window, read from the store's log."""
        compacted = await self.store.compacted_revision()
        if after < compacted:
            raise CompactedError(after, compacted)
        # Rebuild the state as of `after` for the prefix, so MODIFIED/DELETED translate right.
        state: dict[str, dict[str, Any]] = {}
        start_after = None
        while True:
            res = await self.store.list(w.prefix, limit=5000, start_after=start_after, revision=after)
            for kv in res.items:
                state[kv.key] = decode(kv.value, kv.mod_revision)
            if not res.more:
                break
            start_after = res.items[-1].key
        it = self.store.watch(w.prefix, after)
        try:
            async for ev in it:
                if ev.revision > upto:
                    break
                key = ev.kv.key
                obj = decode(ev.kv.value, ev.revision)
                old = state.get(key)
                if ev.type == "DELETE":
                    state.pop(key, None)
                    ce = CacheEvent(ev.revision, "DELETED", key, obj, old)
                else:
                    state[key] = obj
                    ce = CacheEvent(ev.revision, "MODIFIED" if old else "ADDED", key, obj, old)
                t = w.translate(ce)
                if t:
                    yield t
                if ev.revision >= upto:
                    break
        finally:
            await it.aclose()  # type: ignore[attr-defined]
