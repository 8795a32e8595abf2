"""Non-resource URLs authorized, and a tenant's view of discovery and OpenAPI.

Against the real API server of the tenancy fixture: a tenant administrator's token gets 403
on ``/metrics`` and ``/debug/*`` (the cluster administrator gets 200); the health and
version endpoints stay public; a system-tenant user gets ``/metrics`` only once a
ClusterRole with ``nonResourceURLs`` is bound to it; a tenant administrator cannot grant
itself such a rule. A tenant's discovery and OpenAPI documents leave out Node, Tenant and
Droplet, which the administrator's documents list.
"""

from __future__ import annotations

from tests.tenancy.conftest import Caller, Tenancy, wait_until

RBAC = "/apis/rbac.authorization.k8s.io/v1"


def test_metrics_and_debug_forbidden_to_a_tenant_admin(tenancy: Tenancy) -> None:
    for path in ("/metrics", "/debug/pprof/", "/debug/anything"):
        code, body = tenancy.a.get(path)
        assert code == 403, (path, code, body)
        assert body["kind"] == "Status" and body["reason"] == "Forbidden"
    code, text = tenancy.admin.get("/metrics")
    assert code == 200 and "apiserver_request_total" in text


def test_health_and_version_stay_public(tenancy: Tenancy) -> None:
    anonymous = Caller(tenancy.api.url, None)
    for path in ("/healthz", "/readyz", "/livez", "/version"):
        assert anonymous.get(path)[0] == 200, path
    assert anonymous.get("/metrics")[0] == 401


def test_metrics_granted_to_a_system_user_by_nonresource_rule(tenancy: Tenancy) -> None:
    code, tr = tenancy.issue(tenancy.admin, "prometheus", "system")
    assert code == 201, tr
    prom = tenancy.caller(tr["status"]["token"])
    assert prom.get("/metrics")[0] == 403
    base = f"{RBAC}/tenants/system"
    tenancy.admin.ok(
        "POST",
        f"{base}/clusterroles",
        {
            "metadata": {"name": "metrics-reader"},
            "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}],
        },
    )
    tenancy.admin.ok(
        "POST",
        f"{base}/clusterrolebindings",
        {
            "metadata": {"name": "prometheus-metrics"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "metrics-reader",
            },
            "subjects": [{"kind": "User", "name": "prometheus"}],
        },
    )
    wait_until(lambda: prom.get("/metrics")[0] == 200, 10, "the binding to take effect")
    assert prom.get("/debug/pprof/")[0] == 403


def test_tenant_admin_cannot_grant_itself_nonresource_urls(tenancy: Tenancy) -> None:
    code, body = tenancy.a.post(
        f"{RBAC}/clusterroles",
        {
            "metadata": {"name": "sneaky-metrics"},
            "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}],
        },
    )
    assert code == 403 and "system tenant" in body["message"], body
    code, body = tenancy.a.post(
        f"{RBAC}/namespaces/default/roles",
        {"metadata": {"name": "ns-metrics"}, "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]},
    )
    assert code == 422 and body["reason"] == "Invalid", body


def test_tenant_discovery_hides_cluster_scoped_kinds(tenancy: Tenancy) -> None:
    def kinds_of(caller: Caller, path: str) -> set[str]:
        code, doc = caller.get(path)
        assert code == 200, (path, doc)
        return {r["kind"] for r in doc["resources"]}

    assert {"Node", "Tenant"} <= kinds_of(tenancy.admin, "/api/v1")
    tenant_core = kinds_of(tenancy.a, "/api/v1")
    assert "Pod" in tenant_core and not {"Node", "Tenant"} & tenant_core
    assert "Droplet" in kinds_of(tenancy.admin, "/apis/mizar.centaurus.io/v1")
    tenant_mizar = kinds_of(tenancy.a, "/apis/mizar.centaurus.io/v1")
    assert "VPC" in tenant_mizar and "Droplet" not in tenant_mizar


def test_tenant_openapi_shows_only_what_the_tenant_can_use(tenancy: Tenancy) -> None:
    full = tenancy.admin.ok("GET", "/openapi/v2")
    view = tenancy.a.ok("GET", "/openapi/v2")
    assert "/api/v1/nodes" in full["paths"] and "/api/v1/tenants/{name}" in full["paths"]
    assert "/api/v1/nodes" not in view["paths"] and "/api/v1/tenants/{name}" not in view["paths"]
    assert not [p for p in view["paths"] if p.startswith("/apis/mizar.centaurus.io/v1/droplets")]
    assert "/api/v1/namespaces/{namespace}/pods" in view["paths"]
    assert "io.k8s.api.core.v1.Node" in full["definitions"]
    assert "io.k8s.api.core.v1.Node" not in view["definitions"]
    assert "io.k8s.api.core.v1.Pod" in view["definitions"]
    v3 = tenancy.a.ok("GET", "/openapi/v3/api/v1")
    assert "/api/v1/nodes" not in v3["paths"] and "/api/v1/namespaces/{namespace}/pods" in v3["paths"]
    assert "/api/v1/nodes" in tenancy.admin.ok("GET", "/openapi/v3/api/v1")["paths"]
