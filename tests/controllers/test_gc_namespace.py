"""Garbage collector (background, foreground, orphan) and namespace deletion, against real processes."""

from __future__ import annotations

import asyncio

from ctl.client import ApiError, Client
from tests.controllers.conftest import FakeKubelet, deployment, eventually, live, pods_of, replicaset


async def _gone(
    client: Client, kind: str, name: str, ns: str | None = None, tenant: str | None = None
) -> bool:
    try:
        await client.get(kind, name, namespace=ns, tenant=tenant)
        return False
    except ApiError as e:
        return e.code == 404


def cm(name: str, owners: list[dict] | None = None) -> dict:
    md: dict = {"name": name}
    if owners:
        md["ownerReferences"] = owners
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": {"k": "v"}}


def ref(obj: dict, block: bool = True, controller: bool = False) -> dict:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "blockOwnerDeletion": block,
        "controller": controller,
    }


async def test_background_deletion_chain(client: Client, ns: str, kubelet: FakeKubelet) -> None:
    await client.create(deployment("bg", 2, {"app": "bg"}), namespace=ns)
    await eventually(lambda: _n_pods(client, ns, "app=bg", 2))
    rs_name = (await client.list("replicasets", ns))["items"][0]["metadata"]["name"]
    await client.delete("deployments", "bg", namespace=ns, propagation_policy="Background")
    assert await _gone(client, "deployments", "bg", ns)  # the owner goes at once
    await eventually(lambda: _gone(client, "replicasets", rs_name, ns), what="ReplicaSet collected")
    await eventually(
        lambda: _n_pods(client, ns, "app=bg", 0, include_terminating=True), what="pods collected"
    )
    # A dependent with one live owner left only loses the dead reference.
    a = await client.create(cm("owner-a"), namespace=ns)
    b = await client.create(cm("owner-b"), namespace=ns)
    await client.create(cm("shared", [ref(a), ref(b)]), namespace=ns)
    await client.delete("configmaps", "owner-a", namespace=ns)

    async def one_ref() -> bool:
        refs = (await client.get("configmaps", "shared", namespace=ns))["metadata"].get(
            "ownerReferences"
        ) or []
        return [r["name"] for r in refs] == ["owner-b"]

    await eventually(one_ref, what="dangling reference removed")
    # An ownerReference to an owner that never existed (wrong uid) is dangling: collected.
    await client.create(
        cm("stray", [{**ref(b), "uid": "00000000-0000-0000-0000-000000000000"}]), namespace=ns
    )
    await eventually(lambda: _gone(client, "configmaps", "stray", ns), what="stray dependent collected")
    assert not await _gone(client, "configmaps", "shared", ns)


async def _n_pods(client: Client, ns: str, sel: str, n: int, include_terminating: bool = False) -> bool:
    pods = await pods_of(client, ns, sel)
    return len(pods if include_terminating else live(pods)) == n


async def test_foreground_deletion_waits_for_dependents(
    client: Client, ns: str, kubelet: FakeKubelet
) -> None:
    await client.create(replicaset("fg", 3, {"app": "fg"}), namespace=ns)
    await eventually(lambda: _n_pods(client, ns, "app=fg", 3))
    kubelet.paused = True  # nobody removes terminating pods for now
    await client.delete("replicasets", "fg", namespace=ns, propagation_policy="Foreground")
    rs = await client.get("replicasets", "fg", namespace=ns)
    assert rs["metadata"]["deletionTimestamp"] and "foregroundDeletion" in rs["metadata"]["finalizers"]

    async def all_terminating() -> bool:
        pods = await pods_of(client, ns, "app=fg")
        return len(pods) == 3 and all(p["metadata"].get("deletionTimestamp") for p in pods)

    await eventually(all_terminating, what="dependents being deleted")
    await asyncio.sleep(0.5)
    assert not await _gone(client, "replicasets", "fg", ns)  # still waiting for its pods
    for p in await pods_of(client, ns, "app=fg"):
        await client.delete("pods", p["metadata"]["name"], namespace=ns, grace_period_seconds=0)
    await eventually(
        lambda: _gone(client, "replicasets", "fg", ns), what="owner removed after its dependents"
    )


async def test_orphan_deletion_keeps_dependents(client: Client, ns: str, kubelet: FakeKubelet) -> None:
    await client.create(replicaset("orph", 2, {"app": "orph"}), namespace=ns)
    await eventually(lambda: _n_pods(client, ns, "app=orph", 2))
    await client.delete("replicasets", "orph", namespace=ns, propagation_policy="Orphan")
    await eventually(lambda: _gone(client, "replicasets", "orph", ns), what="orphaning owner removed")
    pods = live(await pods_of(client, ns, "app=orph"))
    assert len(pods) == 2
    assert all(not p["metadata"].get("ownerReferences") for p in pods)
    await asyncio.sleep(0.5)
    assert len(live(await pods_of(client, ns, "app=orph"))) == 2


async def test_namespace_deletion_empties_then_removes(client: Client, ns: str, kubelet: FakeKubelet) -> None:
    await client.create(deployment("ns-web", 2, {"app": "nsweb"}), namespace=ns)
    await client.create(cm("settings"), namespace=ns)
    await eventually(lambda: _n_pods(client, ns, "app=nsweb", 2))
    await client.delete("namespaces", ns)
    n = await client.get("namespaces", ns)
    assert n["status"]["phase"] == "Terminating"
    await eventually(lambda: _gone(client, "namespaces", ns), timeout=30, what="namespace removed")
    for kind in ("pods", "replicasets", "deployments", "configmaps", "events"):
        assert (await client.list(kind, ns, tenant="system"))["items"] == [], kind


async def test_namespace_deletion_in_another_tenant(client: Client) -> None:
    await client.create({"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": "acme"}})
    await client.create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}, tenant="acme"
    )
    await client.create(cm("a"), namespace="shop", tenant="acme")
    await client.create(cm("b"), namespace="shop", tenant="acme")
    await client.delete("namespaces", "shop", tenant="acme")
    await eventually(
        lambda: _gone(client, "namespaces", "shop", tenant="acme"),
        timeout=20,
        what="tenant namespace removed",
    )
    assert (await client.list("configmaps", "shop", tenant="acme"))["items"] == []
