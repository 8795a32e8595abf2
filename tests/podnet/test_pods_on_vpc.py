"""Pods on VPC endpoints, end to end on 3 namespace hosts (DESIGN §7-8, issue #18).

Real everything: an API server, the network operator, three simulated hosts each with its
transit daemon (XDP programs loaded) and its own runc node agent registering its Droplet.
Two tenants whose ``default`` Networks have the SAME CIDR run busybox pods (created through the
API with ``spec.nodeName``) on every host. Checked: pods get their podIP from their Endpoint;
they ping and TCP-connect (busybox ``nc``) across hosts within a tenant; a tenant never reaches
the other's pods, neither an address only the other tenant has nor a shared address (the
answer always comes from the caller's own tenant); a pod whose Network is not Ready waits with
a condition and an Event and starts once the Network exists; deleting a pod deletes its
Endpoint, frees its IP record and its address stops answering.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ctl.client import ApiError
from tests.helpers import eventually
from tests.podnet.harness import PodnetCluster, need_podnet, ping, server_pod, tcp

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.bpf]

CIDR = "10.60.0.0/16"
MIZAR_EP = "endpoints.mizar.centaurus.io"


async def _endpoint_of(c: PodnetCluster, tenant: str, pod: dict[str, Any]) -> dict[str, Any]:
    uid = pod["metadata"]["uid"]
    lst = await c.client.list(MIZAR_EP, "default", tenant, label_selector=f"mizar.centaurus.io/pod-uid={uid}")
    (ep,) = lst["items"]
    return ep


async def test_two_tenants_same_cidr_pods_on_three_hosts(tmp_path: Path) -> None:
    need_podnet()
    c = PodnetCluster(tmp_path)
    try:
        await c.wait_droplets()
        await c.tenant("ta", CIDR)
        await c.tenant("tb", CIDR)
        # a pod whose network does not exist yet waits, and says why
        early = await c.client.create(server_pod("early", c.nodes[0], network="late"), tenant="ta")

        async def waiting() -> dict[str, Any] | None:
            p = await c.client.get("pods", "early", "default", "ta")
            cond = {x["type"]: x for x in (p.get("status") or {}).get("conditions") or []}
            w = cond.get("PodReadyToStartContainers") or {}
            return p if w.get("status") == "False" and w.get("reason") == "NetworkNotReady" else None

        await eventually(waiting, 30, 0.1, "early pod waiting for its network", diag=c.logs)
        evs = await c.client.list("events", "default", "ta")
        assert any(e.get("reason") == "NetworkNotReady" for e in evs["items"]), evs["items"]
        assert early["metadata"]["uid"]

        pods: dict[str, dict[str, Any]] = {}
        layout = {"ta": c.nodes, "tb": [*c.nodes, c.nodes[0]]}  # tb has one address ta does not
        for t, nodes in layout.items():
            for i, node in enumerate(nodes):
                await c.client.create(server_pod(f"{t}{i}", node), tenant=t)
        for t, nodes in layout.items():
            for i in range(len(nodes)):
                pods[f"{t}{i}"] = await c.running(t, f"{t}{i}")
        ip = {n: p["status"]["podIP"] for n, p in pods.items()}
        eps = {n: await _endpoint_of(c, n[:2], p) for n, p in pods.items()}
        for n in pods:  # podIP is the Endpoint's, the endpoint is on the pod's host
            assert eps[n]["status"]["ip"] == ip[n] and eps[n]["status"]["phase"] == "Provisioned"
            assert eps[n]["spec"]["droplet"] == pods[n]["spec"]["nodeName"]
            assert ip[n] in {x["ip"] for x in pods[n]["status"]["podIPs"]}
        a_ips = {ip[f"ta{i}"] for i in range(3)}
        b_ips = {ip[f"tb{i}"] for i in range(4)}
        assert a_ips < b_ips, (a_ips, b_ips)  # the same CIDR: the same addresses in both tenants
        (only_b,) = b_ips - a_ips
        by_ip_b = {ip[n]: n for n in pods if n.startswith("tb")}

        # within a tenant, across hosts: ping and TCP, every pair of hosts
        for t, n in (("ta", 3), ("tb", 3)):
            for i in range(n):
                for j in range(n):
                    if i != j:
                        src, dst = pods[f"{t}{i}"], f"{t}{j}"
                        assert ping(src, ip[dst]), f"{t}{i} -> {dst} ({ip[dst]})\n{c.logs()}"
                        assert tcp(src, ip[dst]) == f"hello-{dst}", f"{t}{i} -> {dst} TCP"
        # never across tenants: an address only tb has is dead for ta, both ways of asking
        for i in range(3):
            assert not ping(pods[f"ta{i}"], only_b)
            assert tcp(pods[f"ta{i}"], only_b) == ""
        assert tcp(pods["tb0"], only_b) == f"hello-{by_ip_b[only_b]}"  # it is there for its own tenant
        # a shared address answers from the caller's own tenant, never the other's
        for i in range(3):
            for j in range(3):
                if i != j:
                    assert tcp(pods[f"ta{i}"], ip[f"ta{j}"]) == f"hello-ta{j}"
                    assert tcp(pods[f"tb{i}"], ip[f"tb{j}"]) == f"hello-tb{j}"

        # the early pod starts once its network exists
        await c.client.create(
            {"apiVersion": "arktos.centaurus.io/v1", "kind": "Network", "metadata": {"name": "late"},
             "spec": {"type": "mizar", "cidr": "10.61.0.0/16"}},
            tenant="ta",
        )  # fmt: skip
        early = await c.running("ta", "early", timeout=60)
        assert early["status"]["podIP"].startswith("10.61.")

        # deleting a pod: its Endpoint goes, its IP record is freed, its address stops answering
        victim, vip = pods["ta1"], ip["ta1"]
        vep = eps["ta1"]
        record = f"ip-{vep['status']['vni']}-{vip.replace('.', '-')}"
        await c.client.get("configmaps", record, "kube-system", "system")  # allocated now
        await c.client.delete("pods", "ta1", "default", "ta")
        await c.gone("ta", "ta1")

        async def freed() -> bool:
            for kind, name, ns, t in (
                (MIZAR_EP, vep["metadata"]["name"], "default", "ta"),
                ("configmaps", record, "kube-system", "system"),
            ):
                try:
                    await c.client.get(kind, name, ns, t)
                    return False
                except ApiError as e:
                    if e.code != 404:
                        raise
            return True

        await eventually(freed, 30, 0.1, "endpoint and IP record of ta1 gone", diag=c.logs)
        assert not ping(pods["ta0"], vip) and not ping(pods["ta2"], vip)
        assert tcp(pods["ta0"], vip) == ""
        twin = by_ip_b[vip]  # tb's pod at the same address still answers in tb
        src = next(n for n in ("tb0", "tb1", "tb2") if n != twin)
        assert tcp(pods[src], vip) == f"hello-{twin}"
        assert not Path(f"/run/netns/cpod-{victim['metadata']['uid'].replace('-', '')[:12]}").exists()
        for a in c.agents:
            assert "Traceback" not in a.log(), a.log()[-4000:]
    finally:
        await c.aclose()
