"""Tenant isolation on a real server with real tokens of three tenants (system, a, b).

Every attempt to reach b's objects with a's token - short paths, explicit paths,
``/tenants/all``, watch, patch, delete, selectors - must fail or come back empty, and
must say nothing about whether b's objects (or b itself) exist.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.tenancy.conftest import Caller, Tenancy

CM = "/api/v1/namespaces/default/configmaps"


def cm(name: str, labels: dict[str, str] | None = None, data: dict[str, str] | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {}},
        "data": data or {},
    }


def test_public_paths_and_401(tenancy: Tenancy) -> None:
    anon = tenancy.caller(None)
    for p in ("/healthz", "/readyz", "/version"):
        assert anon.get(p)[0] == 200, p
    for p in ("/api/v1/namespaces", "/api/v1/tenants", "/api", "/apis", "/metrics", "/api/v1/tenants/a/pods"):
        code, body = anon.get(p)
        assert code == 401 and body["reason"] == "Unauthorized", (p, code, body)
    code, body = tenancy.caller("not-a-token").get("/api/v1/namespaces")
    assert code == 401


def test_system_tenant_exists_and_is_protected(tenancy: Tenancy) -> None:
    t = tenancy.admin.ok("GET", "/api/v1/tenants/system")
    assert t["status"]["phase"] == "Active"
    code, body = tenancy.admin.post("/api/v1/tenants", {"metadata": {"name": "system"}})
    assert code == 409 and body["reason"] == "AlreadyExists"
    code, body = tenancy.admin.call("DELETE", "/api/v1/tenants/system")
    assert code == 403 and "this tenant may not be deleted" in body["message"]
    assert tenancy.admin.ok("GET", "/api/v1/tenants/system")["metadata"].get("deletionTimestamp") is None


def test_tenant_starts_with_its_virtual_cluster(tenancy: Tenancy) -> None:
    adm = tenancy.admin
    t = adm.ok("GET", "/api/v1/tenants/a")
    assert t["status"]["phase"] == "Active" and "finalizers" in t["spec"] and "storageClusterId" in t["spec"]
    names = {n["metadata"]["name"] for n in adm.ok("GET", "/api/v1/tenants/a/namespaces")["items"]}
    assert {"default", "kube-system", "kube-public"} <= names
    roles = {
        r["metadata"]["name"]
        for r in adm.ok("GET", "/apis/rbac.authorization.k8s.io/v1/tenants/a/clusterroles")["items"]
    }
    assert {"admin", "edit", "view"} <= roles
    crb = adm.ok("GET", "/apis/rbac.authorization.k8s.io/v1/tenants/a/clusterrolebindings/tenant-admin")
    assert crb["subjects"][0]["name"] == "a-admin"
    net = adm.ok("GET", "/apis/arktos.centaurus.io/v1/tenants/a/networks/default")
    assert net["metadata"]["tenant"] == "a"
    # The tenant admin sees the same through short paths.
    own = {n["metadata"]["name"] for n in tenancy.a.ok("GET", "/api/v1/namespaces")["items"]}
    assert own == names


def test_tenant_admin_protected_namespaces(tenancy: Tenancy) -> None:
    for ns in ("default", "kube-system"):
        code, body = tenancy.a.call("DELETE", f"/api/v1/namespaces/{ns}")
        assert code == 403 and "may not be deleted" in body["message"], body
        code, body = tenancy.admin.call("DELETE", f"/api/v1/tenants/a/namespaces/{ns}")
        assert code == 403, body


def test_short_path_is_the_callers_tenant(tenancy: Tenancy) -> None:
    a = tenancy.a
    made = a.ok("POST", CM, cm("short", {"app": "x"}))
    assert made["metadata"]["tenant"] == "a"
    assert made["metadata"]["selfLink"] == "/api/v1/tenants/a/namespaces/default/configmaps/short"
    explicit = a.ok("GET", "/api/v1/tenants/a/namespaces/default/configmaps/short")
    short = a.ok("GET", CM + "/short")
    assert explicit == short
    assert short["metadata"]["selfLink"] == made["metadata"]["selfLink"]
    # Writing through the explicit path is the same object.
    a.ok("PATCH", "/api/v1/tenants/a/namespaces/default/configmaps/short", {"data": {"k": "v"}})
    assert a.ok("GET", CM + "/short")["data"] == {"k": "v"}
    listed = a.ok("GET", CM)["items"]
    assert all(
        o["metadata"]["tenant"] == "a" and o["metadata"]["selfLink"].startswith("/api/v1/tenants/a/")
        for o in listed
    )
    # The system admin's short path is the system tenant.
    assert tenancy.admin.get(CM + "/short")[0] == 404


def test_same_names_in_two_tenants(tenancy: Tenancy) -> None:
    for c, tag in ((tenancy.a, "A"), (tenancy.b, "B")):
        c.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "shared"}})
        c.ok("POST", "/api/v1/namespaces/shared/configmaps", cm("same", {"team": "t"}, {"owner": tag}))
        c.ok(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/shared/roles",
            {
                "metadata": {"name": "same"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
            },
        )
    assert tenancy.a.ok("GET", "/api/v1/namespaces/shared/configmaps/same")["data"] == {"owner": "A"}
    assert tenancy.b.ok("GET", "/api/v1/namespaces/shared/configmaps/same")["data"] == {"owner": "B"}
    both = tenancy.admin.ok("GET", "/api/v1/tenants/all/configmaps", params="labelSelector=team%3Dt")["items"]
    assert sorted(o["metadata"]["tenant"] for o in both) == ["a", "b"]
    # One namespace name across tenants: only that namespace's objects, from every tenant.
    tenancy.a.ok("POST", "/api/v1/namespaces/default/configmaps", cm("elsewhere", {"team": "t"}, {}))
    in_shared = tenancy.admin.ok(
        "GET", "/api/v1/tenants/all/namespaces/shared/configmaps", params="labelSelector=team%3Dt"
    )["items"]
    assert sorted((o["metadata"]["tenant"], o["metadata"]["namespace"]) for o in in_shared) == [
        ("a", "shared"),
        ("b", "shared"),
    ]


def _b_object(tenancy: Tenancy) -> None:
    code, _ = tenancy.b.get(CM + "/bonly")
    if code == 404:
        tenancy.b.ok("POST", CM, cm("bonly", {"secret": "b"}, {"password": "hunter2"}))


def test_a_cannot_reach_b(tenancy: Tenancy) -> None:
    _b_object(tenancy)
    a = tenancy.a
    bpath = "/api/v1/tenants/b/namespaces/default/configmaps"
    ghost = "/api/v1/tenants/ghost/namespaces/default/configmaps"
    attempts = [
        ("GET", "/bonly", None, ""),
        ("GET", "", None, ""),
        ("GET", "", None, "labelSelector=secret%3Db"),
        ("GET", "", None, "watch=1&timeoutSeconds=1"),
        ("PATCH", "/bonly", {"data": {"password": "x"}}, ""),
        ("PUT", "/bonly", cm("bonly"), ""),
        ("DELETE", "/bonly", None, ""),
        ("DELETE", "", None, ""),
        ("POST", "", cm("planted"), ""),
    ]
    for method, suffix, body, params in attempts:
        code, out = a.call(
            method,
            bpath + suffix,
            body,
            content_type="application/merge-patch+json" if method == "PATCH" else "application/json",
            params=params,
        )
        assert code == 403, (method, suffix, params, code, out)
        # The answer for a tenant that does not exist is the same: nothing is revealed.
        gcode, gout = a.call(
            method,
            ghost + suffix,
            body,
            content_type="application/merge-patch+json" if method == "PATCH" else "application/json",
            params=params,
        )
        assert gcode == 403 and gout["message"] == out["message"].replace('"b"', '"ghost"'), (out, gout)
        assert "hunter2" not in json.dumps(out) and "bonly" not in out["message"]
    # The object is untouched.
    assert tenancy.b.ok("GET", CM + "/bonly")["data"] == {"password": "hunter2"}
    # Short paths only ever see a's own objects, with or without selectors.
    assert a.get(CM + "/bonly")[0] == 404
    assert a.get(CM + "/bonly")[1]["message"] == a.get(CM + "/never-existed")[1]["message"].replace(
        "never-existed", "bonly"
    )
    assert a.ok("GET", CM, params="labelSelector=secret%3Db")["items"] == []
    assert all(o["metadata"]["tenant"] == "a" for o in a.ok("GET", "/api/v1/configmaps")["items"])
    assert a.ok("GET", CM, params="fieldSelector=metadata.name%3Dbonly")["items"] == []
    # Deleting "bonly" on a's short path is a's (missing) object, not b's.
    assert a.call("DELETE", CM + "/bonly")[0] == 404
    assert tenancy.b.get(CM + "/bonly")[0] == 200


def test_all_tenants_system_and_cluster_scope_forbidden(tenancy: Tenancy) -> None:
    a = tenancy.a
    for path in (
        "/api/v1/tenants/all/configmaps",
        "/api/v1/tenants/all/pods",
        "/apis/apps/v1/tenants/all/deployments",
        "/api/v1/tenants/system/namespaces",
        "/api/v1/tenants/system/namespaces/default/secrets",
        "/api/v1/nodes",
        "/api/v1/tenants",
        "/api/v1/tenants/a",
        "/api/v1/tenants/b",
    ):
        code, out = a.get(path)
        assert code == 403, (path, code, out)
    assert a.get("/api/v1/tenants/all/configmaps", "watch=1&timeoutSeconds=1")[0] == 403
    assert a.post("/api/v1/nodes", {"metadata": {"name": "evil"}})[0] == 403
    assert a.call("DELETE", "/api/v1/tenants/b")[0] == 403
    assert tenancy.admin.ok("GET", "/api/v1/tenants/b")["status"]["phase"] == "Active"


def test_system_admin_reaches_every_tenant(tenancy: Tenancy) -> None:
    _b_object(tenancy)
    adm = tenancy.admin
    got = adm.ok("GET", "/api/v1/tenants/b/namespaces/default/configmaps/bonly")
    assert got["metadata"]["tenant"] == "b"
    tenants = {o["metadata"]["tenant"] for o in adm.ok("GET", "/api/v1/tenants/all/namespaces")["items"]}
    assert {"system", "a", "b"} <= tenants
    assert {t["metadata"]["name"] for t in adm.ok("GET", "/api/v1/tenants")["items"]} >= {"system", "a", "b"}


def test_discovery_hides_cluster_kinds(tenancy: Tenancy) -> None:
    mine = {r["name"] for r in tenancy.a.ok("GET", "/api/v1")["resources"]}
    assert "pods" in mine and "nodes" not in mine and "tenants" not in mine
    admins = {r["name"] for r in tenancy.admin.ok("GET", "/api/v1")["resources"]}
    assert {"nodes", "tenants"} <= admins


def test_create_in_missing_tenant_is_404(tenancy: Tenancy) -> None:
    code, out = tenancy.admin.post("/api/v1/tenants/nope/namespaces/default/configmaps", cm("x"))
    assert code == 404 and out["message"] == 'tenants "nope" not found'
    code, out = tenancy.admin.post("/api/v1/tenants/nope/namespaces", {"metadata": {"name": "x"}})
    assert code == 404 and out["message"] == 'tenants "nope" not found'


async def _watch(url: str, token: str, path: str, params: str, seconds: float) -> list[dict]:
    seen: list[dict] = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s:
        async with s.get(url + path + "?" + params) as r:
            assert r.status == 200, await r.text()
            try:
                async with asyncio.timeout(seconds):
                    async for line in r.content:
                        if line.strip():
                            seen.append(json.loads(line))
            except TimeoutError:
                pass
    return seen


def test_watches_are_private(tenancy: Tenancy) -> None:
    async def go() -> tuple[list[dict], list[dict]]:
        wa = asyncio.create_task(
            _watch(tenancy.api.url, tenancy.a.token or "", CM, "watch=1&labelSelector=w%3D1", 3.0)
        )
        wsys = asyncio.create_task(
            _watch(
                tenancy.api.url,
                tenancy.admin.token or "",
                "/api/v1/tenants/all/configmaps",
                "watch=1&labelSelector=w%3D1",
                3.0,
            )
        )
        await asyncio.sleep(0.7)
        await asyncio.to_thread(tenancy.b.ok, "POST", CM, cm("watched-b", {"w": "1"}))
        await asyncio.to_thread(tenancy.a.ok, "POST", CM, cm("watched-a", {"w": "1"}))
        await asyncio.to_thread(tenancy.b.ok, "DELETE", CM + "/watched-b")
        return await wa, await wsys

    seen_a, seen_sys = asyncio.run(go())
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in seen_a] == [("ADDED", "watched-a")]
    assert {(e["type"], e["object"]["metadata"]["tenant"]) for e in seen_sys} == {
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("DELETED", "b"),
    }


def test_user_token_is_bound_to_its_tenant(tenancy: Tenancy) -> None:
    # Tenant admins issue tokens for their own tenant only, and never system:masters.
    code, out = tenancy.issue(tenancy.a, "someone", tenant="b")
    assert code == 403, out
    code, out = tenancy.issue(tenancy.a, "root", groups=["system:masters"])
    assert code == 403, out
    code, out = tenancy.issue(tenancy.a, "pretend")
    assert code == 201 and out["metadata"]["tenant"] == "a"
    # A token minted in a carries no rights in b even with the same user name as b's admin.
    code, out = tenancy.issue(tenancy.a, "b-admin")
    assert code == 201
    impostor = Caller(tenancy.api.url, out["status"]["token"])
    assert impostor.get("/api/v1/tenants/b/namespaces")[0] == 403
    assert impostor.get("/api/v1/namespaces")[0] == 403  # no binding for b-admin inside a
