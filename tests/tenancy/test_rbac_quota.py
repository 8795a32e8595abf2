"""Authorization inside a tenant (roles, bindings, resourceNames, autonomy) and ResourceQuota admission."""

from __future__ import annotations

from tests.tenancy.conftest import Caller, Tenancy, wait_until

RBAC = "/apis/rbac.authorization.k8s.io/v1"


def pod(name: str, cpu: str | None = None, memory: str | None = None) -> dict:
    req = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    c: dict = {"name": "c", "image": "busybox"}
    if req:
        c["resources"] = {"requests": req}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [c]}}


def user(tenancy: Tenancy, issuer: Caller, name: str) -> Caller:
    code, out = tenancy.issue(issuer, name)
    assert code == 201, out
    return tenancy.caller(out["status"]["token"])


def bind(
    c: Caller,
    name: str,
    role: str,
    user_name: str,
    namespace: str | None = None,
    role_kind: str = "ClusterRole",
) -> None:
    body = {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"kind": "User", "name": user_name}],
    }
    if namespace:
        c.ok("POST", f"{RBAC}/namespaces/{namespace}/rolebindings", body)
    else:
        c.ok("POST", f"{RBAC}/clusterrolebindings", body)


def test_tenant_admin_is_autonomous(tenancy: Tenancy) -> None:
    a = tenancy.a
    a.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "team"}})
    a.ok(
        "POST",
        f"{RBAC}/namespaces/team/roles",
        {
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        },
    )
    a.ok("POST", "/api/v1/namespaces/team/serviceaccounts", {"metadata": {"name": "robot"}})
    a.ok(
        "POST",
        "/api/v1/namespaces/team/resourcequotas",
        {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "10"}}},
    )
    a.ok("POST", f"{RBAC}/clusterroles", {"metadata": {"name": "custom"}, "rules": []})
    a.ok("DELETE", f"{RBAC}/clusterroles/custom")


def test_view_user_cannot_write(tenancy: Tenancy) -> None:
    a = tenancy.a
    viewer = user(tenancy, a, "vera")
    assert viewer.get("/api/v1/namespaces/default/pods")[0] == 403  # no binding yet
    bind(a, "vera-view", "view", "vera", namespace="default")
    assert viewer.get("/api/v1/namespaces/default/pods")[0] == 200
    assert viewer.get("/api/v1/namespaces/default/configmaps")[0] == 200
    assert viewer.get("/api/v1/namespaces/default/secrets")[0] == 403
    assert viewer.get("/api/v1/namespaces/kube-system/pods")[0] == 403  # the RoleBinding is for default only
    for method, path, body in (
        ("POST", "/api/v1/namespaces/default/pods", pod("v1")),
        ("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "v"}}),
        ("DELETE", "/api/v1/namespaces/default/configmaps/whatever", None),
        ("PATCH", "/api/v1/namespaces/default/configmaps/whatever", {"data": {}}),
        (
            "POST",
            f"{RBAC}/namespaces/default/rolebindings",
            {
                "metadata": {"name": "x"},
                "roleRef": {"kind": "ClusterRole", "name": "admin"},
                "subjects": [{"kind": "User", "name": "vera"}],
            },
        ),
    ):
        code, out = viewer.call(method, path, body)
        assert code == 403 and "vera" in out["message"], (method, path, code, out)


def test_edit_user_writes_workloads_but_not_rbac_or_quota(tenancy: Tenancy) -> None:
    a = tenancy.a
    ed = user(tenancy, a, "eddie")
    bind(a, "eddie-edit", "edit", "eddie")
    ed.ok("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "by-eddie"}})
    ed.ok(
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                },
            },
        },
    )
    assert (
        ed.post(f"{RBAC}/roles", {"metadata": {"name": "x", "namespace": "default"}, "rules": []})[0] == 403
    )
    assert (
        ed.post(
            "/api/v1/namespaces/default/resourcequotas",
            {"metadata": {"name": "big"}, "spec": {"hard": {"pods": "999"}}},
        )[0]
        == 403
    )
    code, out = tenancy.issue(ed, "sock-puppet")
    assert code == 403, out


def test_resource_names(tenancy: Tenancy) -> None:
    a = tenancy.a
    for n in ("allowed", "hidden"):
        a.ok("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": n}})
    a.ok(
        "POST",
        f"{RBAC}/namespaces/default/roles",
        {
            "metadata": {"name": "one-cm"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "verbs": ["get", "update", "patch"],
                    "resourceNames": ["allowed"],
                }
            ],
        },
    )
    r = user(tenancy, a, "rita")
    bind(a, "rita-one", "one-cm", "rita", namespace="default", role_kind="Role")
    assert r.get("/api/v1/namespaces/default/configmaps/allowed")[0] == 200
    assert r.call("PATCH", "/api/v1/namespaces/default/configmaps/allowed", {"data": {"x": "1"}})[0] == 200
    assert r.get("/api/v1/namespaces/default/configmaps/hidden")[0] == 403
    assert r.get("/api/v1/namespaces/default/configmaps")[0] == 403  # list is not named


def test_system_tenant_user_roles_apply_everywhere(tenancy: Tenancy) -> None:
    adm = tenancy.admin
    reader = user(tenancy, adm, "auditor")
    assert reader.get("/api/v1/tenants/all/configmaps")[0] == 403
    # The tenant controller gives the system tenant the built-in roles too.
    wait_until(lambda: adm.get(f"{RBAC}/clusterroles/view")[0] == 200, what="system view role")
    bind(adm, "auditor-view", "view", "auditor")
    assert reader.get("/api/v1/tenants/all/configmaps")[0] == 200
    assert reader.get("/api/v1/tenants/b/namespaces/default/configmaps")[0] == 200
    assert (
        reader.post("/api/v1/tenants/b/namespaces/default/configmaps", {"metadata": {"name": "nope"}})[0]
        == 403
    )
    assert reader.get("/api/v1/tenants/b/namespaces/default/secrets")[0] == 403


def test_quota(tenancy: Tenancy) -> None:
    b = tenancy.b
    b.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "quota"}})
    b.ok(
        "POST",
        "/api/v1/namespaces/quota/resourcequotas",
        {
            "metadata": {"name": "compute"},
            "spec": {"hard": {"pods": "3", "requests.cpu": "1", "requests.memory": "1Gi"}},
        },
    )
    b.ok("POST", "/api/v1/namespaces/quota/pods", pod("p1", "500m", "256Mi"))
    b.ok("POST", "/api/v1/namespaces/quota/pods", pod("p2", "300m", "256Mi"))
    code, out = b.post("/api/v1/namespaces/quota/pods", pod("p3", "500m", "256Mi"))
    assert code == 403
    assert out["message"] == (
        'pods "p3" is forbidden: exceeded quota: compute, requested: requests.cpu=500m, '
        "used: requests.cpu=800m, limited: requests.cpu=1"
    ), out
    code, out = b.post("/api/v1/namespaces/quota/pods", pod("p3", "100m"))
    assert code == 403 and "must specify memory" in out["message"], out
    b.ok("POST", "/api/v1/namespaces/quota/pods", pod("p3", "100m", "100Mi"))
    code, out = b.post("/api/v1/namespaces/quota/pods", pod("p4", "10m", "1Mi"))
    assert code == 403 and "exceeded quota: compute" in out["message"] and "pods=3" in out["message"], out
    # Another tenant's namespace of the same name is not limited by b's quota.
    tenancy.a.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "quota"}})
    for i in range(4):
        tenancy.a.ok("POST", "/api/v1/namespaces/quota/pods", pod(f"p{i}"))
    # Freeing a pod frees quota.
    b.ok("DELETE", "/api/v1/namespaces/quota/pods/p1")
    b.ok("POST", "/api/v1/namespaces/quota/pods", pod("p4", "10m", "1Mi"))
