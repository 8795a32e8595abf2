"""A ReplicaSet whose creates the API server refuses backs off instead of retrying hot.

The controllers run as a real process against a real API server; a ResourceQuota of one pod
refuses the second and third pods of a 3-replica set. Before the back-off the controller
retried about 300 creates a second (1,250 Events for ``example-rs``); now its FailedCreate
Events over several seconds are counted on the server (each Event's ``count`` included, in
case the recorder aggregates), and once the quota fits, the missing pods still come.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import yaml

from ctl.client import Client
from ctl.controllers.replicaset import BACKOFF_MAX
from tests.cluster import ROOT
from tests.controllers.conftest import eventually, live, pods_of, replicaset


async def _failed_creates(client: Client, ns: str) -> int:
    events = (await client.list("events", namespace=ns))["items"]
    return sum(int(e.get("count") or 1) for e in events if e.get("reason") == "FailedCreate")


def _quota(pods: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "q"},
        "spec": {"hard": {"pods": pods}},
    }


async def test_failed_creates_back_off_exponentially(client: Client, ns: str) -> None:
    await client.create(_quota("1"), namespace=ns)
    await eventually(
        lambda: _quota_ready(client, ns), 20, 0.2, "quota status"
    )  # admission counts against the quota's status
    await client.create(replicaset("boff", 3, {"app": "boff"}), namespace=ns)
    await eventually(lambda: _failed_creates(client, ns), 20, 0.1, "a FailedCreate event")
    start = time.monotonic()
    first = await _failed_creates(client, ns)
    await asyncio.sleep(6)
    window = time.monotonic() - start
    failed = await _failed_creates(client, ns) - first
    # retries at about 1, 2, 4 s after the first failure: at most 4 more in 6 s (hundreds without back-off)
    assert failed <= 5, f"{failed} failed creates in {window:.1f}s: no back-off"
    assert len(live(await pods_of(client, ns, "app=boff"))) == 1
    rs = await client.get("replicasets", "boff", namespace=ns)
    conds = {c["type"]: c for c in (rs.get("status") or {}).get("conditions") or []}
    assert conds.get("ReplicaFailure", {}).get("status") == "True", rs.get("status")
    assert "quota" in conds["ReplicaFailure"]["message"], conds
    # once the quota fits, the back-off (at most BACKOFF_MAX) ends in the missing pods
    q = await client.get("resourcequotas", "q", namespace=ns)
    q["spec"]["hard"]["pods"] = "3"
    await client.update(q)

    async def three() -> bool:
        return len(live(await pods_of(client, ns, "app=boff"))) == 3

    await eventually(three, BACKOFF_MAX, 0.5, "3 pods once the quota fits")
    # success reset the back-off: one more replica than the quota fails again at once
    rs = await client.get("replicasets", "boff", namespace=ns)
    rs["spec"]["replicas"] = 4
    await client.update(rs)
    await eventually(
        lambda: _has_condition(client, ns), 5, 0.2, "ReplicaFailure at 4 replicas under a quota of 3"
    )


async def _quota_ready(client: Client, ns: str) -> bool:
    q = await client.get("resourcequotas", "q", namespace=ns)
    return bool((q.get("status") or {}).get("hard"))


async def _has_condition(client: Client, ns: str) -> bool:
    rs = await client.get("replicasets", "boff", namespace=ns)
    return any(
        c.get("type") == "ReplicaFailure" and c.get("status") == "True"
        for c in (rs.get("status") or {}).get("conditions") or []
    )


async def test_example_replicaset_gets_its_pods_under_the_example_quota(client: Client) -> None:
    """manifests/examples/: example-rs used to get no pod at all under example-quota (requests.cpu)."""
    docs = []
    for f in ("00-namespace.yaml", "quota.yaml", "replicaset.yaml"):
        docs += [d for d in yaml.safe_load_all((ROOT / "manifests" / "examples" / f).read_text()) if d]
    for d in docs:
        if d["kind"] in ("Namespace", "ResourceQuota", "ReplicaSet"):
            await client.create(d, namespace=d["metadata"].get("namespace"))

    async def two() -> bool:
        return len(live(await pods_of(client, "examples", "app=example-rs"))) == 2

    await eventually(two, 20, 0.2, "example-rs' 2 pods under example-quota")
    assert await _failed_creates(client, "examples") == 0
