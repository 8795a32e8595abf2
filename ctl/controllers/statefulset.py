"""StatefulSet controller: pods with stable names, stable storage and ordered updates.

Pod ``NAME-i`` (``i`` in ``0..replicas-1``) gets ``spec.hostname: NAME-i`` and
``spec.subdomain: serviceName``, the labels ``statefulset.kubernetes.io/pod-name`` and
``apps.kubernetes.io/pod-index``, and for every ``volumeClaimTemplates`` entry ``T`` a
volume ``T`` backed by the PersistentVolumeClaim ``T-NAME-i``. Claims are created before
their pod and, by default (``persistentVolumeClaimRetentionPolicy`` ``whenScaled`` and
``whenDeleted: Retain``), never deleted, so a pod that is deleted, rescheduled or scaled
away and back finds its claim again. ``whenDeleted: Delete`` makes the set an owner of its
claims and ``whenScaled: Delete`` makes a pod being scaled away the owner of its claims, so
the garbage collector deletes them with the set or after the pod, as in Kubernetes.

``podManagementPolicy: OrderedReady`` creates ``NAME-i`` only once ``NAME-0..i-1`` are
Running and Ready and removes surplus pods one at a time from the highest ordinal, only
while every other pod is healthy; ``Parallel`` creates and deletes without waiting.

Updates are revisions (:mod:`ctl.controllers.revisions`); a pod's
``controller-revision-hash`` label is its revision's name. ``RollingUpdate`` deletes, one
at a time from the highest ordinal down to ``partition``, a pod not at the update
revision once all pods are Running and Ready; the pod comes back at the update revision
(ordinals below ``partition`` come back at the current revision). ``OnDelete`` replaces
nothing itself: a pod the user deleted comes back at the update revision. Once every pod
is updated, ``currentRevision`` becomes ``updateRevision``.

Status: replicas, readyReplicas, availableReplicas, currentReplicas, updatedReplicas,
currentRevision, updateRevision, observedGeneration.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from ctl.client.aio import ApiError
from ctl.client.informer import SharedInformers
from ctl.controllers import revisions
from ctl.controllers.podutil import is_available, is_ready
from ctl.types import kinds, meta

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def ordinal_of(sts_name: str, pod: dict[str, Any]) -> int | None:
    m = re.fullmatch(re.escape(sts_name) + r"-(0|[1-9][0-9]*)", pod["metadata"].get("name", ""))
    return int(m.group(1)) if m else None


def claim_name(template: dict[str, Any], pod_name: str) -> str:
    return f"{(template.get('metadata') or {}).get('name')}-{pod_name}"


def _policy(sts: dict[str, Any], which: str) -> str:
    """``persistentVolumeClaimRetentionPolicy.whenDeleted|whenScaled`` (Retain by default)."""
    pol = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return str(pol.get(which) or "Retain")


def running_ready(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and is_ready(pod)


def _rev_label(pod: dict[str, Any]) -> str | None:
    return (pod["metadata"].get("labels") or {}).get(revisions.HASH_LABEL)


class StatefulSetController(revisions.RevisionedController):
    name = "statefulset"
    kind = "StatefulSet"
    plural = "statefulsets"

    def setup(self, informers: SharedInformers) -> None:
        super().setup(informers)
        self.claims = informers.get("persistentvolumeclaims")  # looked up by name, never listed

    # ------------------------------------------------------------------ sync
    async def sync(self, key: str) -> float | None:
        sts = self.owners.get_key(key)
        if sts is None:
            self.exp.delete(key)
            return None
        md = sts["metadata"]
        if md.get("deletionTimestamp"):
            return None
        got = await self.history(sts)
        if got is None:
            return 0.1
        update_rev = got[0]
        by_name = {r["metadata"]["name"]: r for r in self.revs.by_index("controller", md["uid"])}
        by_name[update_rev["metadata"]["name"]] = update_rev
        cur_name = (sts.get("status") or {}).get("currentRevision") or update_rev["metadata"]["name"]
        current_rev = by_name.get(cur_name, update_rev)
        pods, retry = await self.owned_pods(key, sts)
        if self.exp.satisfied(key):
            await self._manage(key, sts, pods, current_rev, update_rev)
        new, again = self._status(sts, pods, current_rev, update_rev)
        await self.finish(sts, pods, {current_rev["metadata"]["name"], update_rev["metadata"]["name"]}, new)
        if retry:
            again = 0.2 if again is None else min(again, 0.2)
        return again

    async def _manage(
        self,
        key: str,
        sts: dict[str, Any],
        pods: list[dict[str, Any]],
        current_rev: dict[str, Any],
        update_rev: dict[str, Any],
    ) -> None:
        spec = sts.get("spec") or {}
        name = sts["metadata"]["name"]
        replicas = int(spec.get("replicas", 1))
        parallel = spec.get("podManagementPolicy") == "Parallel"
        st = spec.get("updateStrategy") or {}
        rolling = st.get("type", "RollingUpdate") == "RollingUpdate"
        partition = int((st.get("rollingUpdate") or {}).get("partition") or 0) if rolling else 0
        slots: dict[int, dict[str, Any]] = {}
        condemned: list[tuple[int, dict[str, Any]]] = []
        for p in pods:
            i = ordinal_of(name, p)
            if i is None or i >= replicas:
                condemned.append((-1 if i is None else i, p))
            elif i not in slots or not p["metadata"].get("deletionTimestamp"):
                slots[i] = p
        # 1. missing, failed and unhealthy pods in ordinal order
        creates: list[int] = []
        deletes: list[dict[str, Any]] = []
        blocked = False
        for i in range(replicas):
            slot = slots.get(i)
            if slot is None:
                creates.append(i)
                if not parallel:
                    blocked = True
                    break
                continue
            if slot["metadata"].get("deletionTimestamp"):
                if not parallel:
                    blocked = True
                    break
                continue
            if (slot.get("status") or {}).get("phase") == "Failed":
                deletes.append(slot)
                if not parallel:
                    blocked = True
                    break
                continue
            await self._ensure_claims(sts, slot["metadata"]["name"])
            if not running_ready(slot) and not parallel:
                blocked = True
                break
        for i in creates:
            rev = update_rev if (not rolling or i >= partition) else current_rev
            if not await self._create_pod(key, sts, i, rev):
                return
        if deletes:
            await self.delete_pods(key, sts, deletes)
        if blocked or creates or deletes:
            return
        # 2. surplus pods, highest ordinal first
        if condemned:
            condemned.sort(key=lambda t: t[0], reverse=True)
            if parallel:
                doomed = [p for _, p in condemned if not p["metadata"].get("deletionTimestamp")]
            elif any(p["metadata"].get("deletionTimestamp") for _, p in condemned):
                doomed = []
            elif all(running_ready(slots[i]) for i in range(replicas)):
                doomed = [condemned[0][1]]
            else:
                doomed = []
            for p in doomed:
                await self._ensure_claims(sts, p["metadata"]["name"], condemned=p)
            await self.delete_pods(key, sts, doomed)
            return
        # 3. rolling update: one pod at a time, from the top down to the partition
        if not rolling:
            return
        if not all(running_ready(slots[i]) for i in range(replicas)):
            return
        target = update_rev["metadata"]["name"]
        for i in range(replicas - 1, partition - 1, -1):
            if _rev_label(slots[i]) != target:
                await self.delete_pods(key, sts, [slots[i]])
                return

    def _pod_for(self, sts: dict[str, Any], i: int, rev: dict[str, Any]) -> dict[str, Any]:
        smd, spec = sts["metadata"], sts.get("spec") or {}
        tpl = revisions.template_of(rev)
        tpl.pop("$patch", None)
        tmd = tpl.get("metadata") or {}
        pod_name = f"{smd['name']}-{i}"
        labels = dict(tmd.get("labels") or {})
        labels.update(
            {revisions.HASH_LABEL: rev["metadata"]["name"], POD_NAME_LABEL: pod_name, POD_INDEX_LABEL: str(i)}
        )
        md: dict[str, Any] = {
            "name": pod_name,
            "namespace": smd.get("namespace"),
            "labels": labels,
            "ownerReferences": [meta.owner_reference(sts)],
        }
        if tmd.get("annotations"):
            md["annotations"] = dict(tmd["annotations"])
        pspec = copy.deepcopy(tpl.get("spec") or {})
        pspec["hostname"] = pod_name
        if spec.get("serviceName"):
            pspec["subdomain"] = spec["serviceName"]
        vols = {v.get("name"): v for v in pspec.get("volumes") or [] if isinstance(v, dict)}
        for t in spec.get("volumeClaimTemplates") or []:
            vname = (t.get("metadata") or {}).get("name")
            vols[vname] = {"name": vname, "persistentVolumeClaim": {"claimName": claim_name(t, pod_name)}}
        if vols:
            pspec["volumes"] = list(vols.values())
        return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": pspec}

    async def _ensure_claims(
        self, sts: dict[str, Any], pod_name: str, condemned: dict[str, Any] | None = None
    ) -> None:
        """Create the pod's missing claims, and give them the owners the retention policy asks for.

        ``whenDeleted: Delete`` makes the set an owner of its claims (the garbage collector
        deletes them with the set); ``whenScaled: Delete`` makes the ``condemned`` pod (one
        being scaled away) their only owner of this set's, so they go when the pod has gone.
        """
        templates = (sts.get("spec") or {}).get("volumeClaimTemplates") or []
        if not templates or kinds.by_kind("v1", "PersistentVolumeClaim") is None:
            return
        smd = sts["metadata"]
        owners: list[dict[str, Any]] = []
        if condemned is not None and _policy(sts, "whenScaled") == "Delete":
            owners = [meta.owner_reference(condemned, controller=False, block=False)]
        elif _policy(sts, "whenDeleted") == "Delete":
            owners = [meta.owner_reference(sts, controller=False)]
        labels = dict(((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
        for t in templates:
            cname = claim_name(t, pod_name)
            pvc = self.claims.get_key(meta.sibling_key(sts, cname))
            if pvc is not None:
                await self._set_claim_owners(sts, pvc, pod_name, owners)
                continue
            if condemned is not None:
                continue  # a pod going away needs no new claim
            tmd = t.get("metadata") or {}
            body = {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {
                    "name": cname,
                    "namespace": smd.get("namespace"),
                    "labels": {**labels, **(tmd.get("labels") or {})},
                    **({"annotations": dict(tmd["annotations"])} if tmd.get("annotations") else {}),
                    **({"ownerReferences": owners} if owners else {}),
                },
                "spec": copy.deepcopy(t.get("spec") or {}),
            }
            try:
                await self.client.create(body, namespace=smd.get("namespace"), tenant=smd.get("tenant"))
                self.recorder.normal(
                    sts,
                    "SuccessfulCreate",
                    f"create Claim {cname} Pod {pod_name} in StatefulSet {smd['name']} success",
                )
            except ApiError as e:
                if e.code != 409:
                    self.recorder.warning(
                        sts, "FailedCreate", f"create Claim {cname} for Pod {pod_name} failed: {e}"
                    )
                    raise

    async def _set_claim_owners(
        self, sts: dict[str, Any], pvc: dict[str, Any], pod_name: str, owners: list[dict[str, Any]]
    ) -> None:
        """Make this set's and this pod's owner references of ``pvc`` exactly ``owners``."""
        md = pvc["metadata"]
        refs = md.get("ownerReferences") or []
        ours = [
            r
            for r in refs
            if r.get("uid") == sts["metadata"]["uid"]
            or (r.get("kind") == "Pod" and r.get("name") == pod_name)
        ]
        if {r.get("uid") for r in ours} == {r["uid"] for r in owners}:
            return
        keep = [r for r in refs if r not in ours]
        patch = {"metadata": {"ownerReferences": keep + owners, "resourceVersion": md["resourceVersion"]}}
        try:
            await self.client.patch(
                "persistentvolumeclaims",
                md["name"],
                patch,
                namespace=md.get("namespace"),
                tenant=md.get("tenant"),
            )
        except ApiError as e:
            if e.code not in (404, 409):
                raise

    async def _create_pod(self, key: str, sts: dict[str, Any], i: int, rev: dict[str, Any]) -> bool:
        smd = sts["metadata"]
        pod = self._pod_for(sts, i, rev)
        await self._ensure_claims(sts, pod["metadata"]["name"])
        self.exp.expect_creations(key, 1)
        try:
            await self.client.create(pod, namespace=smd.get("namespace"), tenant=smd.get("tenant"))
        except ApiError as e:
            self.exp.creation_observed(key)
            if e.code == 409:
                return True  # a pod of that name is still going away
            self.recorder.warning(
                sts,
                "FailedCreate",
                f"create Pod {pod['metadata']['name']} in StatefulSet {smd['name']} failed: {e}",
            )
            return False
        self.recorder.normal(
            sts,
            "SuccessfulCreate",
            f"create Pod {pod['metadata']['name']} in StatefulSet {smd['name']} successful",
        )
        return True

    # ------------------------------------------------------------------ status
    def _status(
        self,
        sts: dict[str, Any],
        pods: list[dict[str, Any]],
        current_rev: dict[str, Any],
        update_rev: dict[str, Any],
    ) -> tuple[dict[str, Any], float | None]:
        """The new status and, while pods are ready but not yet available, when to look again."""
        spec = sts.get("spec") or {}
        mrs = int(spec.get("minReadySeconds") or 0)
        replicas = int(spec.get("replicas", 1))
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        cur, upd = current_rev["metadata"]["name"], update_rev["metadata"]["name"]
        ready = [p for p in live if is_ready(p)]
        new: dict[str, Any] = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(live),
            "readyReplicas": len(ready),
            "availableReplicas": sum(1 for p in ready if is_available(p, mrs)),
            "currentReplicas": sum(1 for p in live if _rev_label(p) == cur),
            "updatedReplicas": sum(1 for p in live if _rev_label(p) == upd),
            "currentRevision": cur,
            "updateRevision": upd,
        }
        if new["updatedReplicas"] >= replicas and len(live) == replicas and len(ready) == replicas:
            new["currentRevision"] = upd
            new["currentReplicas"] = new["updatedReplicas"]
        return new, (float(mrs) if mrs and new["availableReplicas"] < len(ready) else None)
