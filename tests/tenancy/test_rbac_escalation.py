"""No privilege escalation through RBAC objects, as in Kubernetes.

A user who may write roles and bindings in a namespace still cannot create a role with
rules they do not hold, nor bind a role whose rules they do not hold (including a role
that does not exist yet), unless they were given ``escalate`` or ``bind`` on it. Every
refusal is a 403 that lists what is missing, and nothing is stored.
"""

from __future__ import annotations

from tests.tenancy.conftest import Tenancy
from tests.tenancy.test_rbac_quota import RBAC, bind, user

NS_RBAC = f"{RBAC}/namespaces/default"


def role(name: str, *rules: dict) -> dict:
    return {"metadata": {"name": name}, "rules": list(rules)}


def rule(resources: list[str], verbs: list[str], group: str = "", names: list[str] | None = None) -> dict:
    out = {"apiGroups": [group], "resources": resources, "verbs": verbs}
    if names:
        out["resourceNames"] = names
    return out


def binding(name: str, role_kind: str, role_name: str, subject: str) -> dict:
    return {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
        "subjects": [{"kind": "User", "name": subject}],
    }


def test_no_escalation_through_roles_and_bindings(tenancy: Tenancy) -> None:
    a = tenancy.a
    # mallory may manage RBAC objects in "default" and read config maps there, nothing more
    a.ok(
        "POST",
        f"{NS_RBAC}/roles",
        role(
            "rbac-manager",
            rule(["roles", "rolebindings"], ["get", "list", "create", "update"], "rbac.authorization.k8s.io"),
            rule(["configmaps"], ["get", "list"]),
        ),
    )
    m = user(tenancy, a, "mallory")
    bind(a, "mallory-rbac", "rbac-manager", "mallory", namespace="default", role_kind="Role")

    # a role with rules she holds is fine; one with more is refused and not stored
    m.ok("POST", f"{NS_RBAC}/roles", role("cm-reader", rule(["configmaps"], ["get"])))
    code, out = m.post(f"{NS_RBAC}/roles", role("cm-writer", rule(["configmaps"], ["get", "create"])))
    assert code == 403 and "not currently held" in out["message"] and "create configmaps" in out["message"], (
        out
    )
    assert "get configmaps" not in out["message"], out  # only what is missing is listed
    assert m.get(f"{NS_RBAC}/roles/cm-writer")[0] == 404
    code, out = m.post(f"{NS_RBAC}/roles", role("all", rule(["*"], ["get"])))
    assert code == 403 and "get *" in out["message"], out  # holding each resource is not holding "*"
    # nor by updating a role she made into more than she holds
    cur = m.ok("GET", f"{NS_RBAC}/roles/cm-reader")
    cur["rules"][0]["verbs"] = ["get", "delete"]
    code, out = m.call("PUT", f"{NS_RBAC}/roles/cm-reader", cur)
    assert code == 403 and "delete configmaps" in out["message"], out

    # binding: a role whose rules she holds, yes; admin or a role that does not exist, no
    m.ok("POST", f"{NS_RBAC}/rolebindings", binding("friend-reads", "Role", "cm-reader", "friend"))
    code, out = m.post(f"{NS_RBAC}/rolebindings", binding("me-admin", "ClusterRole", "admin", "mallory"))
    assert code == 403 and 'by binding ClusterRole "admin"' in out["message"], out
    assert m.get(f"{NS_RBAC}/rolebindings/me-admin")[0] == 404
    code, out = m.post(f"{NS_RBAC}/rolebindings", binding("later", "ClusterRole", "future", "mallory"))
    assert code == 403 and "does not exist" in out["message"], out

    # what the tenant admin delegates explicitly: bind on ClusterRole "edit", escalate on roles
    a.ok(
        "POST",
        f"{NS_RBAC}/roles",
        role(
            "delegate",
            rule(["clusterroles"], ["bind"], "rbac.authorization.k8s.io", names=["edit"]),
            rule(["roles"], ["escalate"], "rbac.authorization.k8s.io"),
        ),
    )
    bind(a, "mallory-delegate", "delegate", "mallory", namespace="default", role_kind="Role")
    m.ok("POST", f"{NS_RBAC}/rolebindings", binding("friend-edits", "ClusterRole", "edit", "friend"))
    code, out = m.post(f"{NS_RBAC}/rolebindings", binding("me-admin", "ClusterRole", "admin", "mallory"))
    assert code == 403, out  # bind was granted for "edit" only
    m.ok("POST", f"{NS_RBAC}/roles", role("cm-writer", rule(["configmaps"], ["get", "create"])))
