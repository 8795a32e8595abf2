"""ReplicaSet controller against a real API server: scale up/down, adoption, release, status, events."""

from __future__ import annotations

import asyncio

from ctl.client import Client
from tests.controllers.conftest import FakeKubelet, eventually, live, pods_of, replicaset


async def _rs_status(client: Client, ns: str, name: str) -> dict:
    return (await client.get("replicasets", name, namespace=ns)).get("status") or {}


async def test_scale_up_down_and_status(client: Client, ns: str, kubelet: FakeKubelet) -> None:
    await client.create(replicaset("web", 3, {"app": "web"}), namespace=ns)

    async def three_ready() -> bool:
        s = await _rs_status(client, ns, "web")
        return s.get("readyReplicas") == 3 and s.get("availableReplicas") == 3 and s.get("replicas") == 3

    await eventually(three_ready, what="3 ready replicas")
    pods = await pods_of(client, ns, "app=web")
    assert len(pods) == 3
    for p in pods:
        assert p["metadata"]["generateName"] == "web-"
        ref = p["metadata"]["ownerReferences"][0]
        assert (
            ref["kind"] == "ReplicaSet"
            and ref["name"] == "web"
            and ref["controller"]
            and ref["blockOwnerDeletion"]
        )
    # Scale down through the scale subresource: two pods go (gracefully: the kubelet removes them).
    scale = await client.get("replicasets", "web", namespace=ns, subresource="scale")
    scale["spec"]["replicas"] = 1
    # Unconditional (as `kubectl scale` without --resource-version): the controller's status
    # writes would otherwise race the GET above and make this a 409.
    scale["metadata"].pop("resourceVersion", None)
    await client.request("PUT", client.path("replicasets", ns, "web", "scale"), scale)
    await eventually(lambda: _count(client, ns, "app=web", 1), what="1 pod left")
    s = await _rs_status(client, ns, "web")
    assert s["observedGeneration"] == 2
    # Scale up while the watch is busy: never more pods than asked for (expectations).
    await client.request(
        "PATCH",
        client.path("replicasets", ns, "web"),
        {"spec": {"replicas": 6}},
        content_type="application/merge-patch+json",
    )
    peak = 0
    for _ in range(60):
        peak = max(peak, len(live(await pods_of(client, ns, "app=web"))))
        await asyncio.sleep(0.05)
    await eventually(lambda: _count(client, ns, "app=web", 6), what="6 pods")
    await asyncio.sleep(1.0)
    assert len(live(await pods_of(client, ns, "app=web"))) == 6
    assert peak <= 6
    # Events were recorded for what the controller did.
    evs = (await client.list("events", ns))["items"]
    reasons = {e["reason"] for e in evs if e["involvedObject"]["name"] == "web"}
    assert {"SuccessfulCreate", "SuccessfulDelete"} <= reasons
    ev = next(e for e in evs if e["reason"] == "SuccessfulCreate")
    assert ev["source"]["component"] == "controller-manager" and ev["involvedObject"]["kind"] == "ReplicaSet"
    assert ev["count"] >= 1 and ev["firstTimestamp"] and ev["lastTimestamp"]


async def _count(client: Client, ns: str, sel: str, n: int) -> bool:
    return len(live(await pods_of(client, ns, sel))) == n


async def test_deleting_pod_is_replaced_and_scale_down_prefers_unready(client: Client, ns: str) -> None:
    k = await FakeKubelet(client, ns).start()
    try:
        await client.create(replicaset("api", 2, {"app": "api"}), namespace=ns)
        await eventually(lambda: _count(client, ns, "app=api", 2))
        await eventually(lambda: _ready(client, ns, "api", 2))
        # Stop the kubelet: new pods stay Pending and unbound.
        k.paused = True
        rs = await client.get("replicasets", "api", namespace=ns)
        rs["spec"]["replicas"] = 3
        await client.update(rs)
        await eventually(lambda: _count(client, ns, "app=api", 3))
        pending = [p for p in await pods_of(client, ns, "app=api") if not p["spec"].get("nodeName")]
        assert len(pending) == 1
        rs = await client.get("replicasets", "api", namespace=ns)
        rs["spec"]["replicas"] = 2
        await client.update(rs)
        await eventually(lambda: _count(client, ns, "app=api", 2))
        names = {p["metadata"]["name"] for p in live(await pods_of(client, ns, "app=api"))}
        assert pending[0]["metadata"]["name"] not in names  # the unscheduled pod went first
    finally:
        await k.stop()


async def _ready(client: Client, ns: str, name: str, n: int) -> bool:
    return (await _rs_status(client, ns, name)).get("readyReplicas") == n


async def test_adopt_orphans_and_release_non_matching(client: Client, ns: str, kubelet: FakeKubelet) -> None:
    orphan = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "orphan", "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1"}]},
    }
    await client.create(orphan, namespace=ns)
    await client.create(replicaset("db", 2, {"app": "db"}), namespace=ns)

    async def adopted() -> bool:
        p = await client.get("pods", "orphan", namespace=ns)
        refs = p["metadata"].get("ownerReferences") or []
        return bool(refs) and refs[0]["name"] == "db"

    await eventually(adopted, what="orphan adopted")
    await eventually(lambda: _count(client, ns, "app=db", 2))
    await asyncio.sleep(0.5)
    assert len(live(await pods_of(client, ns, "app=db"))) == 2  # adopted pod counted, only one created
    # Relabel one pod: it is released, and the ReplicaSet makes a replacement.
    p = await client.get("pods", "orphan", namespace=ns)
    p["metadata"]["labels"] = {"app": "other"}
    await client.update(p)

    async def released() -> bool:
        q = await client.get("pods", "orphan", namespace=ns)
        return not q["metadata"].get("ownerReferences")

    await eventually(released, what="pod released")
    await eventually(lambda: _count(client, ns, "app=db", 2), what="replacement")


async def test_min_ready_seconds_delays_availability(client: Client, ns: str, kubelet: FakeKubelet) -> None:
    await client.create(replicaset("slow", 2, {"app": "slow"}, minReadySeconds=2), namespace=ns)
    await eventually(lambda: _ready(client, ns, "slow", 2), what="2 ready")
    s = await _rs_status(client, ns, "slow")
    assert s["availableReplicas"] == 0  # ready, but not for 2 s yet

    async def available() -> bool:
        return (await _rs_status(client, ns, "slow")).get("availableReplicas") == 2

    await eventually(available, timeout=10, what="available after minReadySeconds")
