"""Garbage collector: deletes objects whose owners are gone, in the three Kubernetes modes.

It watches every kind (except Events) across all tenants and keeps the ownerReference
graph: for each object its owners' uids, and for each owner uid its dependents. Work
items are ``attempt:UID`` (does this object still have an owner?), ``deleting:UID`` (an
owner in foreground deletion) and ``orphan:UID`` (an owner deleted with the orphan
policy).

* Background: when an owner disappears every dependent is checked; a dependent whose
  owners are all gone (not found, or found with another uid: the owner was re-created)
  is deleted, itself with the background policy, so chains collapse level by level.
  A dependent that still has a live owner only loses the references to dead ones.
* Foreground: an owner with a ``deletionTimestamp`` and the ``foregroundDeletion``
  finalizer gets its dependents deleted first (a dependent that has dependents of its
  own is deleted in the foreground too); once no dependent with
  ``blockOwnerDeletion: true`` is left the finalizer is removed and the owner goes.
* Orphan: an owner with the ``orphan`` finalizer has its uid removed from every
  dependent's ownerReferences, then the finalizer is removed.

Owners missing from the local graph are confirmed with a GET before anything is
deleted, so a lagging watch never deletes a dependent of a live owner.
"""

from __future__ import annotations

import copy
from typing import Any

from ctl.client.aio import ApiError
from ctl.client.informer import SharedInformer, SharedInformers
from ctl.controllers.base import Controller
from ctl.types import kinds
from ctl.types.meta import object_key

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
SKIP_KINDS = {"Event"}


def _finalizers(obj: dict[str, Any]) -> list[str]:
    return list(obj["metadata"].get("finalizers") or [])


def _owner_uids(obj: dict[str, Any]) -> set[str]:
    return {r["uid"] for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid")}


def _deleting_with(obj: dict[str, Any], fin: str) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp")) and fin in _finalizers(obj)


class GarbageCollector(Controller):
    name = "garbagecollector"

    def setup(self, informers: SharedInformers) -> None:
        self.where: dict[str, tuple[SharedInformer, str]] = {}  # uid -> (informer, key)
        self.owners: dict[str, set[str]] = {}  # uid -> owner uids
        self.dependents: dict[str, set[str]] = {}  # owner uid -> dependent uids
        for k in kinds.KINDS:
            if k.kind in SKIP_KINDS:
                continue
            inf = informers.get(k)
            inf.add_handler(self._handler(inf))

    # ------------------------------------------------------------------ graph
    def obj(self, uid: str) -> dict[str, Any] | None:
        w = self.where.get(uid)
        if w is None:
            return None
        o = w[0].get_key(w[1])
        if o is None or o["metadata"].get("uid") != uid:
            return None
        return o

    def _add(self, item: str, obj: dict[str, Any]) -> None:
        if self.hash_range.owns(obj):
            self.queue.add(item)

    def _handler(self, inf: SharedInformer) -> Any:
        def on(typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
            md = obj["metadata"]
            uid = md.get("uid")
            if not uid:
                return
            if old is not None and old["metadata"].get("uid") != uid:
                # Same name, new object: the old one is gone.
                self._gone(old["metadata"]["uid"])
            if typ == "DELETED":
                self._gone(uid)
                return
            self.where[uid] = (inf, object_key(obj))
            new_owners = _owner_uids(obj)
            prev = self.owners.get(uid, set())
            if new_owners != prev:
                for o in prev - new_owners:
                    self._unlink(o, uid)
                for o in new_owners - prev:
                    self.dependents.setdefault(o, set()).add(uid)
                if new_owners:
                    self.owners[uid] = new_owners
                else:
                    self.owners.pop(uid, None)
                for o in prev - new_owners:
                    self._owner_changed(o)
            if new_owners and (typ == "ADDED" or new_owners - prev):
                self._add(f"attempt:{uid}", obj)
            was_fg = old is not None and old["metadata"].get("uid") == uid and _deleting_with(old, FOREGROUND)
            if _deleting_with(obj, FOREGROUND):
                self._add(f"deleting:{uid}", obj)
                if not was_fg:
                    for dep in list(self.dependents.get(uid, ())):
                        d = self.obj(dep)
                        if d is not None:
                            self._add(f"attempt:{dep}", d)
            if _deleting_with(obj, ORPHAN):
                self._add(f"orphan:{uid}", obj)

        return on

    def _unlink(self, owner: str, dep: str) -> None:
        s = self.dependents.get(owner)
        if s is not None:
            s.discard(dep)
            if not s:
                del self.dependents[owner]

    def _owner_changed(self, owner_uid: str) -> None:
        o = self.obj(owner_uid)
        if o is not None and _deleting_with(o, FOREGROUND):
            self._add(f"deleting:{owner_uid}", o)

    def _gone(self, uid: str) -> None:
        self.where.pop(uid, None)
        for o in self.owners.pop(uid, set()):
            self._unlink(o, uid)
            self._owner_changed(o)
        for dep in list(self.dependents.get(uid, ())):
            d = self.obj(dep)
            if d is not None:
                self._add(f"attempt:{dep}", d)

    # ------------------------------------------------------------------ sync
    async def sync(self, key: str) -> float | None:
        what, _, uid = key.partition(":")
        if what == "attempt":
            return await self._attempt(uid)
        if what == "deleting":
            return await self._deleting(uid)
        if what == "orphan":
            return await self._orphan(uid)
        return None

    async def _owner_state(self, dep: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any] | None:
        """The live owner named by ``ref`` (None when it is gone or was re-created)."""
        o = self.obj(ref["uid"])
        if o is not None:
            return o
        k = kinds.by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if k is None:
            return {"metadata": {"uid": ref["uid"]}}  # unknown kind: never treat as gone
        dmd = dep["metadata"]
        if k.namespaced and not dmd.get("namespace"):
            return None  # a cluster- or tenant-scoped object cannot be owned by a namespaced one
        try:
            live = await self.client.get(
                k,
                ref["name"],
                namespace=dmd.get("namespace") if k.namespaced else None,
                tenant=(dmd.get("tenant") or None) if k.scope != kinds.CLUSTER else None,
            )
        except ApiError as e:
            if e.code == 404:
                return None
            raise
        return live if live["metadata"].get("uid") == ref["uid"] else None

    async def _attempt(self, uid: str) -> float | None:
        obj = self.obj(uid)
        if obj is None:
            return None
        md = obj["metadata"]
        if md.get("deletionTimestamp"):
            return None  # already being deleted (its own finalizers drive the rest)
        solid: list[str] = []
        dangling: list[str] = []
        waiting: list[str] = []
        for ref in md.get("ownerReferences") or []:
            if not ref.get("uid"):
                continue
            owner = await self._owner_state(obj, ref)
            if owner is None:
                dangling.append(ref["uid"])
            elif _deleting_with(owner, FOREGROUND):
                waiting.append(ref["uid"])
            else:
                solid.append(ref["uid"])
        if not dangling and not waiting:
            return None
        if solid:
            drop = set(dangling) | set(waiting)
            refs = [r for r in md.get("ownerReferences") or [] if r.get("uid") not in drop]
            await self._patch_owner_refs(obj, refs)
            return None
        fins = _finalizers(obj)
        if ORPHAN in fins:
            policy = "Orphan"
        elif FOREGROUND in fins or (waiting and self.dependents.get(uid)):
            policy = "Foreground"
        else:
            policy = "Background"
        await self._delete(obj, policy)
        return None

    async def _delete(self, obj: dict[str, Any], policy: str) -> None:
        md = obj["metadata"]
        try:
            await self.client.delete(
                kinds.by_kind(obj["apiVersion"], obj["kind"]) or obj["kind"],
                md["name"],
                namespace=md.get("namespace"),
                tenant=md.get("tenant") or None,
                propagation_policy=policy,
                preconditions={"uid": md["uid"]},
            )
            self.log.info(
                "deleted %s %s/%s (%s, owner gone)", obj["kind"], md.get("namespace", ""), md["name"], policy
            )
        except ApiError as e:
            if e.code not in (404, 409):
                raise

    async def _patch_owner_refs(self, obj: dict[str, Any], refs: list[dict[str, Any]]) -> None:
        md = obj["metadata"]
        k = kinds.by_kind(obj["apiVersion"], obj["kind"])
        assert k is not None
        patch = {
            "metadata": {"ownerReferences": refs, "resourceVersion": md["resourceVersion"], "uid": md["uid"]}
        }
        try:
            await self.client.patch(
                k, md["name"], patch, namespace=md.get("namespace"), tenant=md.get("tenant") or None
            )
        except ApiError as e:
            if e.code != 404:
                raise

    async def _remove_finalizer(self, obj: dict[str, Any], fin: str) -> None:
        md = obj["metadata"]
        k = kinds.by_kind(obj["apiVersion"], obj["kind"])
        assert k is not None
        for _ in range(8):
            try:
                cur = await self.client.get(
                    k, md["name"], namespace=md.get("namespace"), tenant=md.get("tenant") or None
                )
            except ApiError as e:
                if e.code == 404:
                    return
                raise
            if cur["metadata"].get("uid") != md["uid"] or fin not in _finalizers(cur):
                return
            body = copy.deepcopy(cur)
            body["metadata"]["finalizers"] = [f for f in _finalizers(cur) if f != fin]
            try:
                await self.client.update(body)
                return
            except ApiError as e:
                if e.code == 404:
                    return
                if e.code != 409:
                    raise
        raise ApiError(
            409, {"message": f"could not remove finalizer {fin} from {md['name']}", "reason": "Conflict"}
        )

    async def _deleting(self, uid: str) -> float | None:
        obj = self.obj(uid)
        if obj is None or not _deleting_with(obj, FOREGROUND):
            return None
        blocking = []
        for dep in self.dependents.get(uid, ()):
            d = self.obj(dep)
            if d is None:
                continue
            for r in d["metadata"].get("ownerReferences") or []:
                if r.get("uid") == uid and r.get("blockOwnerDeletion"):
                    blocking.append(d)
                    break
        if blocking:
            for d in blocking:
                if not d["metadata"].get("deletionTimestamp"):
                    self._add(f"attempt:{d['metadata']['uid']}", d)
            return 5.0  # also woken up when a dependent goes
        await self._remove_finalizer(obj, FOREGROUND)
        self.log.info("foreground deletion of %s %s done", obj["kind"], obj["metadata"]["name"])
        return None

    async def _orphan(self, uid: str) -> float | None:
        obj = self.obj(uid)
        if obj is None or not _deleting_with(obj, ORPHAN):
            return None
        for dep in list(self.dependents.get(uid, ())):
            d = self.obj(dep)
            if d is None:
                continue
            refs = [r for r in d["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            await self._patch_owner_refs(d, refs)
        await self._remove_finalizer(obj, ORPHAN)
        self.log.info("orphaned the dependents of %s %s", obj["kind"], obj["metadata"]["name"])
        return None
