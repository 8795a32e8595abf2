"""The disruption controller keeps PodDisruptionBudget status current as pods change.

A real API server and the controller manager (a real process running only the disruption and
ReplicaSet controllers) run for the module; :class:`FakeKubelet` (the controller tests'
``client``, ``ns`` and ``kubelet`` fixtures, shared through ``tests/metrics/conftest.py``) binds
the namespace's pods and reports them Running and Ready. Each budget is created before its pods
exist, so the numbers the API server computes at creation are all zero: everything after that
is the controller's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctl.client import Client
from tests.cluster import ApiServerProcess, RoleProcess
from tests.controllers.conftest import FakeKubelet, eventually, replicaset, running_status

LABELS = {"app": "web"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServerProcess, RoleProcess]]:
    """The API server and a controller manager running only the disruption and ReplicaSet controllers."""
    d: Path = tmp_path_factory.mktemp("pdb")
    api = ApiServerProcess(d).start()
    ctrl = RoleProcess(
        "controllers", ["--server", api.url, "--controllers", "disruption,replicaset"], d / "controllers.log"
    ).start()
    try:
        yield api, ctrl
    finally:
        ctrl.stop()
        api.stop()
        log = ctrl.log()
        assert "Traceback" not in log, log[-6000:]


def pdb(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": LABELS}, **spec},
    }


async def wait_numbers(client: Client, ns: str, name: str, want: dict[str, int], timeout: float = 15) -> None:
    last: list[Any] = [None]

    async def numbers() -> bool:
        st = (await client.get("poddisruptionbudgets", name, namespace=ns)).get("status") or {}
        last[0] = {k: st.get(k) for k in want}
        return bool(last[0] == want)

    await eventually(
        numbers, timeout, 0.1, f"pdb {ns}/{name} to show {want}", diag=lambda: f"last: {last[0]}"
    )


async def running(client: Client, ns: str) -> list[dict[str, Any]]:
    items = (await client.list("pods", ns))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


async def test_status_follows_pods_readiness_and_spec(client: Client, kubelet: FakeKubelet) -> None:
    ns = kubelet.namespace
    created = await client.create(pdb("web", minAvailable=2), namespace=ns)
    assert (created.get("status") or {}).get("expectedPods") == 0  # nothing existed yet
    await client.create(replicaset("web", 3, LABELS), namespace=ns)
    await wait_numbers(
        client,
        ns,
        "web",
        {"expectedPods": 3, "currentHealthy": 3, "desiredHealthy": 2, "disruptionsAllowed": 1},
    )
    st = (await client.get("poddisruptionbudgets", "web", namespace=ns))["status"]
    assert st["conditions"][0]["type"] == "DisruptionAllowed" and st["conditions"][0]["status"] == "True"

    # one pod stops being Ready: no disruption is allowed any more
    pods = await running(client, ns)
    victim = pods[0]
    victim["status"] = running_status(victim, ready=False)
    await client.update(victim, "status")
    await wait_numbers(client, ns, "web", {"currentHealthy": 2, "disruptionsAllowed": 0})
    st = (await client.get("poddisruptionbudgets", "web", namespace=ns))["status"]
    assert st["conditions"][0]["status"] == "False" and st["conditions"][0]["reason"] == "InsufficientPods"

    # the budget's own spec changes: maxUnavailable 50% of 3 rounds up to 2, so 1 must stay healthy
    cur = await client.get("poddisruptionbudgets", "web", namespace=ns)
    cur["spec"] = {"selector": {"matchLabels": LABELS}, "maxUnavailable": "50%"}
    await client.update(cur)
    await wait_numbers(client, ns, "web", {"desiredHealthy": 1, "currentHealthy": 2, "disruptionsAllowed": 1})

    # a pod leaves the selector (its labels change): the ReplicaSet makes another, the budget counts it
    other = next(p for p in await running(client, ns) if p["metadata"]["name"] != victim["metadata"]["name"])
    await client.patch("pods", other["metadata"]["name"], {"metadata": {"labels": {"app": "gone"}}}, ns)
    await wait_numbers(client, ns, "web", {"expectedPods": 3, "currentHealthy": 2})


async def test_deleted_pods_and_scale_down_are_counted(client: Client, kubelet: FakeKubelet) -> None:
    ns = kubelet.namespace
    await client.create(pdb("db", maxUnavailable=1), namespace=ns)
    await client.create(replicaset("db", 4, LABELS), namespace=ns)
    await wait_numbers(
        client,
        ns,
        "db",
        {"expectedPods": 4, "currentHealthy": 4, "desiredHealthy": 3, "disruptionsAllowed": 1},
    )
    rs = await client.get("replicasets", "db", namespace=ns)
    rs["spec"]["replicas"] = 2
    await client.update(rs)
    await wait_numbers(
        client,
        ns,
        "db",
        {"expectedPods": 2, "currentHealthy": 2, "desiredHealthy": 1, "disruptionsAllowed": 1},
    )
    # a budget that selects nothing in its namespace
    await client.create(
        {
            **pdb("none", minAvailable=1),
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "minAvailable": 1},
        },
        namespace=ns,
    )
    await wait_numbers(client, ns, "none", {"expectedPods": 0, "currentHealthy": 0, "disruptionsAllowed": 0})
