"""Impersonation (``kubectl --as``, ``Impersonate-*`` headers) against an ``init``-started cluster.

The request must run as the impersonated user (their RBAC applies, not the caller's), only
for callers granted the ``impersonate`` verb, and never across tenants unless the caller is
of the system tenant.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.compat.conftest import Compat, needs_kubectl

pytestmark = [pytest.mark.slow, needs_kubectl]
RBAC = "/apis/rbac.authorization.k8s.io/v1"


def _bind(c: Compat, tenant: str, ns: str | None, role_name: str, rules: list[dict], user: str) -> None:
    """A (Cluster)Role with ``rules`` bound to ``user`` in ``tenant`` (namespace ``ns``, or tenant-wide)."""
    base = f"{RBAC}/tenants/{tenant}" + (f"/namespaces/{ns}" if ns else "")
    kind = "Role" if ns else "ClusterRole"
    c.ok("POST", f"{base}/{kind.lower()}s", json={"metadata": {"name": role_name}, "rules": rules})
    c.ok(
        "POST",
        f"{base}/{kind.lower()}bindings",
        json={
            "metadata": {"name": role_name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role_name},
            "subjects": [{"kind": "User", "name": user}],
        },
    )


def test_as_runs_with_the_impersonated_users_rbac(compat: Compat) -> None:
    c = compat
    t = "imp-" + uuid.uuid4().hex[:6]
    admin_token = c.tenant(t)
    admin_cfg = c.kubeconfig_for(admin_token, f"{t}-admin")
    ns = c.namespace(t)
    # alice may only read pods in ns; the tenant admin creates a pod there
    _bind(
        c,
        t,
        ns,
        "pod-reader",
        [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        "alice",
    )
    c.kubectl("run", "p1", "--image=busybox", "-n", ns, kubeconfig=admin_cfg)
    # the tenant admin (admin ClusterRole: * on *) may impersonate alice: alice's RBAC applies
    out = c.kubectl("--as=alice", "get", "pods", "-n", ns, "-o", "name", kubeconfig=admin_cfg).stdout
    assert out.split() == ["pod/p1"]
    r = c.kubectl("--as=alice", "delete", "pod", "p1", "-n", ns, kubeconfig=admin_cfg, check=False)
    assert r.returncode != 0 and 'User "alice" cannot delete resource "pods"' in r.stderr, r.stderr
    r = c.kubectl("--as=alice", "get", "configmaps", "-n", ns, kubeconfig=admin_cfg, check=False)
    assert r.returncode != 0 and 'User "alice" cannot list resource "configmaps"' in r.stderr, r.stderr
    # groups come along: a group bound to more than alice has
    _bind(
        c, t, ns, "cm-reader", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}], "nobody"
    )
    c.ok(
        "PATCH",
        f"{RBAC}/tenants/{t}/namespaces/{ns}/rolebindings/cm-reader",
        json={"subjects": [{"kind": "Group", "name": "readers"}]},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    r = c.kubectl("--as=alice", "--as-group=readers", "get", "configmaps", "-n", ns, kubeconfig=admin_cfg)
    assert r.returncode == 0
    # the pod is still there (alice's delete was refused), as the tenant admin sees it
    assert "p1" in c.kubectl("get", "pods", "-n", ns, "-o", "name", kubeconfig=admin_cfg).stdout


def test_without_the_impersonate_grant_it_is_403(compat: Compat) -> None:
    c = compat
    t = "imq-" + uuid.uuid4().hex[:6]
    c.tenant(t)
    ns = c.namespace(t)
    # bob may do everything with pods but holds no impersonate verb
    _bind(c, t, None, "pods-all", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}], "bob")
    bob = c.kubeconfig_for(c.token("bob", t), "bob")
    assert c.kubectl("get", "pods", "-n", ns, kubeconfig=bob).returncode == 0
    r = c.kubectl("--as=alice", "get", "pods", "-n", ns, kubeconfig=bob, check=False)
    assert r.returncode != 0
    assert 'User "bob" cannot impersonate resource "users"' in r.stderr, r.stderr
    # raw headers, as any client library sends them: 403 Status, never run as bob
    bob_token = c.token("bob2", t)
    _bind(c, t, None, "pods-all-2", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}], "bob2")
    r = c.req("GET", f"/api/v1/namespaces/{ns}/pods", token=bob_token, headers={"Impersonate-User": "alice"})
    assert r.status_code == 403 and r.json()["reason"] == "Forbidden", r.text
    # a grant on one user name only: that user, nobody else; groups need their own grant
    _bind(
        c,
        t,
        None,
        "imp-carol",
        [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["carol"]}],
        "bob2",
    )
    h = {"Impersonate-User": "carol"}
    r = c.req("GET", f"/api/v1/namespaces/{ns}/pods", token=bob_token, headers=h)
    assert r.status_code == 403 and 'User "carol" cannot list' in r.json()["message"], r.text
    r = c.req("GET", f"/api/v1/namespaces/{ns}/pods", token=bob_token, headers={"Impersonate-User": "dave"})
    assert r.status_code == 403 and 'User "bob2" cannot impersonate' in r.json()["message"], r.text
    r = c.req(
        "GET",
        f"/api/v1/namespaces/{ns}/pods",
        token=bob_token,
        headers={"Impersonate-User": "carol", "Impersonate-Group": "admins"},
    )
    assert r.status_code == 403 and 'cannot impersonate resource "groups"' in r.json()["message"], r.text
    # a group without a user is a bad request
    r = c.req("GET", "/api/v1/namespaces/default/pods", headers={"Impersonate-Group": "x"})
    assert r.status_code == 400, r.text


def test_no_impersonation_across_tenants(compat: Compat) -> None:
    c = compat
    ta, tb = "ima-" + uuid.uuid4().hex[:6], "imb-" + uuid.uuid4().hex[:6]
    a_admin = c.tenant(ta)
    c.tenant(tb)
    nsb = c.namespace(tb)
    c.ok("POST", f"/api/v1/tenants/{tb}/namespaces/{nsb}/configmaps", json={"metadata": {"name": "secret-b"}})
    tenant_extra = {"Impersonate-Extra-Centaurus.io%2Ftenant": tb}
    # a tenant admin naming another tenant's user: 403, whatever it asks for
    for path in (f"/api/v1/namespaces/{nsb}/configmaps", f"/api/v1/tenants/{tb}/namespaces/{nsb}/configmaps"):
        r = c.req("GET", path, token=a_admin, headers={"Impersonate-User": "admin", **tenant_extra})
        assert r.status_code == 403, r.text
        assert f'cannot impersonate users of tenant "{tb}"' in r.json()["message"]
    # impersonating "a system admin" from a tenant stays in that tenant: no way into tenant b
    r = c.req(
        "GET",
        f"/api/v1/tenants/{tb}/namespaces/{nsb}/configmaps",
        token=a_admin,
        headers={"Impersonate-User": "system:admin", "Impersonate-Group": "system:masters"},
    )
    assert r.status_code == 403, r.text
    # kubectl with as-user-extra in the kubeconfig, the same
    cfg = c.kubeconfig_for(
        a_admin, "a-admin", {"as": "admin", "as-user-extra": {"centaurus.io/tenant": [tb]}}
    )
    r = c.kubectl("get", "configmaps", "-n", nsb, kubeconfig=cfg, check=False)
    assert r.returncode != 0 and "cannot impersonate users of tenant" in r.stderr, r.stderr
    # the system administrator may: as tenant b's admin, it sees tenant b's short paths
    cfg = c.kubeconfig_for(
        c.admin_token, "sys", {"as": f"{tb}-admin", "as-user-extra": {"centaurus.io/tenant": [tb]}}
    )
    out = c.kubectl("get", "configmaps", "-n", nsb, "-o", "json", kubeconfig=cfg).stdout
    items = json.loads(out)["items"]
    assert [i["metadata"]["name"] for i in items if i["metadata"]["name"] == "secret-b"] == ["secret-b"]
    assert all(i["metadata"]["tenant"] == tb for i in items)
    # and as a user of tenant b without roles there, it is refused as that user would be
    cfg = c.kubeconfig_for(
        c.admin_token, "sys2", {"as": "nobody", "as-user-extra": {"centaurus.io/tenant": [tb]}}
    )
    r = c.kubectl("get", "configmaps", "-n", nsb, kubeconfig=cfg, check=False)
    assert r.returncode != 0 and 'User "nobody" cannot list' in r.stderr, r.stderr
