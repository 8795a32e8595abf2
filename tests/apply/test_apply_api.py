"""Server-side apply over HTTP against a real API server: ``PATCH`` with
``application/apply-patch+yaml``, ``fieldManager`` and ``force``; managedFields on every write."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from tests.api.conftest import Http, deployment, status_of

APPLY = "application/apply-patch+yaml"


def deploy(name: str, replicas: int = 1, containers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    d = deployment(name, replicas, app=name)
    if containers is not None:
        d["spec"]["template"]["spec"]["containers"] = containers
    return d


def apply(
    http: Http, path: str, body: Any, manager: str | None = "mgr-a", force: bool | None = None, **kw: Any
):
    params: dict[str, str] = {}
    if manager is not None:
        params["fieldManager"] = manager
    if force is not None:
        params["force"] = "true" if force else "false"
    data = body if isinstance(body, str) else yaml.safe_dump(body)
    return http.req("PATCH", path, data=data, ct=APPLY, params=params, **kw)


def entries(obj: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {
        (e["manager"], e["operation"], e.get("subresource", "")): e
        for e in obj["metadata"].get("managedFields") or []
    }


def owns(obj: dict[str, Any], manager: str, operation: str, *path: str, sub: str = "") -> bool:
    node: Any = entries(obj).get((manager, operation, sub), {}).get("fieldsV1")
    for p in path:
        if not isinstance(node, dict) or p not in node:
            return False
        node = node[p]
    return node is not None


def dpath(ns: str, name: str = "") -> str:
    return f"/apis/apps/v1/namespaces/{ns}/deployments" + (f"/{name}" if name else "")


def test_field_manager_is_required_and_force_is_only_for_apply(http: Http, ns: str) -> None:
    r = apply(http, dpath(ns, "d"), deploy("d"), manager=None)
    s = status_of(r)
    assert r.status_code == 422 and s["reason"] == "Invalid"
    assert s["details"]["causes"][0]["field"] == "fieldManager"
    assert "is required for apply patch" in s["message"]
    assert http.get(dpath(ns, "d")).status_code == 404  # nothing created
    http.post(dpath(ns), deploy("d"))
    r = http.patch(dpath(ns, "d"), {"spec": {"replicas": 2}}, params={"force": "true"})
    assert r.status_code == 422 and "force" in status_of(r)["message"]
    r = http.req("PATCH", dpath(ns, "d"), data="{}", ct=APPLY, params={"fieldManager": "x", "force": "maybe"})
    assert r.status_code == 400 and "force" in status_of(r)["message"]


def test_create_on_apply_then_get_returns_managed_fields(http: Http, ns: str) -> None:
    r = apply(http, dpath(ns, "web"), deploy("web", 2))
    assert r.status_code == 201, r.text
    obj = http.get(dpath(ns, "web")).json()
    assert obj["spec"]["replicas"] == 2 and obj["spec"]["strategy"]["type"] == "RollingUpdate"  # defaulted
    (e,) = obj["metadata"]["managedFields"]
    assert (e["manager"], e["operation"], e["apiVersion"], e["fieldsType"]) == (
        "mgr-a",
        "Apply",
        "apps/v1",
        "FieldsV1",
    )
    assert e["time"].endswith("Z")
    spec = e["fieldsV1"]["f:spec"]
    assert spec["f:replicas"] == {} and spec["f:selector"] == {}  # a LabelSelector is atomic
    assert spec["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}'] == {
        ".": {},
        "f:image": {},
        "f:name": {},
    }
    assert "f:strategy" not in spec  # defaulted fields are nobody's
    # the same apply again changes nothing: no write
    r2 = apply(http, dpath(ns, "web"), deploy("web", 2))
    assert r2.status_code == 200
    assert r2.json()["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


def test_apply_merges_keyed_lists_and_removes_what_the_manager_stops_applying(http: Http, ns: str) -> None:
    two = [
        {"name": "web", "image": "nginx:1.27", "env": [{"name": "A", "value": "1"}]},
        {"name": "side", "image": "busybox", "ports": [{"containerPort": 8080}]},
    ]
    assert apply(http, dpath(ns, "m"), deploy("m", containers=two)).status_code == 201
    # another manager adds an env var to "web" through its own apply: merged by name, not replaced
    other = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "m"},
        "spec": {
            "template": {"spec": {"containers": [{"name": "web", "env": [{"name": "B", "value": "2"}]}]}}
        },
    }
    r = apply(http, dpath(ns, "m"), other, manager="mgr-b")
    assert r.status_code == 200, r.text
    web = r.json()["spec"]["template"]["spec"]["containers"][0]
    assert web["image"] == "nginx:1.27" and [e["name"] for e in web["env"]] == ["A", "B"]
    # mgr-a drops container "side", env A and its label: gone (nobody else owns them); B stays (mgr-b's)
    one = deploy("m", containers=[{"name": "web", "image": "nginx:1.28"}])
    one["metadata"]["labels"] = {"app": "m"}
    one["metadata"]["annotations"] = {"note": "x"}
    r = apply(http, dpath(ns, "m"), one)
    assert r.status_code == 200, r.text
    cs = r.json()["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in cs] == ["web"] and cs[0]["image"] == "nginx:1.28"
    assert [e["name"] for e in cs[0]["env"]] == ["B"]
    del one["metadata"]["annotations"]
    r = apply(http, dpath(ns, "m"), one)
    assert "annotations" not in r.json()["metadata"]  # an emptied map goes too
    # mgr-b stops applying: B goes, and mgr-b no longer appears
    r = apply(
        http,
        dpath(ns, "m"),
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "m"}},
        manager="mgr-b",
    )
    assert "env" not in r.json()["spec"]["template"]["spec"]["containers"][0]
    assert ("mgr-b", "Apply", "") not in entries(r.json())


def test_conflicts_name_field_and_manager_and_force_takes_ownership(http: Http, ns: str) -> None:
    assert apply(http, dpath(ns, "c"), deploy("c", 1)).status_code == 201
    r = apply(http, dpath(ns, "c"), deploy("c", 5), manager="mgr-b")
    s = status_of(r)
    assert r.status_code == 409 and s["reason"] == "Conflict"
    assert s["message"] == 'Apply failed with 1 conflict: conflict with "mgr-a": .spec.replicas'
    assert s["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "mgr-a"', "field": ".spec.replicas"}
    ]
    assert http.get(dpath(ns, "c")).json()["spec"]["replicas"] == 1  # nothing half-applied
    # the same value is no conflict: both own it
    assert apply(http, dpath(ns, "c"), deploy("c", 1), manager="mgr-b").status_code == 200
    # a change of image and replicas by mgr-c: two conflicts with each of the two co-owners
    changed = deploy("c", 3, [{"name": "web", "image": "nginx:2"}])
    s = status_of(apply(http, dpath(ns, "c"), changed, manager="mgr-c"))
    assert s["message"].startswith("Apply failed with 4 conflicts: ")
    fields = sorted((c["field"], c["message"]) for c in s["details"]["causes"])
    assert fields == sorted(
        (f, f'conflict with "{m}"')
        for f in (".spec.replicas", '.spec.template.spec.containers[name="web"].image')
        for m in ("mgr-a", "mgr-b")
    )
    r = apply(http, dpath(ns, "c"), changed, manager="mgr-c", force=True)
    assert r.status_code == 200, r.text
    obj = r.json()
    assert obj["spec"]["replicas"] == 3
    assert owns(obj, "mgr-c", "Apply", "f:spec", "f:replicas")
    assert not owns(obj, "mgr-a", "Apply", "f:spec", "f:replicas")
    assert owns(obj, "mgr-a", "Apply", "f:spec", "f:selector")  # what was not in conflict stays
    # mgr-a re-applies its old config: now it conflicts with mgr-c
    s = status_of(apply(http, dpath(ns, "c"), deploy("c", 1)))
    assert s["message"] == (
        'Apply failed with 2 conflicts: conflicts with "mgr-c":\n- .spec.replicas\n'
        '- .spec.template.spec.containers[name="web"].image'
    )


def test_updates_record_their_manager_and_take_ownership(http: Http, ns: str) -> None:
    r = http.post(dpath(ns), deploy("u"), params={"fieldManager": "creator"})
    assert r.status_code == 201
    (e,) = r.json()["metadata"]["managedFields"]
    assert (e["manager"], e["operation"]) == ("creator", "Update")
    assert e["fieldsV1"]["f:metadata"]["f:labels"] == {".": {}, "f:app": {}}
    assert "f:strategy" in e["fieldsV1"]["f:spec"]  # defaults belong to whoever created the object
    # without fieldManager the manager is the User-Agent's first word
    r = http.patch(dpath(ns, "u"), {"spec": {"replicas": 4}}, headers={"User-Agent": "my-tool/1.2 (linux)"})
    obj = r.json()
    assert owns(obj, "my-tool", "Update", "f:spec", "f:replicas")
    assert not owns(obj, "creator", "Update", "f:spec", "f:replicas")
    # an applier now conflicts with the updater, named with its apiVersion
    s = status_of(apply(http, dpath(ns, "u"), deploy("u", 2)))
    assert (
        s["message"] == 'Apply failed with 1 conflict: conflict with "my-tool" using apps/v1: .spec.replicas'
    )
    # a status write is its own entry, for the status subresource
    got = http.get(dpath(ns, "u")).json()
    got["status"] = {"replicas": 0, "observedGeneration": 1}
    r = http.put(dpath(ns, "u") + "/status", got, params={"fieldManager": "ctrl"})
    assert r.status_code == 200, r.text
    assert owns(r.json(), "ctrl", "Update", "f:status", "f:observedGeneration", sub="status")
    # an update that changes nothing adds no entry
    before = http.get(dpath(ns, "u")).json()
    r = http.put(dpath(ns, "u"), before, params={"fieldManager": "noop"})
    assert ("noop", "Update", "") not in entries(r.json())


def test_managed_fields_in_requests(http: Http, ns: str) -> None:
    assert apply(http, dpath(ns, "r"), deploy("r")).status_code == 201
    bad = deploy("r")
    bad["metadata"]["managedFields"] = [{"manager": "x", "operation": "Apply"}]
    r = apply(http, dpath(ns, "r"), bad)
    assert r.status_code == 400 and status_of(r)["message"] == "metadata.managedFields must be nil"
    # a PUT without managedFields keeps them; one with [] resets them (as kube-apiserver does)
    obj = http.get(dpath(ns, "r")).json()
    kept = copy.deepcopy(obj)
    del kept["metadata"]["managedFields"]
    kept["metadata"]["labels"]["x"] = "1"
    r = http.put(dpath(ns, "r"), kept, params={"fieldManager": "ed"})
    assert set(entries(r.json())) == {("mgr-a", "Apply", ""), ("ed", "Update", "")}
    reset = r.json()
    reset["metadata"]["managedFields"] = []
    r = http.put(dpath(ns, "r"), reset)
    assert r.json()["metadata"].get("managedFields") is None
    # an object without managedFields: its fields belong to "before-first-apply"
    s = status_of(apply(http, dpath(ns, "r"), deploy("r", 7)))
    assert s["message"] == (
        'Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: .spec.replicas'
    )


def test_bad_apply_bodies(http: Http, ns: str) -> None:
    p = dpath(ns, "b")
    r = apply(http, p, {"metadata": {"name": "b"}})
    assert r.status_code == 400 and "apiVersion" in status_of(r)["message"]
    r = apply(http, p, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"}})
    assert r.status_code == 400
    r = apply(http, p, "- just\n- a list\n")
    assert r.status_code == 400
    r = apply(http, p, "a: [unclosed\n")
    assert r.status_code == 400
    nameless = deploy("b", containers=[{"image": "nginx"}])
    r = apply(http, p, nameless)
    s = status_of(r)
    assert r.status_code == 422 and "name" in s["message"], s
    twice = deploy("b", containers=[{"name": "w", "image": "a"}, {"name": "w", "image": "b"}])
    assert apply(http, p, twice).status_code == 422
    assert http.get(p).status_code == 404  # none of them created anything
    r = apply(http, dpath(ns, "b") + "/scale", {"apiVersion": "autoscaling/v1", "kind": "Scale"})
    assert r.status_code in (404, 405)


def test_yaml_body_status_apply_and_dry_run(http: Http, ns: str) -> None:
    text = f"""
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
  namespace: {ns}
  labels: {{tier: one}}
data:
  a: "1"
"""
    p = f"/api/v1/namespaces/{ns}/configmaps/cm"
    r = http.req("PATCH", p, data=text, ct=APPLY, params={"fieldManager": "y", "dryRun": "All"})
    assert r.status_code == 201 and http.get(p).status_code == 404  # dry run: nothing stored
    assert apply(http, p, text, manager="y").status_code == 201
    assert http.get(p).json()["data"] == {"a": "1"}
    # apply to a status subresource owns status only
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    pp = f"/api/v1/namespaces/{ns}/pods/p"
    assert apply(http, pp, pod).status_code == 201
    st = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"phase": "Running"}}
    r = apply(http, pp + "/status", st, manager="kubelet")
    assert r.status_code == 200, r.text
    obj = r.json()
    assert obj["status"]["phase"] == "Running"
    assert owns(obj, "kubelet", "Apply", "f:status", "f:phase", sub="status")
    # status in a main-resource apply is nobody's and changes nothing
    pod["status"] = {"phase": "Failed"}
    r = apply(http, pp, pod)
    assert r.json()["status"]["phase"] == "Running"
    assert not owns(r.json(), "mgr-a", "Apply", "f:status")
