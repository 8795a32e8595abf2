"""ControllerRevision history shared by the DaemonSet and StatefulSet controllers.

A ControllerRevision is an immutable snapshot of an owner's pod template, as Kubernetes'
``history`` package keeps them: ``data`` is ``{"spec": {"template": T, "$patch": "replace"}}``,
``revision`` a number increasing per owner, the name ``OWNER-HASH`` with ``HASH`` a stable
hash of the template (:func:`~ctl.controllers.deployment.util.template_hash`), and the
label ``controller-revision-hash: HASH``. The owner's pods carry the same label, which is
how a controller tells updated pods from old ones.

:func:`sync_history` finds or creates the revision of the owner's current template; going
back to an older template (``rollout undo``) renumbers that revision to the newest number
instead of creating a duplicate. :func:`truncate` deletes the oldest revisions no live pod
uses beyond ``revisionHistoryLimit``. :func:`template_of` is what ``rollout undo`` restores.
:func:`write_status` is the status write (re-read once on a conflict) both controllers share,
and :class:`RevisionedController` the rest of what they share (informers, pod events with
expectations, claiming, history, deleting pods).
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from ctl.client import Client
from ctl.client.aio import ApiError
from ctl.client.informer import SharedInformers, by_controller, by_namespace
from ctl.controllers.base import Controller
from ctl.controllers.deployment.util import template_hash
from ctl.controllers.ownership import Expectations, claim, delete_owned_pod
from ctl.controllers.podutil import is_ready, selector_of
from ctl.types import meta
from ctl.types.meta import object_key
from ctl.types.revisions import (
    HASH_LABEL,
    KIND,
    clean_template,
    revision_number,
    sorted_history,
    template_of,
)


def owner_template(owner: dict[str, Any]) -> dict[str, Any]:
    return clean_template((owner.get("spec") or {}).get("template") or {})


def revision_hash(owner: dict[str, Any]) -> str:
    collision = (owner.get("status") or {}).get("collisionCount")
    return template_hash(owner_template(owner), collision)


def _new_revision(owner: dict[str, Any], h: str, number: int) -> dict[str, Any]:
    md = owner["metadata"]
    labels = dict(((owner.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
    labels[HASH_LABEL] = h
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": f"{md['name']}-{h}",
            "namespace": md.get("namespace"),
            "labels": labels,
            "ownerReferences": [meta.owner_reference(owner)],
        },
        "data": {"spec": {"template": {**owner_template(owner), "$patch": "replace"}}},
        "revision": number,
    }


async def sync_history(
    client: Client, owner: dict[str, Any], revisions: list[dict[str, Any]]
) -> tuple[dict[str, Any], str]:
    """(the revision of the owner's current template, its hash), creating or renumbering it."""
    md = owner["metadata"]
    h = revision_hash(owner)
    tpl = owner_template(owner)
    history = sorted_history(revisions)
    top = revision_number(history[-1]) if history else 0
    for rev in history:
        rt = template_of(rev)
        rt.pop("$patch", None)
        if clean_template(rt) == tpl:
            if rev is not history[-1] and revision_number(rev) <= top:
                body = copy.deepcopy(rev)
                body["revision"] = top + 1
                try:
                    rev = await client.update(body)
                except ApiError as e:
                    if e.code != 404:
                        raise
            return rev, (rev["metadata"].get("labels") or {}).get(HASH_LABEL, h)
    body = _new_revision(owner, h, top + 1)
    try:
        return await client.create(body, namespace=md.get("namespace"), tenant=md.get("tenant")), h
    except ApiError as e:
        if e.code != 409:
            raise
    # A revision of that name exists: ours (a lagging cache) or a hash collision.
    existing = await client.get(
        KIND, body["metadata"]["name"], namespace=md.get("namespace"), tenant=md.get("tenant")
    )
    et = template_of(existing)
    et.pop("$patch", None)
    ref = meta.controller_of(existing) or {}
    if ref.get("uid") == md["uid"] and clean_template(et) == tpl:
        return existing, h
    raise Collision(body["metadata"]["name"])


class Collision(Exception):
    """A different template hashed to an existing revision's name: bump ``status.collisionCount``."""


async def truncate(
    client: Client,
    owner: dict[str, Any],
    revisions: list[dict[str, Any]],
    live_hashes: set[str],
    keep: set[str],
) -> None:
    """Delete the oldest revisions beyond ``revisionHistoryLimit`` that no live pod uses."""
    limit = (owner.get("spec") or {}).get("revisionHistoryLimit")
    limit = 10 if limit is None else int(limit)
    old = [
        r
        for r in sorted_history(revisions)
        if (r["metadata"].get("labels") or {}).get(HASH_LABEL) not in live_hashes
        and r["metadata"]["name"] not in keep
    ]
    for r in old[: max(0, len(old) - limit)]:
        rmd = r["metadata"]
        try:
            await client.delete(KIND, rmd["name"], namespace=rmd.get("namespace"), tenant=rmd.get("tenant"))
        except ApiError as e:
            if e.code != 404:
                raise


async def write_status(client: Client, obj: dict[str, Any], plural: str, new: dict[str, Any]) -> None:
    """Write ``status`` (fields of ``new`` over the old ones), re-reading once on a conflict."""
    body = copy.deepcopy(obj)
    body["status"] = {**(obj.get("status") or {}), **new}
    try:
        await client.update(body, "status")
        return
    except ApiError as e:
        if e.code == 404:
            return
        if e.code != 409:
            raise
    md = obj["metadata"]
    try:
        fresh = await client.get(plural, md["name"], namespace=md.get("namespace"), tenant=md.get("tenant"))
        if fresh["metadata"]["uid"] != md["uid"]:
            return
        fresh["status"] = {**(fresh.get("status") or {}), **new}
        await client.update(fresh, "status")
    except ApiError as e2:
        if e2.code not in (404, 409):
            raise


class RevisionedController(Controller):
    """What the DaemonSet and StatefulSet controllers share: their informers and indexes,
    the pod event handling with :class:`~ctl.controllers.ownership.Expectations`, claiming
    pods, the revision history, deleting pods and writing status.

    A subclass names its ``kind`` and ``plural`` and implements ``sync``.
    """

    kind = ""
    plural = ""

    def setup(self, informers: SharedInformers) -> None:
        self.owners = informers.get(self.plural)
        self.primary = self.owners
        self.pods = informers.get("pods")
        self.revs = informers.get(KIND)
        self.owners.add_index("ns", by_namespace)
        self.pods.add_index("ns", by_namespace)
        self.pods.add_index("controller", by_controller)
        self.revs.add_index("controller", by_controller)
        self.exp = Expectations()
        self.owners.add_handler(self._on_owner)
        self.pods.add_handler(self._on_pod)

    def _on_owner(self, typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        if typ == "DELETED":
            self.exp.delete(object_key(obj))
        self.enqueue(obj)

    def _owner_of(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        ref = meta.controller_of(pod)
        if ref is None or ref.get("kind") != self.kind:
            return None
        owner = self.owners.get_key(meta.sibling_key(pod, ref["name"]))
        if owner is None or owner["metadata"]["uid"] != ref.get("uid"):
            return None
        return owner

    def _on_pod(self, typ: str, pod: dict[str, Any], old: dict[str, Any] | None) -> None:
        owner = self._owner_of(pod)
        if owner is None:
            if meta.controller_of(pod) is None and typ != "DELETED":  # an orphan to adopt?
                labels = pod["metadata"].get("labels") or {}
                for o in self.owners.by_index("ns", by_namespace(pod)[0]):
                    sel = selector_of(o)
                    if sel is not None and sel.matches(labels):
                        self.enqueue(o)
            return
        k, pkey = object_key(owner), object_key(pod)
        if typ == "ADDED":
            if pod["metadata"].get("deletionTimestamp"):
                self.exp.deletion_observed(k, pkey)
            else:
                self.exp.creation_observed(k)
        elif typ == "DELETED" or (
            pod["metadata"].get("deletionTimestamp")
            and not (old or {}).get("metadata", {}).get("deletionTimestamp")
        ):
            self.exp.deletion_observed(k, pkey)
        self.enqueue(owner)
        mrs = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
        if mrs and typ == "MODIFIED" and is_ready(pod) and not is_ready(old or pod):
            self.queue.add_after(k, mrs + 0.5)

    async def history(self, owner: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
        """:func:`sync_history` for the owner; None after a hash collision (bumped: sync again)."""
        try:
            return await sync_history(
                self.client, owner, self.revs.by_index("controller", owner["metadata"]["uid"])
            )
        except Collision:
            st = dict(owner.get("status") or {})
            await write_status(
                self.client, owner, self.plural, {"collisionCount": int(st.get("collisionCount") or 0) + 1}
            )
            return None

    async def owned_pods(self, key: str, owner: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """(the owner's pods after adoption/release, terminating ones included; retry needed)."""
        tenant, namespace, _ = key.split("/", 2)
        candidates = [
            p
            for p in self.pods.by_index("ns", f"{tenant}/{namespace}")
            if not p["metadata"].get("deletionTimestamp")
        ]
        owned, retry = await claim(self.client, owner, self.plural, "pods", candidates, selector_of(owner))
        uid = owner["metadata"]["uid"]
        going = [p for p in self.pods.by_index("controller", uid) if p["metadata"].get("deletionTimestamp")]
        return owned + going, retry

    async def delete_pods(self, key: str, owner: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        if not pods:
            return
        self.exp.expect_deletions(key, [object_key(p) for p in pods])

        await asyncio.gather(
            *(delete_owned_pod(self.client, self.exp, self.recorder, key, owner, p) for p in pods)
        )

    async def finish(
        self, owner: dict[str, Any], pods: list[dict[str, Any]], keep: set[str], new_status: dict[str, Any]
    ) -> None:
        """Truncate the history (keeping ``keep`` and the revisions live pods use), write status."""
        live = {(p["metadata"].get("labels") or {}).get(HASH_LABEL) for p in pods}
        revs = self.revs.by_index("controller", owner["metadata"]["uid"])
        await truncate(self.client, owner, revs, {x for x in live if x}, keep | {x for x in live if x})
        old = owner.get("status") or {}
        if {k: old.get(k) for k in new_status} != new_status:
            await write_status(self.client, owner, self.plural, new_status)
