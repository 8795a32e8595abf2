"""Adoption and release (client-go's ControllerRefManager) and creation/deletion expectations.

A controller *claims* the objects it selects: objects it already controls stay its own
while its selector matches them and are *released* (its ownerReference removed) when
they no longer match; orphans (no controller reference) that match are *adopted* (an
ownerReference with ``controller: true`` and ``blockOwnerDeletion: true`` is added). An
owner that is being deleted adopts nothing, and adoption first re-reads the owner from
the API so a stale cache never adopts for an owner that was deleted and re-created.

:class:`Expectations` remembers how many creations and which deletions a controller has
asked for and not yet seen in its watch: while they are outstanding the controller does
not act again on that owner, so a lagging watch never makes it create twice.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from ctl.client import Client
from ctl.client.aio import ApiError
from ctl.client.events import EventRecorder
from ctl.types import meta
from ctl.types.meta import object_key
from ctl.types.selectors import LabelSelector


async def _set_owner_refs(
    client: Client, kind: str, obj: dict[str, Any], refs: list[dict[str, Any]]
) -> dict[str, Any] | None:
    md = obj["metadata"]
    patch = {
        "metadata": {"ownerReferences": refs, "resourceVersion": md["resourceVersion"], "uid": md["uid"]}
    }
    try:
        return await client.patch(
            kind, md["name"], patch, namespace=md.get("namespace"), tenant=md.get("tenant")
        )
    except ApiError as e:
        if e.code in (404, 409):
            return None
        raise


async def claim(
    client: Client,
    owner: dict[str, Any],
    owner_kind: str,
    child_kind: str,
    candidates: list[dict[str, Any]],
    selector: LabelSelector | None,
) -> tuple[list[dict[str, Any]], bool]:
    """Returns (owned objects, whether some adoption/release lost a race and needs a retry)."""
    omd = owner["metadata"]
    uid = omd["uid"]
    deleting = bool(omd.get("deletionTimestamp"))
    owned: list[dict[str, Any]] = []
    retry = False
    can_adopt: bool | None = None
    for obj in candidates:
        md = obj["metadata"]
        ref = meta.controller_of(obj)
        labels = md.get("labels") or {}
        matches = selector is not None and selector.matches(labels)
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches or deleting:
                owned.append(obj)
                continue
            if md.get("deletionTimestamp"):
                continue
            refs = [r for r in md.get("ownerReferences") or [] if r.get("uid") != uid]
            if await _set_owner_refs(client, child_kind, obj, refs) is None:
                retry = True
            continue
        if not matches or deleting or md.get("deletionTimestamp"):
            continue
        if can_adopt is None:
            try:
                fresh = await client.get(
                    owner_kind, omd["name"], namespace=omd.get("namespace"), tenant=omd.get("tenant")
                )
                can_adopt = fresh["metadata"]["uid"] == uid and not fresh["metadata"].get("deletionTimestamp")
            except ApiError as e:
                if e.code != 404:
                    raise
                can_adopt = False
        if not can_adopt:
            continue
        refs = [*(md.get("ownerReferences") or []), meta.owner_reference(owner)]
        new = await _set_owner_refs(client, child_kind, obj, refs)
        if new is None:
            retry = True
        else:
            owned.append(new)
    return owned, retry


class Expectations:
    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._e: dict[str, tuple[int, set[str], float]] = {}

    def satisfied(self, key: str) -> bool:
        e = self._e.get(key)
        if e is None:
            return True
        adds, dels, ts = e
        if adds <= 0 and not dels:
            return True
        return time.monotonic() - ts > self.ttl

    def expect_creations(self, key: str, n: int) -> None:
        self._e[key] = (n, set(), time.monotonic())

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        self._e[key] = (0, set(pod_keys), time.monotonic())

    def creation_observed(self, key: str) -> None:
        e = self._e.get(key)
        if e is not None:
            self._e[key] = (e[0] - 1, e[1], e[2])

    def deletion_observed(self, key: str, pod_key: str) -> None:
        e = self._e.get(key)
        if e is not None:
            e[1].discard(pod_key)

    def delete(self, key: str) -> None:
        self._e.pop(key, None)


def clone(obj: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(obj)


async def delete_owned_pod(
    client: Client,
    exp: Expectations,
    recorder: EventRecorder,
    key: str,
    owner: dict[str, Any],
    pod: dict[str, Any],
) -> ApiError | None:
    """Delete one pod of ``owner`` (uid precondition), as client-go's PodControl does.

    The caller already expected the deletion under ``key``; when the delete fails the
    expectation is marked observed (the watch will not deliver it). A pod already gone is not
    an error; another failure is a FailedDelete Warning on the owner and is returned.
    Success is a SuccessfulDelete Event.
    """
    pmd = pod["metadata"]
    try:
        await client.delete(
            "pods",
            pmd["name"],
            namespace=pmd.get("namespace"),
            tenant=pmd.get("tenant"),
            preconditions={"uid": pmd["uid"]},
        )
    except ApiError as e:
        exp.deletion_observed(key, object_key(pod))
        if e.code == 404:
            return None
        recorder.warning(owner, "FailedDelete", f"Error deleting pod {pmd['name']}: {e}")
        return e
    recorder.normal(owner, "SuccessfulDelete", f"Deleted pod: {pmd['name']}")
    return None
