"""Every verb on real API server processes, on both store backends.

create/get/list/update/patch (merge, JSON, strategic)/delete/deletecollection, the
metadata every object carries (tenant, uid, resourceVersion, generation, hashKey ...),
the tenanted paths of the ``system`` tenant next to the short paths, the three scopes
(namespaced, tenant-scoped, cluster-scoped), generateName, dryRun, 409 on stale writes
and the Unix socket listener.
"""

from __future__ import annotations

import asyncio
import uuid

from ctl.client import Client, ClientConfig
from tests.api.conftest import Http, configmap, deployment, pod, status_of
from tests.cluster import ApiServerProcess


def test_create_get_list_pod_with_full_metadata(http: Http, ns: str) -> None:
    r = http.post(f"/api/v1/namespaces/{ns}/pods", pod("p1", {"app": "a"}))
    assert r.status_code == 201, r.text
    obj = r.json()
    md = obj["metadata"]
    assert (obj["apiVersion"], obj["kind"]) == ("v1", "Pod")
    assert md["name"] == "p1" and md["namespace"] == ns and md["tenant"] == "system"
    assert md["uid"] and md["creationTimestamp"].endswith("Z") and md["generation"] == 1
    assert isinstance(md["hashKey"], int) and int(md["resourceVersion"]) > 0
    assert md["selfLink"] == f"/api/v1/tenants/system/namespaces/{ns}/pods/p1"
    assert obj["status"]["phase"] == "Pending"  # defaulted
    # short path and tenanted path address the same object
    short = http.get(f"/api/v1/namespaces/{ns}/pods/p1").json()
    tenanted = http.get(f"/api/v1/tenants/system/namespaces/{ns}/pods/p1").json()
    assert short == tenanted and short["metadata"]["uid"] == md["uid"]
    assert short["metadata"]["resourceVersion"] == md["resourceVersion"]
    lst = http.get(f"/api/v1/tenants/system/namespaces/{ns}/pods").json()
    assert (lst["kind"], lst["apiVersion"]) == ("PodList", "v1")
    assert int(lst["metadata"]["resourceVersion"]) >= int(md["resourceVersion"])
    assert [p["metadata"]["name"] for p in lst["items"]] == ["p1"]
    # cluster-wide list (all namespaces of the caller's tenant) contains it too
    all_pods = http.get("/api/v1/pods").json()["items"]
    assert any(p["metadata"]["uid"] == md["uid"] for p in all_pods)


def test_create_through_tenanted_path(http: Http, ns: str) -> None:
    r = http.post(f"/api/v1/tenants/system/namespaces/{ns}/configmaps", configmap("cm", k="v"))
    assert r.status_code == 201, r.text
    assert r.json()["metadata"]["tenant"] == "system"
    assert http.get(f"/api/v1/namespaces/{ns}/configmaps/cm").json()["data"] == {"k": "v"}
    # a body naming the tenant explicitly is fine as long as it agrees
    body = configmap("cm2")
    body["metadata"]["tenant"] = "system"
    assert http.post(f"/api/v1/namespaces/{ns}/configmaps", body).status_code == 201


def test_update_bumps_resource_version_and_generation(http: Http, ns: str) -> None:
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    d = http.post(base, deployment("web", 1)).json()
    rv1 = int(d["metadata"]["resourceVersion"])
    d["spec"]["replicas"] = 3
    r = http.put(f"{base}/web", d)
    assert r.status_code == 200, r.text
    d2 = r.json()
    assert int(d2["metadata"]["resourceVersion"]) > rv1
    assert d2["metadata"]["generation"] == 2 and d2["spec"]["replicas"] == 3
    assert d2["metadata"]["uid"] == d["metadata"]["uid"]
    # metadata-only change: generation stays
    d2["metadata"]["labels"]["tier"] = "front"
    d3 = http.put(f"{base}/web", d2).json()
    assert d3["metadata"]["generation"] == 2 and d3["metadata"]["labels"]["tier"] == "front"


def test_stale_update_is_409_conflict_and_not_stored(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    cm = http.post(path, configmap("c", v="1")).json()
    stale = dict(cm, data={"v": "stale"})
    cm["data"] = {"v": "2"}
    assert http.put(f"{path}/c", cm).status_code == 200
    r = http.put(f"{path}/c", stale)
    assert r.status_code == 409
    st = status_of(r)
    assert st["reason"] == "Conflict" and "modified" in st["message"]
    assert http.get(f"{path}/c").json()["data"] == {"v": "2"}
    # an update without a resourceVersion is unconditional
    unconditional = configmap("c", v="3")
    assert http.put(f"{path}/c", unconditional).status_code == 200
    assert http.get(f"{path}/c").json()["data"] == {"v": "3"}


def test_create_twice_is_409_already_exists(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    first = http.post(path, configmap("dup", a="1")).json()
    r = http.post(path, configmap("dup", a="2"))
    assert r.status_code == 409
    st = status_of(r)
    assert st["reason"] == "AlreadyExists" and '"dup" already exists' in st["message"]
    assert http.get(f"{path}/dup").json()["metadata"]["uid"] == first["metadata"]["uid"]


def test_merge_json_and_strategic_patches(http: Http, ns: str) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/pt"
    http.post(f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("pt"))
    # JSON merge patch: set a label, remove nothing else
    r = http.patch(path, {"metadata": {"labels": {"x": "1"}}, "spec": {"replicas": 2}})
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["labels"] == {"app": "web", "x": "1"} and r.json()["spec"]["replicas"] == 2
    # merge patch null deletes
    r = http.patch(path, {"metadata": {"labels": {"x": None}}})
    assert r.json()["metadata"]["labels"] == {"app": "web"}
    # JSON patch (RFC 6902) with a test op
    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 2},
        {"op": "replace", "path": "/spec/replicas", "value": 5},
    ]
    r = http.patch(path, ops, ct="application/json-patch+json")
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 5
    # a failing JSON patch test is 422 and changes nothing
    r = http.patch(
        path, [{"op": "test", "path": "/spec/replicas", "value": 99}], ct="application/json-patch+json"
    )
    assert r.status_code == 422 and status_of(r)["reason"] == "Invalid"
    assert http.get(path).json()["spec"]["replicas"] == 5
    # strategic merge: containers merge by name (a merge patch would replace the list)
    smp = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx:1.28"},
                        {"name": "side", "image": "busybox"},
                    ]
                }
            }
        }
    }
    r = http.patch(path, smp, ct="application/strategic-merge-patch+json")
    assert r.status_code == 200, r.text
    cs = r.json()["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in cs] == [("web", "nginx:1.28"), ("side", "busybox")]
    assert cs[0]["imagePullPolicy"] == "IfNotPresent"  # fields of the merged element are kept
    r = http.patch(
        path,
        {"spec": {"template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}}},
        ct="application/strategic-merge-patch+json",
    )
    assert [c["name"] for c in r.json()["spec"]["template"]["spec"]["containers"]] == ["web"]
    # a patch pinning a stale resourceVersion is 409
    r = http.patch(path, {"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 1}})
    assert r.status_code == 409 and status_of(r)["reason"] == "Conflict"
    assert http.get(path).json()["spec"]["replicas"] == 5
    # patching something missing is 404
    r = http.patch(f"/apis/apps/v1/namespaces/{ns}/deployments/nope", {"spec": {}})
    assert r.status_code == 404 and status_of(r)["reason"] == "NotFound"


def test_delete_and_deletecollection(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(4):
        http.post(path, configmap(f"d{i}", {"grp": "a" if i < 3 else "b"}))
    r = http.delete(f"{path}/d0")
    assert r.status_code == 200 and r.json()["metadata"]["name"] == "d0"
    r = http.get(f"{path}/d0")
    assert (
        r.status_code == 404
        and status_of(r)["reason"] == "NotFound"
        and '"d0" not found' in r.json()["message"]
    )
    assert http.delete(f"{path}/d0").status_code == 404
    r = http.delete(path, params={"labelSelector": "grp=a"})
    assert r.status_code == 200
    assert sorted(o["metadata"]["name"] for o in r.json()["items"]) == ["d1", "d2"]
    assert [o["metadata"]["name"] for o in http.get(path).json()["items"]] == ["d3"]
    # delete with a stale resourceVersion precondition is 409
    cur = http.get(f"{path}/d3").json()
    body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"resourceVersion": "1"}}
    r = http.delete(f"{path}/d3", body)
    assert r.status_code == 409 and status_of(r)["reason"] == "Conflict"
    body["preconditions"] = {
        "uid": cur["metadata"]["uid"],
        "resourceVersion": cur["metadata"]["resourceVersion"],
    }
    assert http.delete(f"{path}/d3", body).status_code == 200


def test_delete_with_finalizer_waits_for_it(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    body = configmap("fin")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    http.post(path, body)
    r = http.delete(f"{path}/fin")
    assert r.status_code == 200 and r.json()["metadata"]["deletionTimestamp"]
    held = http.get(f"{path}/fin").json()
    assert held["metadata"]["deletionTimestamp"]
    r = http.patch(f"{path}/fin", {"metadata": {"finalizers": None}})
    assert r.status_code == 200, r.text
    assert http.get(f"{path}/fin").status_code == 404


def test_generate_name_and_dry_run(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}
    a, b = http.post(path, body).json(), http.post(path, body).json()
    assert a["metadata"]["name"].startswith("gen-") and a["metadata"]["name"] != b["metadata"]["name"]
    r = http.post(path, configmap("dry"), params={"dryRun": "All"})
    assert r.status_code == 201 and r.json()["metadata"]["name"] == "dry"
    assert http.get(f"{path}/dry").status_code == 404


def test_tenant_scoped_and_cluster_scoped_kinds(http: Http) -> None:
    name = "n-" + uuid.uuid4().hex[:6]
    # Node: cluster-scoped, no tenant
    r = http.post("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    assert (
        "tenant" not in r.json()["metadata"] and r.json()["metadata"]["selfLink"] == f"/api/v1/nodes/{name}"
    )
    assert http.get(f"/api/v1/nodes/{name}").status_code == 200
    # a cluster-scoped kind under a tenant path does not exist
    assert http.get(f"/api/v1/tenants/system/nodes/{name}").status_code == 404
    assert http.delete(f"/api/v1/nodes/{name}").status_code == 200
    # ClusterRole: tenant-scoped, at /apis/G/V/tenants/T/RESOURCE and at the short path
    cr = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }
    base = "/apis/rbac.authorization.k8s.io/v1"
    r = http.post(f"{base}/tenants/system/clusterroles", cr)
    assert r.status_code == 201, r.text
    assert r.json()["metadata"]["tenant"] == "system" and "namespace" not in r.json()["metadata"]
    assert http.get(f"{base}/clusterroles/{name}").json()["metadata"]["uid"] == r.json()["metadata"]["uid"]
    assert http.delete(f"{base}/tenants/system/clusterroles/{name}").status_code == 200
    # Namespaces are tenant-scoped: the tenanted path lists the system tenant's namespaces
    names = [n["metadata"]["name"] for n in http.get("/api/v1/tenants/system/namespaces").json()["items"]]
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= set(names)
    assert all(n["metadata"]["tenant"] == "system" for n in http.get("/api/v1/namespaces").json()["items"])
    # the system tenant exists
    assert http.get("/api/v1/tenants/system").json()["metadata"]["name"] == "system"


def test_unix_socket_listener(api: ApiServerProcess, ns: str) -> None:
    async def go() -> list[str]:
        async with Client(ClientConfig("unix://" + api.socket)) as c:
            await c.create(configmap("via-socket"), namespace=ns)
            return [o["metadata"]["name"] for o in (await c.list("configmaps", ns))["items"]]

    assert asyncio.run(go()) == ["via-socket"]
