"""``kubectl drain`` through ``pods/eviction`` honouring PodDisruptionBudgets, and ``kubectl rollout
undo`` reusing the old ReplicaSet, against an ``init``-started cluster with two (hollow) nodes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.compat.conftest import Compat, needs_kubectl
from tests.helpers import eventually_sync

pytestmark = [pytest.mark.slow, needs_kubectl]


def _pods(c: Compat, ns: str, app: str) -> list[dict[str, Any]]:
    out = c.kubectl("get", "pods", "-n", ns, "-l", f"app={app}", "-o", "json").stdout
    return list(json.loads(out)["items"])


def _ready(p: dict[str, Any]) -> bool:
    conds = (p.get("status") or {}).get("conditions") or []
    return not p["metadata"].get("deletionTimestamp") and any(
        x.get("type") == "Ready" and x.get("status") == "True" for x in conds
    )


def _wait_ready(c: Compat, ns: str, app: str, n: int) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        pods = [p for p in _pods(c, ns, app) if _ready(p)]
        return pods if len(pods) == n else None

    return eventually_sync(ready, 60, 0.3, f"{n} ready pods of {app}")


def test_eviction_honours_the_budget(compat: Compat, ns: str) -> None:
    c = compat
    c.kubectl("create", "deployment", "ev", "--image=nginx", "--replicas=2", "-n", ns)
    pods = _wait_ready(c, ns, "ev", 2)
    c.kubectl("create", "pdb", "ev", "--selector=app=ev", "--min-available=2", "-n", ns)
    out = c.kubectl("get", "pdb", "ev", "-n", ns).stdout.splitlines()
    assert out[0].split() == [
        "NAME",
        "MIN",
        "AVAILABLE",
        "MAX",
        "UNAVAILABLE",
        "ALLOWED",
        "DISRUPTIONS",
        "AGE",
    ]
    assert out[1].split()[1:4] == ["2", "N/A", "0"], out
    status = c.ok("GET", f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/ev")["status"]
    assert (status["expectedPods"], status["currentHealthy"], status["desiredHealthy"]) == (2, 2, 2)
    victim = pods[0]["metadata"]["name"]
    path = f"/api/v1/namespaces/{ns}/pods/{victim}/eviction"
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": victim, "namespace": ns}}
    r = c.req("POST", path, json=body)
    assert r.status_code == 429 and r.json()["reason"] == "TooManyRequests", r.text
    assert r.json()["details"]["causes"][0]["reason"] == "DisruptionBudget"
    assert victim in {p["metadata"]["name"] for p in _pods(c, ns, "ev")}  # still there
    # a dry run of an allowed eviction changes nothing
    c.ok(
        "PATCH",
        f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/ev",
        json={"spec": {"minAvailable": 1}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    r = c.req("POST", path + "?dryRun=All", json=body)
    assert r.status_code == 201, r.text
    assert not c.ok("GET", f"/api/v1/namespaces/{ns}/pods/{victim}")["metadata"].get("deletionTimestamp")
    # allowed now: the budget is spent (CAS on its status) and the pod goes
    r = c.req("POST", path, json=body)
    assert r.status_code == 201 and r.json()["status"] == "Success", r.text
    st = c.ok("GET", f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/ev")["status"]
    assert victim in st["disruptedPods"] and st["disruptionsAllowed"] == 0
    # the other pod may not follow until a replacement is Ready
    other = pods[1]["metadata"]["name"]
    body2 = {**body, "metadata": {"name": other, "namespace": ns}}
    r = c.req("POST", f"/api/v1/namespaces/{ns}/pods/{other}/eviction", json=body2)
    assert r.status_code == 429, r.text
    # a mismatched name is a bad request; an unknown pod is 404
    assert c.req("POST", path.replace(victim, other), json=body).status_code == 400
    assert (
        c.req("POST", path.replace(victim, "nope"), json={**body, "metadata": {"name": "nope"}}).status_code
        == 404
    )


def test_kubectl_drain(compat: Compat, ns: str) -> None:
    c = compat
    c.kubectl("create", "deployment", "dr", "--image=nginx", "--replicas=3", "-n", ns)
    pods = _wait_ready(c, ns, "dr", 3)
    c.kubectl("create", "pdb", "dr", "--selector=app=dr", "--max-unavailable=1", "-n", ns)
    nodes = sorted({p["spec"]["nodeName"] for p in pods})
    # the node holding most of them: the budget makes drain evict them one at a time
    node = max(nodes, key=lambda n: sum(p["spec"]["nodeName"] == n for p in pods))
    try:
        r = c.kubectl(
            "drain",
            node,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--pod-selector=app=dr",
            "--timeout=90s",
            timeout=120,
        )
        assert f"node/{node} drained" in r.stdout, r.stdout + r.stderr
        assert "evicted" in r.stdout
        assert (
            json.loads(c.kubectl("get", "node", node, "-o", "json").stdout)["spec"]["unschedulable"] is True
        )
        left = _wait_ready(c, ns, "dr", 3)
        assert all(p["spec"]["nodeName"] != node for p in left), [p["spec"]["nodeName"] for p in left]
    finally:
        c.kubectl("uncordon", node)


def test_rollout_undo_reuses_the_old_replicaset(compat: Compat, ns: str) -> None:
    c = compat
    c.kubectl("create", "deployment", "ru", "--image=nginx:1.26", "--replicas=1", "-n", ns)

    def replicasets() -> dict[str, dict[str, Any]]:
        out = c.kubectl("get", "rs", "-n", ns, "-l", "app=ru", "-o", "json").stdout
        return {r["metadata"]["name"]: r for r in json.loads(out)["items"]}

    first = eventually_sync(lambda: replicasets() or None, 30, 0.3, "the first ReplicaSet")
    c.kubectl("set", "image", "deployment/ru", "nginx=nginx:1.27", "-n", ns)
    eventually_sync(lambda: len(replicasets()) == 2 or None, 30, 0.3, "the second ReplicaSet")
    c.kubectl("rollout", "undo", "deployment/ru", "-n", ns)

    def rolled_back() -> dict[str, dict[str, Any]] | None:
        rs = replicasets()
        old = rs.get(next(iter(first)))
        return rs if old and (old["spec"].get("replicas") or 0) == 1 else None

    rs = eventually_sync(rolled_back, 30, 0.3, "the old ReplicaSet scaled back up")
    assert len(rs) == 2, sorted(rs)  # no third ReplicaSet
    d = json.loads(c.kubectl("get", "deployment", "ru", "-n", ns, "-o", "json").stdout)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    history = c.kubectl("rollout", "history", "deployment/ru", "-n", ns).stdout.split()
    assert "3" in history and "1" not in history[history.index("CHANGE-CAUSE") + 1 :: 2], history
