"""DaemonSet controller against a real API server and controllers process, with a node farm.

Every DaemonSet here selects the nodes of its own test (label ``farm=NS``), so nodes of
other tests never count. The rolling-update tests watch every pod event and check after
each one the invariant the strategy promises (nodes without an available pod never
exceed ``maxUnavailable``; with ``maxSurge`` no node loses its available pod).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from ctl.client import Client
from ctl.controllers.daemonset import should_run
from ctl.controllers.podutil import is_available
from tests.apps.conftest import NodeFarm, eventually, pod_template, set_image
from tests.cluster import RoleProcess

HASH = "controller-revision-hash"


def daemonset(ns: str, name: str, **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    tpl = pod_template(labels, nodeSelector={"farm": ns})
    tpl["spec"].update(spec.pop("pod", {}))
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": labels}, "template": tpl, **spec},
    }


async def ds_pods(client: Client, ns: str, name: str) -> list[dict[str, Any]]:
    items = (await client.list("pods", ns, label_selector=f"app={name}"))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


async def nodes_of(client: Client, ns: str, name: str) -> list[str]:
    return sorted(p["spec"]["nodeName"] for p in await ds_pods(client, ns, name))


async def status(client: Client, ns: str, name: str) -> dict[str, Any]:
    return (await client.get("daemonsets", name, namespace=ns)).get("status") or {}


async def test_one_pod_per_node_following_nodes(client: Client, ns: str, farm: NodeFarm) -> None:
    a = await farm.add_node("a", {"farm": ns})
    b = await farm.add_node("b", {"farm": ns})
    other = await farm.add_node("other")  # not selected
    await client.create(daemonset(ns, "agent"), namespace=ns)

    await eventually(lambda: _eq(nodes_of(client, ns, "agent"), [a, b]), what="a pod on a and b")
    pod = (await ds_pods(client, ns, "agent"))[0]
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchFields"] == [
        {"key": "metadata.name", "operator": "In", "values": [pod["spec"]["nodeName"]]}
    ]
    keys = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
    assert ("node.kubernetes.io/not-ready", "NoExecute") in keys
    assert ("node.kubernetes.io/unreachable", "NoExecute") in keys
    assert pod["metadata"]["labels"][HASH]
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"

    last: dict[str, Any] = {}

    async def settled(n: int) -> bool:
        st = await status(client, ns, "agent")
        last.update(st)
        want = dict.fromkeys(
            (
                "desiredNumberScheduled",
                "currentNumberScheduled",
                "numberReady",
                "updatedNumberScheduled",
                "numberAvailable",
            ),
            n,
        )
        return {k: st.get(k) for k in want} == want and st.get("numberMisscheduled") == 0

    await eventually(lambda: settled(2), what="status 2/2")

    # a node joins, another leaves, a third stops matching the selector
    c = await farm.add_node("c", {"farm": ns})
    await eventually(lambda: _eq(nodes_of(client, ns, "agent"), [a, b, c]), what="a pod follows node c")
    await farm.remove_node(a)
    await eventually(lambda: _eq(nodes_of(client, ns, "agent"), [b, c]), what="node a's pod deleted")
    node = await client.get("nodes", b)
    node["metadata"]["labels"].pop("farm")
    await client.update(node)
    await eventually(lambda: _eq(nodes_of(client, ns, "agent"), [c]), what="node b no longer selected")
    await eventually(lambda: settled(1), what="status 1/1", diag=lambda: str(last))
    # the unselected node got nothing, at any time
    assert other not in await nodes_of(client, ns, "agent")


async def test_taints_and_tolerations(client: Client, ns: str, farm: NodeFarm) -> None:
    sel = {"farm": ns}
    plain = await farm.add_node("plain", sel)
    tainted = await farm.add_node("gpu", sel, [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}])
    notready = await farm.add_node(
        "nr", sel, [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]
    )
    await client.create(daemonset(ns, "plain"), namespace=ns)
    tol = [{"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoSchedule"}]
    await client.create(daemonset(ns, "tol", pod={"tolerations": tol}), namespace=ns)
    # not-ready is tolerated by default; the gpu taint only by the DaemonSet that says so
    await eventually(lambda: _eq(nodes_of(client, ns, "plain"), sorted([plain, notready])), what="plain ds")
    await eventually(
        lambda: _eq(nodes_of(client, ns, "tol"), sorted([plain, tainted, notready])), what="tolerating ds"
    )
    # a NoSchedule taint appearing under a running pod keeps it; NoExecute evicts it
    node = await client.get("nodes", plain)
    node["spec"]["taints"] = [{"key": "maint", "effect": "NoSchedule"}]
    await client.update(node)
    await asyncio.sleep(1.0)
    assert plain in await nodes_of(client, ns, "plain")
    node = await client.get("nodes", plain)
    node["spec"]["taints"] = [{"key": "maint", "effect": "NoExecute"}]
    await client.update(node)
    await eventually(lambda: _eq(nodes_of(client, ns, "plain"), [notready]), what="NoExecute evicts")
    st = await eventually(lambda: _desired(client, ns, "plain", 1), what="desired 1")
    assert st["currentNumberScheduled"] == 1


def test_should_run_rules() -> None:
    spec: dict[str, Any] = {"nodeSelector": {"a": "1"}}
    node: dict[str, Any] = {"metadata": {"name": "n", "labels": {"a": "1"}}, "spec": {}}
    assert should_run(spec, node) == (True, True)
    assert should_run(spec, {"metadata": {"name": "n", "labels": {}}, "spec": {}}) == (False, False)
    node["spec"] = {"unschedulable": True}
    assert should_run(spec, node) == (True, True)  # DaemonSet pods tolerate cordons
    node["spec"] = {"taints": [{"key": "x", "effect": "NoSchedule"}]}
    assert should_run(spec, node) == (False, True)
    node["spec"] = {"taints": [{"key": "x", "effect": "NoExecute"}]}
    assert should_run(spec, node) == (False, False)
    aff = {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["m"]}]}
                    ]
                }
            }
        }
    }
    assert should_run(aff, {"metadata": {"name": "n"}, "spec": {}}) == (False, False)
    assert should_run(aff, {"metadata": {"name": "m"}, "spec": {}}) == (True, True)


async def _desired(client: Client, ns: str, name: str, n: int) -> dict[str, Any] | None:
    st = await status(client, ns, name)
    return st if st.get("desiredNumberScheduled") == n and st.get("currentNumberScheduled") == n else None


async def _eq(coro: Any, want: Any) -> bool:
    return bool(await coro == want)


async def _rollout(
    client: Client, ns: str, farm: NodeFarm, name: str, strategy: dict[str, Any], n: int
) -> tuple[list[str], int, int, int]:
    """Create the DaemonSet on ``n`` nodes, change its image, watch until all are updated.

    Returns (the new hash, the most nodes without an available pod at once, the most nodes
    with two pods at once, the most nodes with two pods of which one is not yet available),
    as seen after each pod event.
    """
    for i in range(n):
        await farm.add_node(f"n{i}", {"farm": ns})
    await client.create(daemonset(ns, name, updateStrategy=strategy), namespace=ns)
    await eventually(lambda: _desired_avail(client, ns, name, n), what="all available")
    worst_unavail, worst_double, worst_surge = 0, 0, 0
    seen: dict[str, dict[str, Any]] = {p["metadata"]["name"]: p for p in await ds_pods(client, ns, name)}

    async def watch() -> None:
        nonlocal worst_unavail, worst_double, worst_surge
        async for typ, pod in client.watch("pods", ns, label_selector=f"app={name}"):
            if typ == "DELETED" or pod["metadata"].get("deletionTimestamp"):
                seen.pop(pod["metadata"]["name"], None)
            else:
                seen[pod["metadata"]["name"]] = pod
            per: dict[str, list[dict[str, Any]]] = {}
            for p in seen.values():
                per.setdefault(p["spec"]["nodeName"], []).append(p)
            unavail = sum(1 for nd in farm.nodes if not any(is_available(p, 0) for p in per.get(nd, [])))
            worst_unavail = max(worst_unavail, unavail)
            worst_double = max(worst_double, sum(1 for ps in per.values() if len(ps) > 1))
            surging = sum(1 for ps in per.values() if len(ps) > 1 and not all(is_available(p, 0) for p in ps))
            worst_surge = max(worst_surge, surging)

    w = asyncio.create_task(watch())
    await asyncio.sleep(0.3)
    await set_image(client, ns, "daemonsets", name, "busybox:2")
    try:
        hashes = await eventually(lambda: _all_updated(client, ns, name, n), timeout=60, what="rollout done")
    finally:
        w.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await w
    return hashes, worst_unavail, worst_double, worst_surge


async def _desired_avail(client: Client, ns: str, name: str, n: int) -> bool:
    st = await status(client, ns, name)
    return st.get("desiredNumberScheduled") == n and st.get("numberAvailable") == n


async def _all_updated(client: Client, ns: str, name: str, n: int) -> list[str] | None:
    pods = await ds_pods(client, ns, name)
    images = {p["spec"]["containers"][0]["image"] for p in pods}
    st = await status(client, ns, name)
    if (
        len(pods) == n
        and images == {"busybox:2"}
        and st.get("updatedNumberScheduled") == n
        and st.get("numberAvailable") == n
    ):
        return sorted({p["metadata"]["labels"][HASH] for p in pods})
    return None


async def test_rolling_update_max_unavailable(client: Client, ns: str, farm: NodeFarm) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}
    hashes, unavail, double, _ = await _rollout(client, ns, farm, "ru", strategy, 4)
    assert len(hashes) == 1
    assert unavail <= 1, f"{unavail} nodes without an available pod at once"
    assert unavail == 1  # the update did take pods down, one node at a time
    assert double == 0
    revs = (await client.list("controllerrevisions", ns))["items"]
    mine = sorted(
        (r["revision"], r["metadata"]["labels"][HASH])
        for r in revs
        if r["metadata"]["name"].startswith("ru-")
    )
    assert [r for r, _ in mine] == [1, 2] and mine[-1][1] == hashes[0]


async def test_rolling_update_max_surge(client: Client, ns: str, farm: NodeFarm) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    hashes, unavail, double, surge = await _rollout(client, ns, farm, "surge", strategy, 3)
    assert len(hashes) == 1
    assert unavail == 0, "a node lost its available pod during a surge rollout"
    assert double >= 1  # new pods did start next to old ones
    assert surge <= 1, f"{surge} nodes surging at once with maxSurge 1"


async def test_on_delete(client: Client, ns: str, farm: NodeFarm) -> None:
    for i in range(2):
        await farm.add_node(f"n{i}", {"farm": ns})
    await client.create(daemonset(ns, "od", updateStrategy={"type": "OnDelete"}), namespace=ns)
    await eventually(lambda: _desired_avail(client, ns, "od", 2), what="all available")
    before = {p["metadata"]["name"] for p in await ds_pods(client, ns, "od")}
    await set_image(client, ns, "daemonsets", "od", "busybox:2")
    await asyncio.sleep(1.5)
    assert {p["metadata"]["name"] for p in await ds_pods(client, ns, "od")} == before
    victim = sorted(before)[0]
    await client.delete("pods", victim, namespace=ns)

    async def replaced() -> bool:
        pods = await ds_pods(client, ns, "od")
        imgs = sorted(p["spec"]["containers"][0]["image"] for p in pods)
        st = await status(client, ns, "od")
        return imgs == ["busybox:1", "busybox:2"] and st.get("updatedNumberScheduled") == 1

    await eventually(replaced, what="only the deleted pod replaced, at the new template")


async def test_failed_pod_is_replaced_with_back_off(client: Client, ns: str, farm: NodeFarm) -> None:
    node = await farm.add_node("a", {"farm": ns})
    await client.create(daemonset(ns, "fp"), namespace=ns)
    await eventually(lambda: _desired_avail(client, ns, "fp", 1), what="available")
    delays = []
    for _ in range(3):  # fail each replacement as soon as it runs: 1 s, then 2 s before the next
        pod = await eventually(lambda: _running_pod(client, ns, "fp"), what="a running pod")
        pod["status"]["phase"] = "Failed"
        t0 = time.monotonic()
        await client.update(pod, "status")

        async def replaced(old: str = pod["metadata"]["uid"]) -> dict[str, Any] | None:
            pods = await ds_pods(client, ns, "fp")
            return pods[0] if len(pods) == 1 and pods[0]["metadata"]["uid"] != old else None

        new = await eventually(replaced, what="the failed pod deleted and a new one created")
        assert new["spec"]["nodeName"] == node
        delays.append(time.monotonic() - t0)
    assert delays[1] >= 0.9 and delays[2] >= 1.9, delays  # the back-off doubles
    events = (await client.list("events", ns))["items"]
    assert sum(1 for e in events if e.get("reason") == "FailedDaemonPod") >= 3


async def _running_pod(client: Client, ns: str, app: str) -> dict[str, Any] | None:
    pods = await ds_pods(client, ns, app)
    ok = len(pods) == 1 and (pods[0].get("status") or {}).get("phase") == "Running"
    return pods[0] if ok else None


async def test_follows_hollow_nodes_joining_and_leaving(
    client: Client, ns: str, cluster: Any, tmp_path: Path
) -> None:
    """A real hollow agent's nodes join after the DaemonSet exists; its pods run there; they leave."""
    prefix = f"{ns}-hollow"
    names = [f"{prefix}-{i}" for i in range(3)]
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": names}]}
    affinity = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}
    }
    body = daemonset(ns, "hollow", pod={"affinity": affinity, "terminationGracePeriodSeconds": 0})
    body["spec"]["template"]["spec"].pop("nodeSelector")
    await client.create(body, namespace=ns)
    agent = RoleProcess(
        "agent",
        [
            "--server",
            cluster[0].url,
            "--hollow-nodes",
            "3",
            "--hollow-prefix",
            prefix,
            "--data-dir",
            str(tmp_path / "hollow"),
            "--endpoint-port",
            "0",
            "--hollow-start-delay",
            "0.1",
        ],
        tmp_path / "agent.log",
    ).start()
    try:

        async def running() -> bool:
            pods = await ds_pods(client, ns, "hollow")
            return sorted(p["spec"]["nodeName"] for p in pods) == names and all(
                (p.get("status") or {}).get("phase") == "Running" for p in pods
            )

        await eventually(running, timeout=60, what="a Running pod on each hollow node")
    finally:
        agent.stop()
    for n in names[1:]:
        await client.delete("nodes", n)
    await eventually(
        lambda: _eq(nodes_of(client, ns, "hollow"), names[:1]), timeout=30, what="pods left with their nodes"
    )
    await client.delete("nodes", names[0])
