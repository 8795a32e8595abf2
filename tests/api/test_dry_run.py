"""``dryRun=All`` on every verb and subresource: the answer shows what would happen, nothing is stored.

Against a real API server (embedded store): after each dry-run request a normal GET (or
LIST) shows the object exactly as before, with the same resourceVersion.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Http, configmap, deployment, names, pod
from tests.cluster import ApiServerProcess

DRY = {"dryRun": "All"}


@pytest.fixture(scope="module")
def api(apiserver: ApiServerProcess) -> ApiServerProcess:
    return apiserver


def get(http: Http, path: str) -> dict[str, Any]:
    r = http.get(path)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_create_update_patch(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    r = http.post(path, configmap("dry", k="v"), params=DRY)
    assert r.status_code == 201 and r.json()["data"] == {"k": "v"}
    assert http.get(f"{path}/dry").status_code == 404
    before = http.post(path, configmap("real", k="v")).json()
    new = dict(before, data={"k": "changed"})
    r = http.put(f"{path}/real", new, params=DRY)
    assert r.status_code == 200 and r.json()["data"] == {"k": "changed"}
    r = http.patch(f"{path}/real", {"data": {"p": "1"}}, params=DRY)
    assert r.status_code == 200 and r.json()["data"] == {"k": "v", "p": "1"}
    assert get(http, f"{path}/real") == before


def test_delete_and_delete_collection(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    for n in ("a", "b"):
        http.post(path, configmap(n, {"x": "y"}))
    before = get(http, f"{path}/a")
    r = http.delete(f"{path}/a", params=DRY)
    assert r.status_code == 200 and r.json()["metadata"]["name"] == "a"
    r = http.delete(f"{path}/a", {"dryRun": ["All"]})
    assert r.status_code == 200
    r = http.delete(path, params={"labelSelector": "x=y", **DRY})
    assert r.status_code == 200
    assert sorted(o["metadata"]["name"] for o in r.json()["items"]) == ["a", "b"]
    assert names(http, path) == ["a", "b"]
    assert get(http, f"{path}/a") == before


def test_graceful_delete_of_a_bound_pod_shows_the_deletion_timestamp(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    http.post(path, pod("bound", nodeName="node-1"))
    before = get(http, f"{path}/bound")
    r = http.delete(f"{path}/bound", params={"gracePeriodSeconds": "7", **DRY})
    assert r.status_code == 200
    md = r.json()["metadata"]
    assert md["deletionTimestamp"] and md["deletionGracePeriodSeconds"] == 7
    assert get(http, f"{path}/bound") == before


def test_namespace_delete_is_dry(http: Http, ns: str) -> None:
    r = http.delete(f"/api/v1/namespaces/{ns}", params=DRY)
    assert r.status_code == 200
    assert r.json()["status"]["phase"] == "Terminating"
    assert "deletionTimestamp" not in get(http, f"/api/v1/namespaces/{ns}")["metadata"]


def test_scale_subresource(http: Http, ns: str) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    http.post(path, deployment("web", replicas=2))
    before = get(http, f"{path}/web")
    scale = get(http, f"{path}/web/scale")
    r = http.put(f"{path}/web/scale", dict(scale, spec={"replicas": 9}), params=DRY)
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 9
    r = http.patch(f"{path}/web/scale", {"spec": {"replicas": 5}}, params=DRY)
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 5
    assert get(http, f"{path}/web") == before
    assert get(http, f"{path}/web/scale")["spec"]["replicas"] == 2


def test_status_subresource(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    http.post(path, pod("p"))
    before = get(http, f"{path}/p")
    r = http.put(f"{path}/p/status", dict(before, status={"phase": "Running"}), params=DRY)
    assert r.status_code == 200 and r.json()["status"]["phase"] == "Running"
    r = http.patch(f"{path}/p/status", {"status": {"phase": "Failed"}}, params=DRY)
    assert r.status_code == 200 and r.json()["status"]["phase"] == "Failed"
    assert get(http, f"{path}/p") == before


def test_binding(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    http.post(path, pod("unbound"))
    before = get(http, f"{path}/unbound")
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "unbound"},
        "target": {"name": "n1"},
    }
    r = http.post(f"{path}/unbound/binding", binding, params=DRY)
    assert r.status_code == 201, r.text
    assert get(http, f"{path}/unbound") == before
    # A dry-run binding is still checked: no target is 422.
    r = http.post(f"{path}/unbound/binding", {"target": {}}, params=DRY)
    assert r.status_code == 422
