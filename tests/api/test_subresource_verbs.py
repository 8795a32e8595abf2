"""Subresources accept only the verbs Kubernetes allows, and are authorized as ``resource/subresource``.

``DELETE .../pods/NAME/status`` used to delete the pod - bypassing a Role that grants
``pods/status`` but forbids deleting pods. Every wrong verb/subresource pair is now a 405
before authorization, and RBAC sees ``pods/status`` (not ``pods``) for status writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ctl.apiserver.auth import SYSTEM_MASTERS, TokenFile
from tests.api.conftest import Http, deployment, pod, status_of
from tests.cluster import ApiServerProcess
from tests.helpers import eventually_sync

pytestmark = pytest.mark.slow  # rbac_api starts its own API server

ADMIN = "subresource-admin-token-0123456789"
ALICE = "subresource-alice-token-0123456789"


@pytest.fixture(scope="module")
def api(apiserver: ApiServerProcess) -> ApiServerProcess:
    return apiserver


WRONG = [
    ("DELETE", "pods/{p}/status"),
    ("POST", "pods/{p}/status"),
    ("PUT", "pods/{p}/binding"),
    ("GET", "pods/{p}/binding"),
    ("DELETE", "pods/{p}/binding"),
    ("PATCH", "pods/{p}/binding"),
    ("DELETE", "pods/{p}/log"),
    ("PUT", "pods/{p}/exec"),
    ("DELETE", "pods/{p}/action"),
]


@pytest.mark.parametrize(("method", "sub"), WRONG)
def test_wrong_verbs_on_pod_subresources_are_405(http: Http, ns: str, method: str, sub: str) -> None:
    base = f"/api/v1/namespaces/{ns}/pods"
    http.post(base, pod("p"))
    body = {} if method in ("POST", "PUT", "PATCH") else None
    r = http.req(method, f"/api/v1/namespaces/{ns}/" + sub.format(p="p"), body)
    assert r.status_code == 405, r.text
    assert status_of(r)["reason"] == "MethodNotAllowed"
    got = http.get(f"{base}/p")
    assert got.status_code == 200 and not got.json()["metadata"].get("deletionTimestamp")


def test_wrong_verbs_on_scale_and_namespace_subresources_are_405(http: Http, ns: str) -> None:
    http.post(f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("web"))
    r = http.delete(f"/apis/apps/v1/namespaces/{ns}/deployments/web/scale")
    assert r.status_code == 405, r.text
    assert r.json()["reason"] == "MethodNotAllowed"
    assert http.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web").status_code == 200
    for method in ("DELETE", "GET", "PATCH"):
        r = http.req(method, f"/api/v1/namespaces/{ns}/finalize", {} if method == "PATCH" else None)
        assert r.status_code == 405, (method, r.text)
    assert http.delete(f"/api/v1/namespaces/{ns}/status").status_code == 405
    assert "deletionTimestamp" not in http.get(f"/api/v1/namespaces/{ns}").json()["metadata"]


@pytest.fixture(scope="module")
def rbac_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    d: Path = tmp_path_factory.mktemp("subresource-rbac")
    tokens = TokenFile(d / "tokens.json")
    tokens.add(ADMIN, "system:admin", "system", [SYSTEM_MASTERS, "system:authenticated"])
    tokens.add(ALICE, "alice", "system", ["system:authenticated"])
    srv = ApiServerProcess(d, anonymous=False).start()
    try:
        yield srv
    finally:
        srv.stop()


def _as(token: str, srv: ApiServerProcess) -> Http:
    h = Http(srv.url)
    h.s.headers["Authorization"] = f"Bearer {token}"
    return h


def test_status_is_authorized_as_pods_status(rbac_api: ApiServerProcess) -> None:
    admin, alice = _as(ADMIN, rbac_api), _as(ALICE, rbac_api)
    ns = "default"
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}"
    role = {
        "metadata": {"name": "status-writer"},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["*"]},
        ],
    }
    assert admin.post(f"{rbac}/roles", role).status_code == 201
    binding = {
        "metadata": {"name": "alice-status"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "status-writer"},
        "subjects": [{"kind": "User", "name": "alice"}],
    }
    assert admin.post(f"{rbac}/rolebindings", binding).status_code == 201
    pods = f"/api/v1/namespaces/{ns}/pods"
    assert admin.post(pods, pod("guarded")).status_code == 201
    # The role grants every verb on pods/status, but DELETE is not a verb of that subresource.
    r = alice.delete(f"{pods}/guarded/status")
    assert r.status_code == 405, r.text
    assert admin.get(f"{pods}/guarded").status_code == 200
    # Status writes are authorized as pods/status ...
    r = alice.patch(f"{pods}/guarded/status", {"status": {"phase": "Running"}})
    assert r.status_code == 200, r.text
    # ... and the pod itself stays out of reach.
    assert alice.patch(f"{pods}/guarded", {"metadata": {"labels": {"x": "y"}}}).status_code == 403
    assert alice.delete(f"{pods}/guarded").status_code == 403
    assert admin.get(f"{pods}/guarded").json()["status"]["phase"] == "Running"
    # Without a pods/status grant, a status write is forbidden even with pods granted.
    admin.put(
        f"{rbac}/roles/status-writer",
        dict(role, rules=[{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]),
    )
    eventually_sync(
        lambda: alice.patch(f"{pods}/guarded/status", {"status": {"phase": "Failed"}}).status_code == 403,
        10,
        0.05,
        "a status write to be forbidden without a pods/status grant",
    )
