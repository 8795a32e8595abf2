"""Generic REST storage: the verbs every kind shares, on top of the store and watch cache.

``Registry`` turns an addressed request (kind, tenant, namespace, name) into store
operations and enforces the object lifecycle rules Kubernetes clients expect:

* create: defaults, validation, generateName, uid/creationTimestamp/generation,
  the tenant and namespace taken from the path (a body that disagrees is 400), the
  namespace must exist and not be terminating;
* update: optimistic concurrency on ``metadata.resourceVersion`` (409 when stale), the
  main resource cannot change ``status`` and a ``status`` update cannot change
  anything else, ``generation`` moves only with ``spec``;
* patch: merge, JSON and strategic merge patches, retried on conflicts when the
  patch itself did not pin a resourceVersion;
* delete: finalizers and graceful pod deletion set ``deletionTimestamp`` first; the
  object goes away when its last finalizer is removed.

Where a kind differs (Pods, Namespaces, Tenants), the verbs ask its strategy
(:mod:`ctl.apiserver.strategies`); this module stays generic.

Nothing is half-stored: every check happens before the single store write.

The module is a little over 600 lines on purpose: the verbs share one write path (defaults,
validation, admission, managedFields, CAS, finish) that reads best in one place; what could
leave already has (per-kind strategies, field validation, server-side apply, scale, tables,
watch streams).
"""

from __future__ import annotations

import asyncio
import copy
import random
import string
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from ctl.apiserver import apply as ssa
from ctl.apiserver import status as st
from ctl.apiserver.fieldvalidation import validate_object
from ctl.apiserver.params import decode_continue, encode_continue
from ctl.apiserver.patch import apply_patch
from ctl.apiserver.paths import self_link
from ctl.apiserver.scale import scale_of
from ctl.apiserver.status import APIError
from ctl.apiserver.strategies import strategy_for
from ctl.apiserver.watchcache import WatchCache, decode
from ctl.store import CompactedError, ConflictError, KeyExistsError, KeyNotFoundError, Store
from ctl.types import kinds, managedfields, meta, validation
from ctl.types.kinds import Kind
from ctl.types.selectors import FieldSelector, LabelSelector

Admission = Callable[[str, Kind, dict[str, Any], dict[str, Any] | None], Awaitable[None]]


def encode(obj: dict[str, Any]) -> bytes:
    md = obj.get("metadata", {})
    rv = md.pop("resourceVersion", None)
    try:
        return orjson.dumps(obj)
    finally:
        if rv is not None:
            md["resourceVersion"] = rv


class Registry:
    def __init__(self, store: Store, cache: WatchCache) -> None:
        self.store = store
        self.cache = cache
        self.admission: list[Admission] = []

    # ------------------------------------------------------------------ helpers
    def key(self, kind: Kind, tenant: str, namespace: str | None, name: str) -> str:
        return kind.key(tenant, namespace or "", name)

    def _get_cached(self, kind: Kind, tenant: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self.cache.get(kind, self.key(kind, tenant, namespace, name))

    async def get_fresh(
        self, kind: Kind, tenant: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        kv = await self.store.get(self.key(kind, tenant, namespace, name))
        return decode(kv.value, kv.mod_revision) if kv else None

    def _not_found(self, kind: Kind, name: str) -> APIError:
        return st.not_found(kind.plural, name, kind.group)

    async def check_namespace(self, tenant: str, namespace: str) -> None:
        ns_kind = kinds.by_resource("v1", "namespaces")
        assert ns_kind is not None
        ns = self._get_cached(ns_kind, tenant, None, namespace)
        if ns is None:
            await self.cache.fresh()
            ns = self._get_cached(ns_kind, tenant, None, namespace)
        if ns is None:
            raise st.not_found("namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise st.forbidden(
                f"unable to create new content in namespace {namespace} because it is being terminated"
            )

    async def check_tenant(self, tenant: str) -> None:
        t_kind = kinds.by_resource("v1", "tenants")
        assert t_kind is not None
        t = self._get_cached(t_kind, "", None, tenant)
        if t is None:
            await self.cache.fresh()
            t = self._get_cached(t_kind, "", None, tenant)
        if t is None:
            raise st.not_found("tenants", tenant)
        if t["metadata"].get("deletionTimestamp"):
            raise st.forbidden(
                f"unable to create new content in tenant {tenant} because it is being terminated"
            )

    def _finish(self, kind: Kind, obj: dict[str, Any], tenant: str, namespace: str | None) -> dict[str, Any]:
        md = obj["metadata"]
        md["selfLink"] = self_link(kind, tenant, namespace or "", md["name"])
        return obj

    # ------------------------------------------------------------------ reads
    async def get(self, kind: Kind, tenant: str, namespace: str | None, name: str) -> dict[str, Any]:
        # A GET is a consistent read (as in Kubernetes): wait until the cache reflects the
        # store's current revision, else a GET right after a write (or delete) could return
        # the old object. Cheap for sqlite (in-memory revision), one round trip for etcd.
        await self.cache.fresh()
        obj = self._get_cached(kind, tenant, namespace, name)
        if obj is None:
            raise self._not_found(kind, name)
        return obj

    async def list(
        self,
        kind: Kind,
        tenant: str | None,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        limit: int = 0,
        cont: str | None = None,
        resource_version: str | None = None,
    ) -> tuple[list[dict[str, Any]], int, str | None]:
        prefix = kind.prefix(tenant, namespace)
        if resource_version not in ("0",):
            await self.cache.fresh()
        rev = self.cache.revision
        start_after = None
        if cont:
            start_after, rev = decode_continue(cont)
            if not start_after.startswith(prefix) or rev > self.cache.revision:
                raise st.bad_request(
                    "invalid value for the query parameter continue: the token is not for this list; "
                    "start the list again without it"
                )
        items: list[dict[str, Any]] = []
        more_key: str | None = None
        if cont and rev != self.cache.revision:
            # Continue a paged list consistently at the revision the first page was read at.
            while True:
                try:
                    res = await self.store.list(
                        prefix, limit=max(limit, 500), start_after=start_after, revision=rev
                    )
                except CompactedError:
                    raise st.gone(
                        "The provided continue parameter is too old to display a consistent list result. "
                        "You can start a new list without the continue parameter."
                    ) from None
                for kv in res.items:
                    o = decode(kv.value, kv.mod_revision)
                    if self._selected(o, labels, fields):
                        items.append(o)
                        if limit and len(items) > limit:
                            break
                    start_after = kv.key
                if (limit and len(items) > limit) or not res.more:
                    break
        else:
            for _key, o in self.cache.iter_items(kind, prefix, start_after):
                if self._selected(o, labels, fields):
                    items.append(o)
                    if limit and len(items) > limit:
                        break
        next_token = None
        if limit and len(items) > limit:
            items = items[:limit]
            last = items[-1]["metadata"]
            more_key = kind.key(last.get("tenant", ""), last.get("namespace", ""), last["name"])
            next_token = encode_continue(more_key, rev)
        return items, rev, next_token

    @staticmethod
    def _selected(obj: dict[str, Any], labels: LabelSelector, fields: FieldSelector) -> bool:
        if not labels.empty and not labels.matches(obj.get("metadata", {}).get("labels")):
            return False
        return fields.empty or fields.matches(obj)

    # ------------------------------------------------------------------ writes
    async def _admit(self, verb: str, kind: Kind, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        for a in self.admission:
            await a(verb, kind, obj, old)

    def _check_identity(
        self, kind: Kind, obj: dict[str, Any], tenant: str, namespace: str | None, name: str | None
    ) -> None:
        md = obj.get("metadata")
        if not isinstance(md, dict):
            raise st.invalid(kind.kind, "", [validation.Cause("metadata", "Required value")], kind.group)
        av, k = obj.get("apiVersion"), obj.get("kind")
        if av is None:
            obj["apiVersion"] = kind.api_version
        if k is None:
            obj["kind"] = kind.kind
        if obj["apiVersion"] != kind.api_version or obj["kind"] != kind.kind:
            raise st.bad_request(
                f"the body is {obj['kind']} ({obj['apiVersion']}) but the request is for {kind.plural} "
                f"({kind.api_version}); send a {kind.kind} with apiVersion {kind.api_version} or use the right path"
            )
        if kind.namespaced:
            body_ns = md.get("namespace")
            if body_ns and body_ns != namespace:
                raise st.bad_request(
                    f"the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({namespace})"
                )
            md["namespace"] = namespace
        elif md.get("namespace"):
            raise st.bad_request(f"{kind.plural} are not namespaced; remove metadata.namespace")
        else:
            md.pop("namespace", None)  # an empty namespace on a non-namespaced kind is harmless
        body_tenant = md.get("tenant")
        if kind.scope == kinds.CLUSTER:
            md.pop("tenant", None)
        else:
            if body_tenant and body_tenant != tenant:
                raise st.bad_request(
                    f"the tenant of the provided object ({body_tenant}) does not match the tenant of the request ({tenant})"
                )
            md["tenant"] = tenant
        if name is not None and md.get("name") and md["name"] != name:
            raise st.bad_request(
                f"the name of the object ({md['name']}) does not match the name on the URL ({name})"
            )
        if name is not None and not md.get("name"):
            md["name"] = name

    async def create(
        self,
        kind: Kind,
        tenant: str,
        namespace: str | None,
        obj: dict[str, Any],
        dry_run: bool = False,
        record_fields: bool = True,
    ) -> dict[str, Any]:
        self._check_identity(kind, obj, tenant, namespace, None)
        md = obj["metadata"]
        if not md.get("name"):
            gen = md.get("generateName")
            if not gen:
                raise st.invalid(
                    kind.kind,
                    "",
                    [validation.Cause("metadata.name", "Required value: name or generateName is required")],
                    kind.group,
                )
            md["name"] = gen + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        if kind.scope != kinds.CLUSTER:
            await self.check_tenant(tenant)
        if kind.namespaced:
            await self.check_namespace(tenant, namespace or "")
        validation.default(kind, obj)
        causes = validate_object(kind, obj)
        if causes:
            raise st.invalid(kind.kind, md.get("name", ""), causes, kind.group)
        for f in ("resourceVersion", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"):
            md.pop(f, None)
        md["uid"] = meta.new_uid()
        md["creationTimestamp"] = meta.now_rfc3339()
        md["generation"] = 1
        md["hashKey"] = meta.hash_key(md["uid"])
        md["selfLink"] = self_link(
            kind, tenant, namespace or "", md["name"]
        )  # stored, so every read carries it
        if record_fields:  # the creator's Update entry in managedFields (apply records its own)
            managedfields.record_write(
                kind, None, obj, md.get("managedFields"), ssa.current().manager, "", meta.now_rfc3339()
            )
        await self._admit("create", kind, obj, None)
        if dry_run:
            return self._finish(kind, obj, tenant, namespace)
        key = self.key(kind, tenant, namespace, md["name"])
        try:
            kv = await self.store.create(key, encode(obj))
        except KeyExistsError:
            raise st.already_exists(kind.plural, md["name"], kind.group) from None
        md["resourceVersion"] = str(kv.mod_revision)
        return self._finish(kind, obj, tenant, namespace)

    async def update(
        self,
        kind: Kind,
        tenant: str,
        namespace: str | None,
        name: str,
        obj: dict[str, Any],
        subresource: str | None = None,
        old: dict[str, Any] | None = None,
        dry_run: bool = False,
        _fresh: bool = False,
        record_fields: bool = True,
    ) -> dict[str, Any]:
        self._check_identity(kind, obj, tenant, namespace, name)
        # The current object comes from the watch cache when it can: the store write below is
        # a compare-and-swap on its revision, so a stale cache entry cannot overwrite anything;
        # it only costs a retry with a fresh read (unconditional updates) or a 409.
        from_cache = False
        if old is None:
            body_rv = (obj.get("metadata") or {}).get("resourceVersion")
            cached = None if _fresh else self._get_cached(kind, tenant, namespace, name)
            if cached is not None and (not body_rv or body_rv == cached["metadata"].get("resourceVersion")):
                old, from_cache = cached, not body_rv
            else:
                old = await self.get_fresh(kind, tenant, namespace, name)
            if old is None:
                raise self._not_found(kind, name)
        md = obj["metadata"]
        old_md = old["metadata"]
        rv = md.get("resourceVersion")
        if rv and rv != old_md.get("resourceVersion"):
            raise st.conflict(kind.plural, name, kind.group)
        if md.get("uid") and md["uid"] != old_md["uid"]:
            raise APIError(
                409,
                f"Precondition failed: UID in precondition: {md['uid']}, UID in object meta: {old_md['uid']}",
                "Conflict",
            )
        new = self._merge_update(kind, old, obj, subresource)
        nmd = new["metadata"]
        nmd["selfLink"] = self_link(kind, tenant, namespace or "", name)
        validation.default(kind, new)
        causes = validate_object(kind, new)
        if causes:
            raise st.invalid(kind.kind, name, causes, kind.group)
        causes = strategy_for(kind).validate_update(old, new)
        if causes:
            raise st.invalid(kind.kind, name, causes, kind.group)
        if record_fields:  # the writer's Update entry in managedFields (apply records its own)
            managedfields.record_write(
                kind,
                old,
                new,
                md.get("managedFields"),
                ssa.current().manager,
                subresource or "",
                meta.now_rfc3339(),
            )
        elif subresource:  # server-side apply to a subresource: the managedFields it computed
            nmd["managedFields"] = md.get("managedFields") or []
        await self._admit("update", kind, new, old)
        expected = int(old_md["resourceVersion"])
        key = self.key(kind, tenant, namespace, name)
        if dry_run:
            return self._finish(kind, new, tenant, namespace)
        # Finalization: a deleting object without finalizers goes away now.
        if (
            nmd.get("deletionTimestamp")
            and not nmd.get("finalizers")
            and strategy_for(kind).deletable_now(new)
        ):
            try:
                await self.store.delete(key, expected)
            except ConflictError:
                if from_cache:
                    return await self.update(
                        kind, tenant, namespace, name, obj, subresource, None, dry_run, True, record_fields
                    )
                raise st.conflict(kind.plural, name, kind.group) from None
            except KeyNotFoundError:
                raise self._not_found(kind, name) from None
            nmd["resourceVersion"] = str(expected)
            return self._finish(kind, new, tenant, namespace)
        try:
            kv = await self.store.update(key, encode(new), expected)
        except ConflictError:
            if from_cache:
                return await self.update(
                    kind, tenant, namespace, name, obj, subresource, None, dry_run, True, record_fields
                )
            raise st.conflict(kind.plural, name, kind.group) from None
        except KeyNotFoundError:
            raise self._not_found(kind, name) from None
        nmd["resourceVersion"] = str(kv.mod_revision)
        return self._finish(kind, new, tenant, namespace)

    def _merge_update(
        self, kind: Kind, old: dict[str, Any], obj: dict[str, Any], sub: str | None
    ) -> dict[str, Any]:
        old_md = old["metadata"]
        if sub:
            sub_new = strategy_for(kind).update_subresource(old, obj, sub)
            if sub_new is None:
                raise APIError(405, f"update is not supported on {kind.plural}/{sub}", "MethodNotAllowed")
            return sub_new
        new = copy.deepcopy(obj)
        md = new["metadata"]
        for f in (
            "uid",
            "creationTimestamp",
            "generation",
            "hashKey",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ):
            if f in old_md:
                md[f] = old_md[f]
            else:
                md.pop(f, None)
        md["resourceVersion"] = old_md["resourceVersion"]
        if "status" in kind.subresources:  # the main resource cannot change .status
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        if new.get("spec") != old.get("spec"):
            md["generation"] = int(old_md.get("generation", 1)) + 1
        if old_md.get("deletionTimestamp"):
            # Only finalizers may shrink on a deleting object; nothing may be added.
            added = set(md.get("finalizers") or []) - set(old_md.get("finalizers") or [])
            if added:
                raise st.forbidden(
                    f"no new finalizers can be added if the object is being deleted, found new finalizers {sorted(added)}"
                )
        return new

    async def patch(
        self,
        kind: Kind,
        tenant: str,
        namespace: str | None,
        name: str,
        content_type: str,
        patch: Any,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        if ssa.is_apply(content_type):  # server-side apply
            return await ssa.apply_patch(self, kind, tenant, namespace, name, patch, subresource, dry_run)
        ssa.check_patch_options(content_type)
        for attempt in range(8):
            # First attempt from the watch cache (the CAS catches staleness), retries read the store.
            old = self._get_cached(kind, tenant, namespace, name) if attempt == 0 else None
            if old is None:
                old = await self.get_fresh(kind, tenant, namespace, name)
            if old is None:
                raise self._not_found(kind, name)
            base = old
            if subresource == "scale":
                base = scale_of(kind, old)
            patched = _apply(content_type, base, patch)
            if subresource == "scale":
                return await self.update_scale(kind, tenant, namespace, name, patched, old, dry_run)
            pinned = (
                isinstance(patched.get("metadata"), dict)
                and patched["metadata"].get("resourceVersion") != old["metadata"]["resourceVersion"]
            )
            try:
                return await self.update(
                    kind, tenant, namespace, name, patched, subresource, old=old, dry_run=dry_run
                )
            except APIError as e:
                if e.code == 409 and e.reason == "Conflict" and not pinned and attempt < 7:
                    await asyncio.sleep(0.005 * (attempt + 1))
                    continue
                raise
        raise st.conflict(kind.plural, name, kind.group)

    async def delete(
        self,
        kind: Kind,
        tenant: str,
        namespace: str | None,
        name: str,
        options: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Delete (or start deleting). Returns (object, gone_now).

        With ``options["dryRun"]`` nothing is written: the answer is what the delete would
        return (the object marked deleting, or the object that would be gone).
        """
        options = options or {}
        dry_run = bool(options.get("dryRun"))
        pre = options.get("preconditions") or {}
        for attempt in range(8):
            old = self._get_cached(kind, tenant, namespace, name) if attempt == 0 and not pre else None
            if old is None:
                old = await self.get_fresh(kind, tenant, namespace, name)
            if old is None:
                raise self._not_found(kind, name)
            md = old["metadata"]
            if pre.get("uid") and pre["uid"] != md["uid"]:
                raise APIError(
                    409,
                    f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {md['uid']}",
                    "Conflict",
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != md["resourceVersion"]:
                raise st.conflict(kind.plural, name, kind.group)
            await self._admit("delete", kind, old, old)
            new = copy.deepcopy(old)
            nmd = new["metadata"]
            policy = options.get("propagationPolicy")
            if options.get("orphanDependents") is True:
                policy = "Orphan"
            finalizers = list(nmd.get("finalizers") or [])
            if (
                policy == "Foreground"
                and "foregroundDeletion" not in finalizers
                and not nmd.get("deletionTimestamp")
            ):
                finalizers.append("foregroundDeletion")
            if policy == "Orphan" and "orphan" not in finalizers and not nmd.get("deletionTimestamp"):
                finalizers.append("orphan")
            plan = strategy_for(kind).on_delete(new, options.get("gracePeriodSeconds"))
            expected = int(md["resourceVersion"])
            key = self.key(kind, tenant, namespace, name)
            try:
                if finalizers or plan.graceful:
                    if nmd.get("deletionTimestamp"):
                        return self._finish(kind, old, tenant, namespace), False  # already deleting
                    nmd["deletionTimestamp"] = meta.now_rfc3339()
                    if plan.grace_seconds is not None:
                        nmd["deletionGracePeriodSeconds"] = plan.grace_seconds
                    nmd["finalizers"] = finalizers
                    if dry_run:
                        return self._finish(kind, new, tenant, namespace), False
                    kv = await self.store.update(key, encode(new), expected)
                    nmd["resourceVersion"] = str(kv.mod_revision)
                    return self._finish(kind, new, tenant, namespace), False
                if not dry_run:
                    await self.store.delete(key, expected)
                return self._finish(kind, old, tenant, namespace), True
            except ConflictError:
                await asyncio.sleep(0.005 * (attempt + 1))
                continue
            except KeyNotFoundError:
                raise self._not_found(kind, name) from None
        raise st.conflict(kind.plural, name, kind.group)

    # ------------------------------------------------------------------ subresources
    async def bind(
        self, tenant: str, namespace: str, name: str, binding: dict[str, Any], dry_run: bool = False
    ) -> None:
        kind = kinds.by_resource("v1", "pods")
        assert kind is not None
        target = binding.get("target")
        target = target.get("name") if isinstance(target, dict) else None
        if not target or not isinstance(target, str):
            raise st.invalid("Binding", name, [validation.Cause("target.name", "Required value")])
        old = await self.get_fresh(kind, tenant, namespace, name)
        if old is None:
            raise self._not_found(kind, name)
        if (old.get("spec") or {}).get("nodeName"):
            raise APIError(
                409, f"pod {name} is already assigned to node {old['spec']['nodeName']!r}", "Conflict"
            )
        if old["metadata"].get("deletionTimestamp"):
            raise APIError(409, f"pod {name} is being deleted, cannot be assigned to a host", "Conflict")
        new = copy.deepcopy(old)
        new["spec"]["nodeName"] = target
        conds = [
            c
            for c in (new.setdefault("status", {}).get("conditions") or [])
            if c.get("type") != "PodScheduled"
        ]
        conds.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": meta.now_rfc3339()})
        new["status"]["conditions"] = conds
        if dry_run:
            return
        try:
            await self.store.update(
                self.key(kind, tenant, namespace, name), encode(new), int(old["metadata"]["resourceVersion"])
            )
        except ConflictError:
            raise st.conflict("pods", name) from None

    async def update_scale(
        self,
        kind: Kind,
        tenant: str,
        namespace: str | None,
        name: str,
        scale: dict[str, Any],
        old: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        spec = scale.get("spec")
        replicas = spec.get("replicas") if isinstance(spec, dict) else None
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise st.invalid(
                "Scale",
                name,
                [
                    validation.Cause(
                        "spec.replicas", f"Invalid value: {replicas!r}: must be a non-negative integer"
                    )
                ],
                "autoscaling",
            )
        if old is None:
            old = await self.get_fresh(kind, tenant, namespace, name)
            if old is None:
                raise self._not_found(kind, name)
        smd = scale.get("metadata")
        rv = smd.get("resourceVersion") if isinstance(smd, dict) else None
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise st.conflict(kind.plural, name, kind.group)
        new = copy.deepcopy(old)
        new["spec"]["replicas"] = replicas
        out = await self.update(kind, tenant, namespace, name, new, old=old, dry_run=dry_run)
        return scale_of(kind, out)


def _apply(content_type: str, base: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply a patch to a copy of ``base``; a patch that cannot apply is a 4xx, whatever it holds."""
    if isinstance(patch, dict) and patch.get("$patch") == "delete":
        raise st.invalid(
            base.get("kind", ""),
            base.get("metadata", {}).get("name", ""),
            [
                validation.Cause(
                    "$patch", 'Unsupported value: "delete": a patch cannot delete the whole object'
                )
            ],
        )
    try:
        patched = apply_patch(content_type, copy.deepcopy(base), patch)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, AssertionError) as e:
        raise APIError(422, f"the patch could not be applied: {type(e).__name__}: {e}", "Invalid") from None
    if not isinstance(patched, dict):
        raise APIError(422, "the patch did not produce an object", "Invalid")
    return patched
