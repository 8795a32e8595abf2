"""DaemonSet and StatefulSet end to end on a real ``init`` cluster with runc pods.

One cluster for the module (``centaurusctl init --detach``: the runc node agent plus two hollow
nodes). User steps go through the CLI (``apply``, ``label``, ``rollout status``, ``get``,
``delete``); the tests look at runc's own state to prove the local node's pods are real
containers. A DaemonSet runs a pod on every node (the runc node and both hollow ones) and
rolls out a new template; a second one follows a label as it is put on and taken off the
runc node; a StatefulSet starts ``NAME-0`` and ``NAME-1`` in order on the runc node, and a
deleted pod comes back under its name with its claim. The last test deletes everything, runs
``down`` and checks that nothing is left on the machine.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import E2ECluster, cluster_factory, is_ready, require_root_runc, wait_for

_fixtures = (cluster_factory,)  # the e2e harness fixture, used by name below

pytestmark = [pytest.mark.e2e, pytest.mark.root]

NS = "apps-e2e"
LOOP = 'trap "exit 0" TERM; echo started-$VERSION; while true; do sleep 0.2; done'


@pytest.fixture(scope="module")
def cluster(cluster_factory: Any) -> E2ECluster:
    require_root_runc()
    c: E2ECluster = cluster_factory(["--runtime", "runc", "--hollow-nodes", "2"])
    wait_for(lambda: len(_ready_nodes(c)) >= 3, 60, "the local node and two hollow nodes to be Ready")
    c.ctl("create", "namespace", NS)
    return c


def _ready_nodes(c: E2ECluster) -> list[str]:
    out = []
    for n in c.api.list("nodes")["items"]:
        conds = (n.get("status") or {}).get("conditions") or []
        if any(x.get("type") == "Ready" and x.get("status") == "True" for x in conds):
            out.append(n["metadata"]["name"])
    return sorted(out)


def _template(app: str, version: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:latest",
                    "command": ["sh", "-c", LOOP],
                    "env": [{"name": "VERSION", "value": version}],
                }
            ],
            **spec,
        },
    }


def daemonset(app: str, version: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": app, "namespace": NS},
        "spec": {"selector": {"matchLabels": {"app": app}}, "template": _template(app, version, **spec)},
    }


def runc_id(p: dict[str, Any]) -> str:
    for cs in (p.get("status") or {}).get("containerStatuses") or []:
        if cs["name"] == "main":
            return str(cs.get("containerID", "")).split("://", 1)[-1]
    return ""


def ready_pods(c: E2ECluster, selector: str, n: int, timeout: float = 60) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        pods = c.pods(NS, selector)
        return pods if len(pods) == n and all(is_ready(p) for p in pods) else None

    return wait_for(check, timeout, f"{n} ready pods {selector}", diag=lambda: c.describe_pods(NS))


def _version(p: dict[str, Any]) -> str:
    return str(p["spec"]["containers"][0]["env"][0]["value"])


def test_daemonset_on_every_node_and_rolling_update(cluster: E2ECluster) -> None:
    c = cluster
    nodes = _ready_nodes(c)
    out = c.apply(daemonset("agent", "v1"))
    assert "daemonset.apps/agent created" in out, out
    pods = ready_pods(c, "app=agent", len(nodes))
    assert sorted(p["spec"]["nodeName"] for p in pods) == nodes
    local = next(p for p in pods if p["spec"]["nodeName"] == c.node)
    assert c.runc_containers().get(runc_id(local)) == "running"
    got = c.ctl("get", "ds", "agent", "-n", NS).stdout
    n = len(nodes)
    assert re.search(rf"agent\s+{n}\s+{n}\s+{n}\s+{n}\s+{n}\s", got), got

    c.apply(daemonset("agent", "v2"))
    r = c.ctl("rollout", "status", "daemonset/agent", "-n", NS, "--timeout", "120s")
    assert 'daemon set "agent" successfully rolled out' in r.stdout, r.stdout
    pods = ready_pods(c, "app=agent", n)
    assert {_version(p) for p in pods} == {"v2"}
    new_local = next(p for p in pods if p["spec"]["nodeName"] == c.node)
    assert runc_id(new_local) != runc_id(local)
    wait_for(
        lambda: runc_id(local) not in c.runc_containers(),
        30,
        "the old pod's container to be removed by runc",
        diag=lambda: repr(c.runc_containers()),
    )
    hist = c.ctl("rollout", "history", "ds/agent", "-n", NS).stdout
    assert [ln.split()[0] for ln in hist.splitlines()[2:] if ln.strip()] == ["1", "2"], hist


def test_daemonset_follows_a_node_label(cluster: E2ECluster) -> None:
    c = cluster
    c.apply(daemonset("labelled", "v1", nodeSelector={"apps-e2e/agent": "yes"}))
    c.ctl("label", "node", c.node, "apps-e2e/agent=yes")
    pod = ready_pods(c, "app=labelled", 1)[0]
    assert pod["spec"]["nodeName"] == c.node
    cid = runc_id(pod)
    assert c.runc_containers().get(cid) == "running"
    c.ctl("label", "node", c.node, "apps-e2e/agent-")
    wait_for(lambda: not c.pods(NS, "app=labelled"), 60, "the pod to leave the unlabelled node")
    wait_for(lambda: cid not in c.runc_containers(), 30, "its container to be removed by runc")


def test_statefulset_ordered_with_stable_names_and_claims(cluster: E2ECluster) -> None:
    c = cluster
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": NS},
        "spec": {
            "replicas": 2,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": _template("db", "v1", nodeSelector={"kubernetes.io/hostname": c.node}),
            "volumeClaimTemplates": [
                {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "16Mi"}}}}
            ],
        },
    }
    c.apply(sts)
    pods = ready_pods(c, "app=db", 2, timeout=90)
    assert sorted(p["metadata"]["name"] for p in pods) == ["db-0", "db-1"]
    by_name = {p["metadata"]["name"]: p for p in pods}
    # OrderedReady: db-1 was created only after db-0 was ready
    ready0 = next(x for x in by_name["db-0"]["status"]["conditions"] if x["type"] == "Ready")
    assert by_name["db-1"]["metadata"]["creationTimestamp"] >= ready0["lastTransitionTime"][:19] + "Z"
    for p in pods:
        assert c.runc_containers().get(runc_id(p)) == "running"
    claims = {
        x["metadata"]["name"]: x["metadata"]["uid"] for x in c.api.list("persistentvolumeclaims", NS)["items"]
    }
    assert sorted(claims) == ["data-db-0", "data-db-1"]
    old = by_name["db-0"]
    c.ctl("delete", "pod", "db-0", "-n", NS)

    def back() -> dict[str, Any] | None:
        p = c.pod(NS, "db-0")
        ok = p and p["metadata"]["uid"] != old["metadata"]["uid"] and is_ready(p)
        return p if ok else None

    new = wait_for(back, 60, "db-0 to come back", diag=lambda: c.describe_pods(NS))
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}} in new["spec"]["volumes"]
    after = {
        x["metadata"]["name"]: x["metadata"]["uid"] for x in c.api.list("persistentvolumeclaims", NS)["items"]
    }
    assert after == claims
    got = c.ctl("get", "sts", "db", "-n", NS).stdout
    assert re.search(r"db\s+2/2\s", got), got


def test_teardown_leaves_nothing_behind(cluster: E2ECluster) -> None:
    assert cluster.pod_uids, "the pod recorder saw no pods"
    cluster.teardown()
