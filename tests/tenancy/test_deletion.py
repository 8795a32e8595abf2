"""Deleting a tenant: Terminating, then every object of every kind it owns is gone, then the tenant itself."""

from __future__ import annotations

from ctl.types import kinds
from tests.tenancy.conftest import Caller, Tenancy, wait_until

RBAC = "/apis/rbac.authorization.k8s.io/v1"


def _populate(c: Caller) -> None:
    c.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "work"}})
    for ns in ("default", "work"):
        c.ok(
            "POST",
            f"/api/v1/namespaces/{ns}/pods",
            {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        )
        c.ok(
            "POST",
            f"/api/v1/namespaces/{ns}/configmaps",
            {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}, "data": {}},
        )
        c.ok(
            "POST", f"/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "s"}, "stringData": {"k": "v"}}
        )
        c.ok("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "sa"}})
        c.ok(
            "POST",
            f"/apis/apps/v1/namespaces/{ns}/deployments",
            {
                "metadata": {"name": "d"},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "d"}},
                    "template": {
                        "metadata": {"labels": {"app": "d"}},
                        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                    },
                },
            },
        )
        c.ok("POST", f"{RBAC}/namespaces/{ns}/roles", {"metadata": {"name": "r"}, "rules": []})
        c.ok(
            "POST",
            f"/api/v1/namespaces/{ns}/resourcequotas",
            {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "50"}}},
        )
        c.ok(
            "POST",
            f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
            {"metadata": {"name": "l"}, "spec": {}},
        )
    c.ok("POST", f"{RBAC}/clusterroles", {"metadata": {"name": "extra"}, "rules": []})
    c.ok(
        "POST",
        "/apis/arktos.centaurus.io/v1/networks",
        {"metadata": {"name": "second", "finalizers": ["example.com/net"]}, "spec": {}},
    )


def _owned(adm: Caller, tenant: str) -> list[str]:
    left = []
    for k in kinds.KINDS:
        if k.scope == kinds.CLUSTER:
            continue
        base = f"/api/{k.version}" if not k.group else f"/apis/{k.group}/{k.version}"
        for o in adm.ok("GET", f"{base}/tenants/all/{k.plural}")["items"]:
            if o["metadata"]["tenant"] == tenant:
                left.append(f"{k.plural}/{o['metadata'].get('namespace', '')}/{o['metadata']['name']}")
    return left


def test_tenant_deletion_cascades_through_every_kind(tenancy: Tenancy) -> None:
    adm = tenancy.admin
    token = tenancy.create_tenant("doomed")
    c = tenancy.caller(token)
    _populate(c)
    code, out = tenancy.issue(c, "extra-user")
    assert code == 201
    extra = tenancy.caller(out["status"]["token"])
    assert len(_owned(adm, "doomed")) > 20
    # A second tenant with the same object names is not touched.
    tenancy.a.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "work"}})
    tenancy.a.ok("POST", "/api/v1/namespaces/work/configmaps", {"metadata": {"name": "held"}, "data": {}})

    deleted = adm.ok("DELETE", "/api/v1/tenants/doomed")
    assert deleted["status"]["phase"] == "Terminating" and deleted["metadata"]["deletionTimestamp"]
    wait_until(
        lambda: adm.get("/api/v1/tenants/doomed")[0] == 404, timeout=30, what="tenant doomed to go away"
    )
    assert _owned(adm, "doomed") == []
    # Its credentials are dead and nothing can be created in it.
    assert c.get("/api/v1/namespaces")[0] == 401
    assert extra.get("/api/v1/namespaces")[0] == 401
    tokens = adm.ok(
        "GET",
        "/api/v1/tenants/system/namespaces/kube-system/secrets",
        params="labelSelector=centaurus.io%2Ftoken-tenant%3Ddoomed",
    )["items"]
    assert tokens == []
    code, out = adm.post("/api/v1/tenants/doomed/namespaces/default/configmaps", {"metadata": {"name": "x"}})
    assert code == 404 and out["message"] == 'tenants "doomed" not found'
    assert tenancy.a.ok("GET", "/api/v1/namespaces/work/configmaps/held")["metadata"]["tenant"] == "a"
    # A tenant re-created with the same name starts clean, and old tokens stay dead.
    new_token = tenancy.create_tenant("doomed")
    assert new_token != token and c.get("/api/v1/namespaces")[0] == 401
    assert {
        n["metadata"]["name"] for n in tenancy.caller(new_token).ok("GET", "/api/v1/namespaces")["items"]
    } == {"default", "kube-system", "kube-public"}
    adm.ok("DELETE", "/api/v1/tenants/doomed")
    wait_until(lambda: adm.get("/api/v1/tenants/doomed")[0] == 404, timeout=30, what="second deletion")


def test_terminating_tenant_accepts_no_new_objects(tenancy: Tenancy) -> None:
    adm = tenancy.admin
    adm.ok("POST", "/api/v1/tenants", {"metadata": {"name": "closing"}})
    # Hold it in Terminating with a finalizer nobody removes, to look at it.
    adm.ok(
        "PATCH",
        "/api/v1/tenants/closing",
        {"metadata": {"finalizers": ["centaurus.io/tenant", "example.com/hold"]}},
    )
    tenancy.wait_admin_token("closing")
    adm.ok("DELETE", "/api/v1/tenants/closing")
    code, out = adm.post("/api/v1/tenants/closing/namespaces/default/configmaps", {"metadata": {"name": "x"}})
    assert code == 403 and "being terminated" in out["message"], out
    wait_until(lambda: _owned(adm, "closing") == [], timeout=30, what="closing to be emptied")
    wait_until(
        lambda: adm.ok("GET", "/api/v1/tenants/closing")["metadata"]["finalizers"] == ["example.com/hold"],
        what="the tenant controller to drop its finalizer only",
    )
    t = adm.ok("GET", "/api/v1/tenants/closing")
    assert t["status"]["phase"] == "Terminating" and t["metadata"]["finalizers"] == ["example.com/hold"]
    adm.ok("PATCH", "/api/v1/tenants/closing", {"metadata": {"finalizers": None}})
    assert adm.get("/api/v1/tenants/closing")[0] == 404
