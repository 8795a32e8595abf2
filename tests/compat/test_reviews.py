"""Access and identity reviews through kubectl and the Python client: ``auth can-i`` (and
``--list``), ``auth whoami``, SubjectAccessReview and TokenReview, against an ``init``-started cluster."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.compat.conftest import Compat, needs_kubectl

pytestmark = [pytest.mark.slow, needs_kubectl]
RBAC = "/apis/rbac.authorization.k8s.io/v1"
AUTHZ = "/apis/authorization.k8s.io/v1"
AUTHN = "/apis/authentication.k8s.io/v1"


@pytest.fixture(scope="module")
def viewer(compat: Compat) -> tuple[str, str, str]:
    """(tenant, namespace, token) of user ``vic``, who may get/list pods in that namespace only."""
    t = "rv-" + uuid.uuid4().hex[:6]
    compat.tenant(t)
    ns = compat.namespace(t)
    base = f"{RBAC}/tenants/{t}/namespaces/{ns}"
    rules = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    compat.ok("POST", f"{base}/roles", json={"metadata": {"name": "pod-reader"}, "rules": rules})
    compat.ok(
        "POST",
        f"{base}/rolebindings",
        json={
            "metadata": {"name": "vic"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [{"kind": "User", "name": "vic"}],
        },
    )
    return t, ns, compat.token("vic", t, ["viewers"])


def test_discovery_lists_the_review_groups(compat: Compat) -> None:
    out = compat.kubectl("api-resources", "--api-group=authorization.k8s.io", "-o", "name").stdout.split()
    assert {
        "selfsubjectaccessreviews.authorization.k8s.io",
        "subjectaccessreviews.authorization.k8s.io",
    } <= set(out), out
    out = compat.kubectl("api-resources", "--api-group=authentication.k8s.io", "-o", "name").stdout.split()
    assert {"selfsubjectreviews.authentication.k8s.io", "tokenreviews.authentication.k8s.io"} <= set(out), out


def test_can_i(compat: Compat, viewer: tuple[str, str, str]) -> None:
    c = compat
    t, ns, token = viewer
    vic = c.kubeconfig_for(token, "vic")
    assert c.kubectl("auth", "can-i", "create", "pods").stdout.strip() == "yes"  # the cluster admin
    assert c.kubectl("auth", "can-i", "list", "pods", "-n", ns, kubeconfig=vic).stdout.strip() == "yes"
    r = c.kubectl("auth", "can-i", "create", "pods", "-n", ns, kubeconfig=vic, check=False)
    assert r.returncode == 1 and r.stdout.startswith("no"), r.stdout + r.stderr
    r = c.kubectl("auth", "can-i", "list", "pods", "-n", "default", kubeconfig=vic, check=False)
    assert r.returncode == 1 and r.stdout.startswith("no")
    r = c.kubectl("auth", "can-i", "get", "nodes", kubeconfig=vic, check=False)  # cluster-scoped: never
    assert r.returncode == 1 and r.stdout.startswith("no")
    r = c.kubectl("auth", "can-i", "get", "/metrics", kubeconfig=vic, check=False)
    assert r.returncode == 1 and r.stdout.startswith("no")
    assert c.kubectl("auth", "can-i", "get", "/version", kubeconfig=vic).stdout.strip() == "yes"
    # what it says matches what the server does
    assert c.req("GET", f"/api/v1/namespaces/{ns}/pods", token=token).status_code == 200
    assert c.req("POST", f"/api/v1/namespaces/{ns}/pods", token=token, json={}).status_code == 403
    # with impersonation, can-i asks about the impersonated user (the tenant admin may impersonate)
    tadmin = c.kubeconfig_for(c.token(f"{t}-admin", t), "tadmin")
    assert (
        c.kubectl("auth", "can-i", "list", "pods", "-n", ns, "--as=vic", kubeconfig=tadmin).stdout.strip()
        == "yes"
    )
    r = c.kubectl("auth", "can-i", "delete", "pods", "-n", ns, "--as=vic", kubeconfig=tadmin, check=False)
    assert r.returncode == 1 and r.stdout.startswith("no")


def test_can_i_list(compat: Compat, viewer: tuple[str, str, str]) -> None:
    c = compat
    _t, ns, token = viewer
    vic = c.kubeconfig_for(token, "vic-list")
    out = c.kubectl("auth", "can-i", "--list", "-n", ns, kubeconfig=vic).stdout
    lines = [line.split() for line in out.splitlines()]
    pods = [line for line in lines if line and line[0] == "pods"]
    assert pods and "[get" in " ".join(pods[0]) and "list]" in " ".join(pods[0]), out
    assert any(line[0] == "selfsubjectaccessreviews.authorization.k8s.io" for line in lines if line), out
    assert not any(line and line[0] == "configmaps" for line in lines), out
    out = c.kubectl("auth", "can-i", "--list", "-n", "default", kubeconfig=vic).stdout
    assert not any(line.split()[:1] == ["pods"] for line in out.splitlines()), out
    out = c.kubectl("auth", "can-i", "--list").stdout  # the cluster admin: everything
    assert any(line.split()[:1] == ["*.*"] for line in out.splitlines()), out


def test_whoami(compat: Compat, viewer: tuple[str, str, str]) -> None:
    c = compat
    t, _ns, token = viewer
    out = c.kubectl("auth", "whoami", "-o", "json", kubeconfig=c.kubeconfig_for(token, "vic-who")).stdout
    info = json.loads(out)["status"]["userInfo"]
    assert info["username"] == "vic"
    assert "viewers" in info["groups"] and "system:authenticated" in info["groups"]
    assert info["extra"]["centaurus.io/tenant"] == [t]
    out = c.kubectl("auth", "whoami").stdout
    assert "system:masters" in out, out
    out = c.kubectl("auth", "whoami", "--as=someone", "--as-group=g1").stdout
    assert "someone" in out and "g1" in out, out


def test_subject_access_review_and_token_review(compat: Compat, viewer: tuple[str, str, str]) -> None:
    pytest.importorskip("kubernetes")
    from kubernetes import client, config

    c = compat
    t, ns, token = viewer
    api = config.new_client_from_config(config_file=str(c.kubeconfig))
    authz = client.AuthorizationV1Api(api)

    def sar(verb: str, namespace: str) -> bool:
        body = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user="vic",
                extra={"centaurus.io/tenant": [t]},
                resource_attributes=client.V1ResourceAttributes(
                    verb=verb, resource="pods", namespace=namespace
                ),
            )
        )
        return bool(authz.create_subject_access_review(body).status.allowed)

    assert sar("list", ns) is True
    assert sar("delete", ns) is False
    assert sar("list", "default") is False
    authn = client.AuthenticationV1Api(api)
    rev = authn.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token)))
    assert rev.status.authenticated is True and rev.status.user.username == "vic"
    assert rev.status.user.extra["centaurus.io/tenant"] == [t]
    rev = authn.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token="not-a-token")))
    assert rev.status.authenticated is False
    # a tenant's user may ask neither (they would reveal other users' grants and tokens)
    for path, spec in (
        (
            f"{AUTHZ}/subjectaccessreviews",
            {"user": "x", "resourceAttributes": {"verb": "get", "resource": "pods"}},
        ),
        (f"{AUTHN}/tokenreviews", {"token": c.admin_token}),
    ):
        r = c.req("POST", path, token=token, json={"spec": spec})
        assert r.status_code == 403 and r.json()["reason"] == "Forbidden", r.text
    # malformed reviews are refused with a Status
    r = c.req("POST", f"{AUTHZ}/selfsubjectaccessreviews", token=token, json={"spec": {}})
    assert r.status_code == 422, r.text
    r = c.req("GET", f"{AUTHZ}/selfsubjectaccessreviews", token=token)
    assert r.status_code == 405, r.text
