"""ReplicaSet controller: keep ``spec.replicas`` pods of the template running.

For each ReplicaSet it claims the active pods of its namespace (adopting matching
orphans, releasing pods that stopped matching), then creates pods from the template
(``generateName: NAME-``, a controller ownerReference with ``blockOwnerDeletion``) or
deletes the surplus, unscheduled / pending / not-ready pods first, as Kubernetes does.
Creations go out in slow-start batches (1, 2, 4, ...) and stop at the first failure;
after a failed create (a quota that does not fit, an admission refusal) the ReplicaSet is
not tried again before an exponential back-off (:data:`BACKOFF_BASE` doubling up to
:data:`BACKOFF_MAX`, reset by a create that succeeds or a change of the ReplicaSet's spec),
whatever events arrive meanwhile, so a refused template costs a few requests and Events
a minute instead of hundreds a second.
:class:`~ctl.controllers.ownership.Expectations` keep it from acting twice on the same
change while its watch lags. Pods with a ``deletionTimestamp`` or in a terminal phase
do not count.

It then writes ``status``: replicas, fullyLabeledReplicas, readyReplicas,
availableReplicas (ready for ``minReadySeconds``) and observedGeneration.
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

from ctl.client.aio import ApiError
from ctl.client.informer import SharedInformers, by_controller, by_namespace
from ctl.controllers.base import Controller, split_key
from ctl.controllers.ownership import Expectations, claim, delete_owned_pod
from ctl.controllers.podutil import deletion_rank, is_active, is_available, is_ready, selector_of
from ctl.types import meta
from ctl.types.meta import object_key

BURST = 500
BACKOFF_BASE = 1.0  # seconds before the first retry after a failed create
BACKOFF_MAX = 60.0


class ReplicaSetController(Controller):
    name = "replicaset"

    def setup(self, informers: SharedInformers) -> None:
        self.rs = informers.get("replicasets")
        self.primary = self.rs
        self.pods = informers.get("pods")
        self.rs.add_index("ns", by_namespace)
        self.pods.add_index("ns", by_namespace)
        self.pods.add_index("controller", by_controller)
        self.exp = Expectations()
        # key -> (consecutive failed creates, monotonic time before which no create is tried,
        # the error, the generation it happened at)
        self.backoff: dict[str, tuple[int, float, str, Any]] = {}
        self.rs.add_handler(self._on_rs)
        self.pods.add_handler(self._on_pod)

    # ------------------------------------------------------------------ events
    def _on_rs(self, typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        if typ == "DELETED":
            self.exp.delete(object_key(obj))
            self.backoff.pop(object_key(obj), None)
        self.enqueue(obj)

    def _rs_for_ref(self, pod: dict[str, Any], ref: dict[str, Any] | None) -> dict[str, Any] | None:
        if ref is None or ref.get("kind") != "ReplicaSet":
            return None
        rs = self.rs.get_key(meta.sibling_key(pod, ref["name"]))
        if rs is None or rs["metadata"]["uid"] != ref.get("uid"):
            return None
        return rs

    def _matching_rs(self, pod: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        labels = pod["metadata"].get("labels") or {}
        for rs in self.rs.by_index("ns", by_namespace(pod)[0]):
            sel = selector_of(rs)
            if sel is not None and sel.matches(labels):
                out.append(rs)
        return out

    def _on_pod(self, typ: str, pod: dict[str, Any], old: dict[str, Any] | None) -> None:
        pkey = object_key(pod)
        ref = meta.controller_of(pod)
        rs = self._rs_for_ref(pod, ref)
        if typ == "ADDED":
            if rs is not None:
                k = object_key(rs)
                if pod["metadata"].get("deletionTimestamp"):
                    self.exp.deletion_observed(k, pkey)
                else:
                    self.exp.creation_observed(k)
                self.enqueue(rs)
            elif ref is None:
                for r in self._matching_rs(pod):
                    self.enqueue(r)
            return
        if typ == "DELETED":
            if rs is not None:
                self.exp.deletion_observed(object_key(rs), pkey)
                self.enqueue(rs)
            return
        # MODIFIED
        old = old or pod
        if (
            pod["metadata"].get("deletionTimestamp")
            and not old["metadata"].get("deletionTimestamp")
            and rs is not None
        ):
            self.exp.deletion_observed(object_key(rs), pkey)
        old_ref = meta.controller_of(old)
        if (old_ref or {}).get("uid") != (ref or {}).get("uid"):
            old_rs = self._rs_for_ref(old, old_ref)
            if old_rs is not None:
                self.enqueue(old_rs)
        if rs is not None:
            self.enqueue(rs)
            mrs = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
            if mrs > 0 and is_ready(pod) and not is_ready(old):
                self.queue.add_after(object_key(rs), mrs + 0.5)
        elif ref is None and (
            pod["metadata"].get("labels") != old["metadata"].get("labels") or old_ref is not None
        ):
            for r in self._matching_rs(pod):
                self.enqueue(r)

    # ------------------------------------------------------------------ sync
    async def sync(self, key: str) -> float | None:
        rs = self.rs.get_key(key)
        if rs is None:
            self.exp.delete(key)
            self.backoff.pop(key, None)
            return None
        needs_sync = self.exp.satisfied(key)
        tenant, namespace, _ = split_key(key)
        uid = rs["metadata"]["uid"]
        candidates = [p for p in self.pods.by_index("ns", f"{tenant}/{namespace}") if is_active(p)]
        owned, retry = await claim(self.client, rs, "replicasets", "pods", candidates, selector_of(rs))
        manage_error: str | None = None
        wait: float | None = None
        if needs_sync and not rs["metadata"].get("deletionTimestamp"):
            manage_error, wait = await self._manage_with_backoff(key, rs, owned)
        again = await self._update_status(rs, owned, manage_error)
        if wait is not None:
            again = wait if again is None else min(again, wait)
        if retry:
            again = 0.2 if again is None else min(again, 0.2)
        del uid
        return again

    async def _manage_with_backoff(
        self, key: str, rs: dict[str, Any], pods: list[dict[str, Any]]
    ) -> tuple[str | None, float | None]:
        """:meth:`_manage`, unless a failed create is still backing off: (error, seconds until the next try)."""
        gen = rs["metadata"].get("generation")
        failures, not_before, last_err, at_gen = self.backoff.get(key, (0, 0.0, "", gen))
        if at_gen != gen:  # the spec changed: the new template deserves a try at once
            failures, not_before = 0, 0.0
        now = time.monotonic()
        if failures and now < not_before:
            return last_err, not_before - now
        err = await self._manage(key, rs, pods)
        if err is None or "being terminated" in err:
            self.backoff.pop(key, None)
            return err, None
        delay = min(BACKOFF_BASE * 2**failures, BACKOFF_MAX)
        self.backoff[key] = (failures + 1, now + delay, err, gen)
        return err, delay

    async def _manage(self, key: str, rs: dict[str, Any], pods: list[dict[str, Any]]) -> str | None:
        want = int((rs.get("spec") or {}).get("replicas", 1))
        diff = len(pods) - want
        if diff < 0:
            n = min(-diff, BURST)
            self.exp.expect_creations(key, n)
            created, err = await self._create_pods(rs, n)
            for _ in range(n - created):
                self.exp.creation_observed(key)
            return err
        if diff > 0:
            n = min(diff, BURST)
            victims = sorted(pods, key=deletion_rank)[:n]
            self.exp.expect_deletions(key, [object_key(p) for p in victims])
            errs = await asyncio.gather(*(self._delete_pod(key, rs, p) for p in victims))
            return next((e for e in errs if e), None)
        return None

    def _pod_from_template(self, rs: dict[str, Any]) -> dict[str, Any]:
        tpl = (rs.get("spec") or {}).get("template") or {}
        tmd = tpl.get("metadata") or {}
        md: dict[str, Any] = {
            "generateName": rs["metadata"]["name"] + "-",
            "namespace": rs["metadata"].get("namespace"),
            "labels": dict(tmd.get("labels") or {}),
            "ownerReferences": [meta.owner_reference(rs)],
        }
        if tmd.get("annotations"):
            md["annotations"] = dict(tmd["annotations"])
        if tmd.get("finalizers"):
            md["finalizers"] = list(tmd["finalizers"])
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": md,
            "spec": copy.deepcopy(tpl.get("spec") or {}),
        }

    async def _create_pods(self, rs: dict[str, Any], n: int) -> tuple[int, str | None]:
        md = rs["metadata"]
        done = 0
        batch = 1
        while done < n:
            size = min(batch, n - done)
            results = await asyncio.gather(
                *(
                    self.client.create(
                        self._pod_from_template(rs), namespace=md.get("namespace"), tenant=md.get("tenant")
                    )
                    for _ in range(size)
                ),
                return_exceptions=True,
            )
            err: str | None = None
            for r in results:
                if isinstance(r, BaseException):
                    if isinstance(r, asyncio.CancelledError):
                        raise r
                    err = str(r)
                    self.recorder.warning(rs, "FailedCreate", f"Error creating: {r}")
                else:
                    done += 1
                    self.recorder.normal(rs, "SuccessfulCreate", f"Created pod: {r['metadata']['name']}")
            if err is not None:
                # The pods that failed or were never tried are not coming.
                if "being terminated" in err:
                    return done, None  # the namespace controller is emptying this namespace
                self.log.warning("replicaset %s/%s: create failed: %s", md.get("namespace"), md["name"], err)
                return done, err
            batch *= 2
        return done, None

    async def _delete_pod(self, key: str, rs: dict[str, Any], pod: dict[str, Any]) -> str | None:
        err = await delete_owned_pod(self.client, self.exp, self.recorder, key, rs, pod)
        return None if err is None else str(err)

    # ------------------------------------------------------------------ status
    async def _update_status(
        self, rs: dict[str, Any], pods: list[dict[str, Any]], manage_error: str | None
    ) -> float | None:
        spec = rs.get("spec") or {}
        mrs = int(spec.get("minReadySeconds") or 0)
        tpl_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        ready = [p for p in pods if is_ready(p)]
        available = [p for p in ready if is_available(p, mrs)]
        old = rs.get("status") or {}
        new: dict[str, Any] = {
            "replicas": len(pods),
            "fullyLabeledReplicas": sum(
                1
                for p in pods
                if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in tpl_labels.items())
            ),
            "readyReplicas": len(ready),
            "availableReplicas": len(available),
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        conds = [c for c in old.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
        if manage_error:
            prev = next((c for c in old.get("conditions") or [] if c.get("type") == "ReplicaFailure"), None)
            conds.append(
                {
                    "type": "ReplicaFailure",
                    "status": "True",
                    "reason": "FailedCreate",
                    "message": manage_error[:500],
                    "lastTransitionTime": (prev or {}).get("lastTransitionTime") or meta.now_rfc3339(),
                }
            )
        if conds:
            new["conditions"] = conds
        again = float(mrs) if mrs and len(available) < len(ready) else None
        if {k: old.get(k) for k in new} == new and ("conditions" in new or not old.get("conditions")):
            return again
        body = copy.deepcopy(rs)
        body["status"] = new
        try:
            await self.client.update(body, "status")
        except ApiError as e:
            if e.code == 404:
                return None
            if e.code != 409:
                raise
            md = rs["metadata"]
            try:
                fresh = await self.client.get(
                    "replicasets", md["name"], namespace=md.get("namespace"), tenant=md.get("tenant")
                )
                if fresh["metadata"]["uid"] != md["uid"]:
                    return None
                fresh["status"] = new
                await self.client.update(fresh, "status")
            except ApiError as e2:
                if e2.code == 404:
                    return None
                raise
        return again
