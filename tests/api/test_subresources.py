"""Subresources: status (spec and status are written separately), scale (Scale objects
for Deployments and ReplicaSets), binding (scheduling a pod), on the embedded store."""

from __future__ import annotations

import pytest

from tests.api.conftest import Http, configmap, deployment, pod, status_of
from tests.cluster import ApiServerProcess


@pytest.fixture(scope="module")
def api(apiserver: ApiServerProcess) -> ApiServerProcess:
    return apiserver


def test_status_subresource_separates_spec_and_status(http: Http, ns: str) -> None:
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    d = http.post(base, deployment("s", 2)).json()
    # the main resource ignores status
    d["status"] = {"replicas": 7}
    d["spec"]["replicas"] = 3
    d2 = http.put(f"{base}/s", d).json()
    assert d2["spec"]["replicas"] == 3 and (d2.get("status") or {}).get("replicas") is None
    # the status subresource changes status only (a spec change in the body is ignored)
    d2["status"] = {"replicas": 3, "readyReplicas": 1}
    d2["spec"]["replicas"] = 9
    r = http.put(f"{base}/s/status", d2)
    assert r.status_code == 200, r.text
    d3 = r.json()
    assert d3["status"] == {"replicas": 3, "readyReplicas": 1} and d3["spec"]["replicas"] == 3
    assert d3["metadata"]["generation"] == d2["metadata"]["generation"]
    # GET of /status returns the object; a stale status write is 409
    assert http.get(f"{base}/s/status").json()["status"]["readyReplicas"] == 1
    d2["status"] = {"replicas": 0}
    r = http.put(f"{base}/s/status", d2)
    assert r.status_code == 409 and status_of(r)["reason"] == "Conflict"
    # merge patch on /status
    r = http.patch(f"{base}/s/status", {"status": {"readyReplicas": 3}})
    assert r.json()["status"] == {"replicas": 3, "readyReplicas": 3}


def test_scale_subresource(http: Http, ns: str) -> None:
    for plural, body in (
        ("deployments", deployment("sc", 2)),
        ("replicasets", {**deployment("rs", 2), "kind": "ReplicaSet"}),
    ):
        base = f"/apis/apps/v1/namespaces/{ns}/{plural}"
        name = body["metadata"]["name"]
        assert http.post(base, body).status_code == 201
        sc = http.get(f"{base}/{name}/scale").json()
        assert (sc["kind"], sc["apiVersion"]) == ("Scale", "autoscaling/v1")
        assert sc["spec"]["replicas"] == 2 and sc["status"]["selector"] == "app=web"
        sc["spec"]["replicas"] = 5
        r = http.put(f"{base}/{name}/scale", sc)
        assert r.status_code == 200 and r.json()["spec"]["replicas"] == 5
        assert http.get(f"{base}/{name}").json()["spec"]["replicas"] == 5
        r = http.patch(f"{base}/{name}/scale", {"spec": {"replicas": 1}})
        assert r.status_code == 200 and r.json()["spec"]["replicas"] == 1
        # stale scale (resourceVersion of the first read) is 409
        r = http.put(f"{base}/{name}/scale", sc)
        assert r.status_code == 409 and status_of(r)["reason"] == "Conflict"
        r = http.put(f"{base}/{name}/scale", {"spec": {"replicas": -1}})
        assert r.status_code == 422 and "spec.replicas" in status_of(r)["message"]
        assert http.get(f"{base}/{name}").json()["spec"]["replicas"] == 1
    # kinds without a scale subresource
    r = http.get(f"/api/v1/namespaces/{ns}/configmaps/x/scale")
    assert r.status_code == 404


def test_binding(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    http.post(path, pod("b1"))
    bind = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "b1"},
        "target": {"kind": "Node", "name": "node-1"},
    }
    r = http.post(f"{path}/b1/binding", bind)
    assert r.status_code == 201 and r.json()["status"] == "Success"
    p = http.get(f"{path}/b1").json()
    assert p["spec"]["nodeName"] == "node-1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in p["status"]["conditions"])
    # binding twice is a conflict; nodeName cannot be changed by an update either
    r = http.post(f"{path}/b1/binding", {**bind, "target": {"kind": "Node", "name": "node-2"}})
    assert r.status_code == 409 and "already assigned" in status_of(r)["message"]
    p["spec"]["nodeName"] = "node-2"
    r = http.put(f"{path}/b1", p)
    assert r.status_code == 422 and "spec.nodeName" in status_of(r)["message"]
    # missing target, missing pod
    http.post(path, pod("b2"))
    r = http.post(f"{path}/b2/binding", {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b2"}})
    assert r.status_code == 422 and "target.name" in status_of(r)["message"]
    r = http.post(f"{path}/nope/binding", bind)
    assert r.status_code == 404
    assert "nodeName" not in http.get(f"{path}/b2").json()["spec"]


def test_unknown_subresource_is_404(http: Http, ns: str) -> None:
    http.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("u"))
    r = http.get(f"/api/v1/namespaces/{ns}/configmaps/u/bogus")
    assert r.status_code == 404 and "bogus" in status_of(r)["message"]
