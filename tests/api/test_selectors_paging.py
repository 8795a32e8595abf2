"""Label and field selectors (metadata.name, metadata.namespace, spec.nodeName,
status.phase), limit/continue paging with a consistent snapshot, and the list across
tenants, on the embedded store."""

from __future__ import annotations

import pytest

from tests.api.conftest import Http, configmap, names, pod, status_of
from tests.cluster import ApiServerProcess


@pytest.fixture(scope="module")
def api(apiserver: ApiServerProcess) -> ApiServerProcess:
    return apiserver


def test_label_selectors(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    labels = {
        "a": {"env": "prod", "tier": "web"},
        "b": {"env": "dev", "tier": "web"},
        "c": {"env": "test"},
        "d": {},
    }
    for n, lb in labels.items():
        http.post(path, configmap(n, lb))
    assert names(http, path, labelSelector="env=prod") == ["a"]
    assert names(http, path, labelSelector="env==dev") == ["b"]
    assert names(http, path, labelSelector="env!=prod") == ["b", "c", "d"]
    assert names(http, path, labelSelector="env in (prod,test)") == ["a", "c"]
    assert names(http, path, labelSelector="env notin (prod,test)") == ["b", "d"]
    assert names(http, path, labelSelector="tier") == ["a", "b"]
    assert names(http, path, labelSelector="!tier") == ["c", "d"]
    assert names(http, path, labelSelector="tier=web,env=dev") == ["b"]
    r = http.get(path, params={"labelSelector": "env in (prod"})
    assert r.status_code == 400 and status_of(r)["reason"] == "BadRequest"


def test_field_selectors(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    for n in ("p1", "p2", "p3"):
        http.post(path, pod(n))
    bind = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "p1"},
        "target": {"kind": "Node", "name": "n1"},
    }
    assert http.post(f"{path}/p1/binding", bind).status_code == 201
    assert http.patch(f"{path}/p2/status", {"status": {"phase": "Running"}}).status_code == 200
    assert names(http, path, fieldSelector="metadata.name=p3") == ["p3"]
    assert names(http, path, fieldSelector="metadata.name!=p3") == ["p1", "p2"]
    assert names(http, path, fieldSelector="spec.nodeName=n1") == ["p1"]
    assert names(http, path, fieldSelector="spec.nodeName=") == [
        "p2",
        "p3",
    ]  # unscheduled, as the scheduler asks
    assert names(http, path, fieldSelector="status.phase=Running") == ["p2"]
    assert names(http, path, fieldSelector="status.phase!=Running,spec.nodeName=") == ["p3"]
    # metadata.namespace narrows a list across namespaces
    assert names(http, "/api/v1/pods", fieldSelector=f"metadata.namespace={ns}") == ["p1", "p2", "p3"]
    # label and field selectors combine
    http.post(path, pod("p4", {"x": "y"}))
    assert names(http, path, fieldSelector="status.phase=Pending", labelSelector="x=y") == ["p4"]
    for bad in ("foo=1", "status.phase"):
        r = http.get(path, params={"fieldSelector": bad})
        assert r.status_code == 400 and status_of(r)["reason"] == "BadRequest", bad
    # only the fields Kubernetes supports per kind (plus metadata.tenant), as kube-apiserver
    for p, bad in ((path, "spec.foo=1"), (f"/api/v1/namespaces/{ns}/configmaps", "spec.nodeName=n1")):
        r = http.get(p, params={"fieldSelector": bad})
        msg = status_of(r)["message"]
        assert r.status_code == 400 and msg.startswith(f"field label not supported: {bad.split('=')[0]}"), msg
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    assert http.get(cms, params={"fieldSelector": "metadata.tenant=system"}).status_code == 200


def test_limit_and_continue_pages_a_consistent_snapshot(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(25):
        http.post(path, configmap(f"cm-{i:02d}"))
    first = http.get(path, params={"limit": "10"}).json()
    rv = first["metadata"]["resourceVersion"]
    assert len(first["items"]) == 10 and first["metadata"]["continue"]
    # changes after the first page do not leak into later pages
    http.post(path, configmap("zz-late"))
    http.delete(f"{path}/cm-24")
    seen = [o["metadata"]["name"] for o in first["items"]]
    token = first["metadata"]["continue"]
    pages = 1
    while token:
        page = http.get(path, params={"limit": "10", "continue": token}).json()
        assert page["metadata"]["resourceVersion"] == rv
        seen += [o["metadata"]["name"] for o in page["items"]]
        token = page["metadata"].get("continue")
        pages += 1
    assert pages == 3 and seen == [f"cm-{i:02d}" for i in range(25)]
    # a fresh list sees the changes
    now = names(http, path)
    assert "zz-late" in now and "cm-24" not in now and len(now) == 25
    # limit with a selector pages over the matching objects only
    assert len(http.get(path, params={"limit": "5", "labelSelector": "nope"}).json()["items"]) == 0


def test_bad_paging_parameters(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    r = http.get(path, params={"limit": "ten"})
    assert r.status_code == 400 and "limit" in status_of(r)["message"]
    r = http.get(path, params={"limit": "1", "continue": "not-a-token"})
    assert r.status_code == 400 and "continue" in status_of(r)["message"]


def test_list_across_tenants_for_the_system_tenant(http: Http, ns: str) -> None:
    http.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("everywhere"))
    items = http.get("/api/v1/tenants/all/configmaps").json()["items"]
    assert any(o["metadata"]["name"] == "everywhere" and o["metadata"]["tenant"] == "system" for o in items)
    r = http.post("/api/v1/tenants/all/namespaces/default/configmaps", configmap("nowhere"))
    assert r.status_code == 400 and status_of(r)["reason"] == "BadRequest"
