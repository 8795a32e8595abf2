"""StatefulSet controller against a real API server and controllers process, with a node farm.

The farm binds the pods and reports them Running and Ready, except the pods named in
``farm.not_ready`` (reported Running but not Ready), which is how the ordering tests hold a
pod back and check that nothing after it starts (OrderedReady) or that everything does
(Parallel).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from ctl.client import ApiError, Client
from tests.apps.conftest import NodeFarm, eventually, pod_template, set_image

HASH = "controller-revision-hash"


def statefulset(name: str, replicas: int, **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": labels},
            "template": pod_template(labels),
            "volumeClaimTemplates": [
                {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "1Mi"}}}}
            ],
            **spec,
        },
    }


async def names(client: Client, ns: str, app: str) -> list[str]:
    items = (await client.list("pods", ns, label_selector=f"app={app}"))["items"]
    return sorted(p["metadata"]["name"] for p in items if not p["metadata"].get("deletionTimestamp"))


async def claims(client: Client, ns: str) -> dict[str, str]:
    return {c["metadata"]["name"]: c["metadata"]["uid"] for c in (await client.list("pvc", ns))["items"]}


async def status(client: Client, ns: str, name: str) -> dict[str, Any]:
    return (await client.get("statefulsets", name, namespace=ns)).get("status") or {}


async def record_deletions(client: Client, ns: str, selector: str, order: list[str]) -> None:
    """Append each pod's name to ``order`` when its deletion starts (until cancelled)."""
    async for _typ, pod in client.watch("pods", ns, label_selector=selector):
        n = pod["metadata"]["name"]
        if pod["metadata"].get("deletionTimestamp") and n not in order:
            order.append(n)


async def _eq(coro: Any, want: Any) -> bool:
    return bool(await coro == want)


async def test_ordered_ready_creation_names_and_claims(client: Client, ns: str, farm: NodeFarm) -> None:
    await farm.add_node("a")
    farm.not_ready = {"web-0"}
    await client.create(statefulset("web", 3), namespace=ns)
    await eventually(lambda: _eq(names(client, ns, "web"), ["web-0"]), what="web-0 created")
    await asyncio.sleep(1.5)
    assert await names(client, ns, "web") == ["web-0"], "web-1 started before web-0 was ready"
    pod = await client.get("pods", "web-0", namespace=ns)
    assert pod["spec"]["hostname"] == "web-0" and pod["spec"]["subdomain"] == "web"
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}} in pod["spec"]["volumes"]
    labels = pod["metadata"]["labels"]
    assert (
        labels["statefulset.kubernetes.io/pod-name"] == "web-0"
        and labels["apps.kubernetes.io/pod-index"] == "0"
    )
    farm.not_ready = {"web-1"}
    await farm.refresh("web-0")
    await eventually(
        lambda: _eq(names(client, ns, "web"), ["web-0", "web-1"]), what="web-1 after web-0 ready"
    )
    await asyncio.sleep(1.0)
    assert await names(client, ns, "web") == ["web-0", "web-1"]
    farm.not_ready = set()
    await farm.refresh("web-1")
    await eventually(lambda: _eq(names(client, ns, "web"), ["web-0", "web-1", "web-2"]), what="web-2")
    assert sorted(await claims(client, ns)) == ["data-web-0", "data-web-1", "data-web-2"]

    async def ready() -> dict[str, Any] | None:
        st = await status(client, ns, "web")
        return st if st.get("readyReplicas") == 3 and st.get("replicas") == 3 else None

    st = await eventually(ready, what="status 3 ready")
    assert st["currentRevision"] == st["updateRevision"] and st["updateRevision"].startswith("web-")
    assert st["currentReplicas"] == st["updatedReplicas"] == 3


async def test_parallel_creates_without_waiting(client: Client, ns: str, farm: NodeFarm) -> None:
    await farm.add_node("a")
    farm.not_ready = {"par-0", "par-1", "par-2"}
    await client.create(statefulset("par", 3, podManagementPolicy="Parallel"), namespace=ns)
    await eventually(lambda: _eq(names(client, ns, "par"), ["par-0", "par-1", "par-2"]), what="all at once")


async def test_scale_down_in_reverse_order_and_claims_kept(client: Client, ns: str, farm: NodeFarm) -> None:
    await farm.add_node("a")
    await client.create(statefulset("db", 3), namespace=ns)
    await eventually(lambda: _eq(names(client, ns, "db"), ["db-0", "db-1", "db-2"]), what="3 pods")
    before = await claims(client, ns)
    order: list[str] = []
    w = asyncio.create_task(record_deletions(client, ns, "app=db", order))
    await asyncio.sleep(0.3)
    await client.patch("statefulsets", "db", {"spec": {"replicas": 1}}, namespace=ns)
    try:
        await eventually(lambda: _eq(names(client, ns, "db"), ["db-0"]), what="scaled to 1")
    finally:
        w.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await w
    assert order == ["db-2", "db-1"], order
    assert await claims(client, ns) == before, "claims were not kept on scale-down"
    # scale back up: the same claims are reattached
    await client.patch("statefulsets", "db", {"spec": {"replicas": 3}}, namespace=ns)
    await eventually(lambda: _eq(names(client, ns, "db"), ["db-0", "db-1", "db-2"]), what="scaled to 3")
    assert await claims(client, ns) == before
    pod = await client.get("pods", "db-2", namespace=ns)
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-2"}} in pod["spec"]["volumes"]
    # a deleted pod comes back under its name, with its claim
    uid = pod["metadata"]["uid"]
    await client.delete("pods", "db-2", namespace=ns)

    async def back() -> bool:
        p = await client.get("pods", "db-2", namespace=ns)
        return p["metadata"]["uid"] != uid and not p["metadata"].get("deletionTimestamp")

    await eventually(back, what="db-2 recreated", ignore=(Exception,))
    assert await claims(client, ns) == before


async def test_rolling_update_with_partition(client: Client, ns: str, farm: NodeFarm) -> None:
    await farm.add_node("a")
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}
    await client.create(statefulset("ru", 3, updateStrategy=strategy), namespace=ns)

    async def st_when(pred: Any) -> dict[str, Any] | None:
        st = await status(client, ns, "ru")
        return st if pred(st) else None

    st0 = await eventually(lambda: st_when(lambda s: s.get("readyReplicas") == 3), what="3 ready")
    first = st0["currentRevision"]
    order: list[str] = []
    w = asyncio.create_task(record_deletions(client, ns, "app=ru", order))
    await asyncio.sleep(0.3)
    await set_image(client, ns, "statefulsets", "ru", "busybox:2")
    try:
        st = await eventually(
            lambda: st_when(lambda s: s.get("updatedReplicas") == 2 and s.get("readyReplicas") == 3),
            timeout=30,
            what="ordinals 1 and 2 updated",
        )
    finally:
        w.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await w
    assert order == ["ru-2", "ru-1"], order
    assert st["currentRevision"] == first and st["updateRevision"] != first
    images = {
        p["metadata"]["name"]: p["spec"]["containers"][0]["image"]
        for p in (await client.list("pods", ns, label_selector="app=ru"))["items"]
    }
    assert images == {"ru-0": "busybox:1", "ru-1": "busybox:2", "ru-2": "busybox:2"}
    # lowering the partition finishes the rollout; the current revision follows
    await client.patch(
        "statefulsets", "ru", {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}}, namespace=ns
    )
    st = await eventually(
        lambda: st_when(
            lambda s: s.get("updatedReplicas") == 3 and s.get("currentRevision") == s.get("updateRevision")
        ),
        timeout=30,
        what="all updated",
    )
    revs = [
        r
        for r in (await client.list("controllerrevisions", ns))["items"]
        if r["metadata"]["name"].startswith("ru-")
    ]
    assert sorted(r["revision"] for r in revs) == [1, 2]


async def test_on_delete(client: Client, ns: str, farm: NodeFarm) -> None:
    await farm.add_node("a")
    await client.create(statefulset("od", 2, updateStrategy={"type": "OnDelete"}), namespace=ns)

    async def ready() -> bool:
        return (await status(client, ns, "od")).get("readyReplicas") == 2

    await eventually(ready, what="2 ready")
    await set_image(client, ns, "statefulsets", "od", "busybox:2")
    await asyncio.sleep(1.5)

    async def images() -> dict[str, str]:
        items = (await client.list("pods", ns, label_selector="app=od"))["items"]
        return {
            p["metadata"]["name"]: p["spec"]["containers"][0]["image"]
            for p in items
            if not p["metadata"].get("deletionTimestamp")
        }

    assert await images() == {"od-0": "busybox:1", "od-1": "busybox:1"}
    await client.delete("pods", "od-0", namespace=ns)
    await eventually(lambda: _eq(images(), {"od-0": "busybox:2", "od-1": "busybox:1"}), what="od-0 replaced")


async def test_failed_pod_is_recreated_under_its_name(client: Client, ns: str, farm: NodeFarm) -> None:
    await farm.add_node("a")
    await client.create(statefulset("fl", 1), namespace=ns)
    await eventually(lambda: _eq(names(client, ns, "fl"), ["fl-0"]), what="fl-0")
    pod = await eventually(lambda: _running(client, ns, "fl-0"), what="fl-0 running")
    pod["status"]["phase"] = "Failed"
    await client.update(pod, "status")

    async def recreated() -> bool:
        p = await _running(client, ns, "fl-0")
        return p is not None and p["metadata"]["uid"] != pod["metadata"]["uid"]

    await eventually(recreated, what="fl-0 recreated", ignore=(Exception,))


async def _running(client: Client, ns: str, name: str) -> dict[str, Any] | None:
    p = await client.get("pods", name, namespace=ns)
    return p if (p.get("status") or {}).get("phase") == "Running" else None


async def test_deleting_the_set_removes_pods_and_history_but_keeps_claims(
    client: Client, ns: str, farm: NodeFarm
) -> None:
    await farm.add_node("a")
    await client.create(statefulset("gone", 2, podManagementPolicy="Parallel"), namespace=ns)
    await eventually(lambda: _eq(names(client, ns, "gone"), ["gone-0", "gone-1"]), what="2 pods")
    before = await claims(client, ns)
    await client.delete("statefulsets", "gone", namespace=ns)

    async def cleaned() -> bool:
        revs = (await client.list("controllerrevisions", ns))["items"]
        return not await names(client, ns, "gone") and not revs

    await eventually(cleaned, timeout=30, what="pods and revisions garbage-collected")
    assert await claims(client, ns) == before  # whenDeleted: Retain


async def test_claim_retention_policy_delete(client: Client, ns: str, farm: NodeFarm) -> None:
    await farm.add_node("a")
    policy = {"whenDeleted": "Delete", "whenScaled": "Delete"}
    body = statefulset("rp", 3, podManagementPolicy="Parallel", persistentVolumeClaimRetentionPolicy=policy)
    await client.create(body, namespace=ns)
    await eventually(lambda: _eq(names(client, ns, "rp"), ["rp-0", "rp-1", "rp-2"]), what="3 pods")
    sts = await client.get("statefulsets", "rp", namespace=ns)
    pvc = await client.get("pvc", "data-rp-0", namespace=ns)
    assert [r["uid"] for r in pvc["metadata"]["ownerReferences"]] == [sts["metadata"]["uid"]]
    await client.patch("statefulsets", "rp", {"spec": {"replicas": 1}}, namespace=ns)
    await eventually(lambda: _eq(names(client, ns, "rp"), ["rp-0"]), what="scaled to 1")

    async def claims_are(want: list[str]) -> bool:
        return sorted(await claims(client, ns)) == want

    await eventually(
        lambda: claims_are(["data-rp-0"]), timeout=30, what="the scaled-away pods' claims deleted"
    )
    await client.delete("statefulsets", "rp", namespace=ns)
    await eventually(lambda: claims_are([]), timeout=30, what="the last claim deleted with the set")


async def test_claim_retention_policy_is_validated(client: Client, ns: str) -> None:
    body = statefulset("bad", 1, persistentVolumeClaimRetentionPolicy={"whenScaled": "Keep"})
    with pytest.raises(ApiError) as e:
        await client.create(body, namespace=ns)
    assert e.value.code == 422 and "whenScaled" in str(e.value)
    ok = await client.create(statefulset("good", 0), namespace=ns)
    assert ok["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
