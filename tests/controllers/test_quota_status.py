"""The ResourceQuota controller keeps ``status.hard`` and ``status.used`` in line with the pods.

A real API server and the controller manager (a real process, default controller set)
run for the module; :class:`FakeKubelet` binds and starts the pods of the test's
namespace, so a deleted pod stays counted until the "kubelet" removes it, as in a cluster.
"""

from __future__ import annotations

import time
from typing import Any

from ctl.client import Client
from ctl.types.quota_accounting import format_amount, quota_status
from tests.controllers.conftest import FakeKubelet, eventually


def quota(name: str, hard: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name}, "spec": {"hard": hard}}


def pod(name: str, cpu: str | None = None, memory: str | None = None) -> dict[str, Any]:
    req = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox:1", "resources": {"requests": req}}]},
    }


async def wait_status(
    client: Client,
    namespace: str,
    name: str,
    used: dict[str, str],
    tenant: str | None = None,
    timeout: float = 8.0,
) -> None:
    """Wait until the quota's status is exactly {hard: spec.hard, used}; fail showing the last status."""
    last: list[Any] = [None]

    async def exact() -> bool:
        q = await client.get("resourcequotas", name, namespace=namespace, tenant=tenant)
        last[0] = q.get("status")
        return bool(last[0] == {"hard": q["spec"]["hard"], "used": used})

    await eventually(
        exact,
        timeout,
        0.05,
        f"quota {namespace}/{name} to show used {used!r}",
        diag=lambda: f"last status: {last[0]!r}",
    )


async def set_phase(client: Client, namespace: str, name: str, phase: str) -> None:
    async def running() -> bool:
        p = await client.get("pods", name, namespace=namespace)
        return (p.get("status") or {}).get("phase") == "Running"

    await eventually(running, timeout=5.0, what=f"pod {name} Running")
    p = await client.get("pods", name, namespace=namespace)
    p["status"]["phase"] = phase
    await client.update(p, "status")


def test_amounts_render_as_kubernetes_quantities() -> None:
    assert format_amount("requests.cpu", 1.5) == "1500m"
    assert format_amount("requests.cpu", 2.0) == "2"
    assert format_amount("requests.cpu", 0.0) == "0"
    assert format_amount("requests.memory", 256 * 2**20) == "256Mi"
    assert format_amount("requests.memory", 2**30) == "1Gi"
    assert format_amount("requests.memory", 1536 * 2**20) == "1536Mi"
    assert format_amount("requests.memory", 500e6) == "500M"
    assert format_amount("requests.memory", 1234.0) == "1234"
    assert format_amount("pods", 3.0) == "3"
    finished = {**pod("done", "1"), "status": {"phase": "Failed"}}
    st = quota_status({"cpu": "4", "services": "2", "count/pods": "9"}, [pod("a", "250m"), finished])
    assert st == {
        "hard": {"cpu": "4", "services": "2", "count/pods": "9"},
        "used": {"cpu": "250m", "count/pods": "1"},
    }


async def test_used_follows_pods(client: Client, ns: str, kubelet: FakeKubelet) -> None:
    hard = {"pods": "10", "requests.cpu": "4", "requests.memory": "4Gi", "services": "5"}
    await client.create(quota("compute", hard), namespace=ns)
    # Untracked resources are in status.hard but not in status.used.
    await wait_status(client, ns, "compute", {"pods": "0", "requests.cpu": "0", "requests.memory": "0"})

    await client.create(pod("a", "500m", "256Mi"), namespace=ns)
    await client.create(pod("b", "1", "768Mi"), namespace=ns)
    await client.create(pod("c", "250m", "1Gi"), namespace=ns)
    await wait_status(client, ns, "compute", {"pods": "3", "requests.cpu": "1750m", "requests.memory": "2Gi"})

    await set_phase(client, ns, "a", "Succeeded")
    await wait_status(
        client, ns, "compute", {"pods": "2", "requests.cpu": "1250m", "requests.memory": "1792Mi"}
    )
    await set_phase(client, ns, "c", "Failed")
    await wait_status(client, ns, "compute", {"pods": "1", "requests.cpu": "1", "requests.memory": "768Mi"})

    await client.delete("pods", "b", namespace=ns)  # bound: the kubelet removes it
    await wait_status(client, ns, "compute", {"pods": "0", "requests.cpu": "0", "requests.memory": "0"})


async def test_spec_hard_change_updates_status(client: Client, ns: str) -> None:
    await client.create(quota("q", {"count/pods": "2"}), namespace=ns)
    await client.create(pod("p"), namespace=ns)
    await wait_status(client, ns, "q", {"count/pods": "1"})

    q = await client.get("resourcequotas", "q", namespace=ns)
    q["spec"]["hard"] = {"count/pods": "5", "cpu": "2", "memory": "1Gi"}
    await client.update(q)
    # Keys of used follow spec.hard, aliases included.
    await wait_status(client, ns, "q", {"count/pods": "1", "cpu": "0", "memory": "0"})
    await client.create(pod("r", "250m", "64Mi"), namespace=ns)
    await wait_status(client, ns, "q", {"count/pods": "2", "cpu": "250m", "memory": "64Mi"})


async def test_namespaces_and_tenants_do_not_mix(client: Client, ns: str) -> None:
    other = f"{ns}-b"
    tenant = f"qt{int(time.time() * 1000) % 100000}"
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
    await client.create({"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": tenant}})
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, tenant=tenant)
    hard = {"pods": "10", "requests.cpu": "10"}
    await client.create(quota("q", hard), namespace=ns)
    await client.create(quota("q", hard), namespace=other)
    await client.create(quota("q", hard), namespace=ns, tenant=tenant)

    await client.create(pod("p0", "100m"), namespace=ns)
    for i in range(2):
        await client.create(pod(f"p{i}", "200m"), namespace=other)
    for i in range(3):
        await client.create(pod(f"p{i}", "1"), namespace=ns, tenant=tenant)

    await wait_status(client, ns, "q", {"pods": "1", "requests.cpu": "100m"})
    await wait_status(client, other, "q", {"pods": "2", "requests.cpu": "400m"})
    await wait_status(client, ns, "q", {"pods": "3", "requests.cpu": "3"}, tenant=tenant)

    # A change in one tenant's namespace leaves the same-named namespace of the other alone.
    await client.delete("pods", "p0", namespace=ns, tenant=tenant)
    await wait_status(client, ns, "q", {"pods": "2", "requests.cpu": "2"}, tenant=tenant)
    await wait_status(client, ns, "q", {"pods": "1", "requests.cpu": "100m"})
