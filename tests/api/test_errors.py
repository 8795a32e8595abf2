"""Bad input: each gets the right 4xx Status (kind Status, reason, a message saying what
to fix) and nothing is stored. On the embedded store."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Http, configmap, deployment, pod, status_of
from tests.cluster import ApiServerProcess


@pytest.fixture(scope="module")
def api(apiserver: ApiServerProcess) -> ApiServerProcess:
    return apiserver


def assert_nothing_stored(http: Http, ns: str) -> None:
    for p in (
        f"/api/v1/namespaces/{ns}/pods",
        f"/api/v1/namespaces/{ns}/configmaps",
        f"/apis/apps/v1/namespaces/{ns}/deployments",
    ):
        assert http.get(p).json()["items"] == [], p


def test_malformed_json_and_yaml(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    r = http.post(path, data='{"apiVersion": "v1", "kind": "Pod", "metadata": {', ct="application/json")
    assert r.status_code == 400
    st = status_of(r)
    assert st["reason"] == "BadRequest" and "not valid JSON" in st["message"]
    r = http.post(path, data="apiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n", ct="application/yaml")
    assert r.status_code == 400 and "not valid YAML" in status_of(r)["message"]
    r = http.post(path, data="", ct="application/json")
    assert r.status_code == 400 and "empty" in status_of(r)["message"]
    r = http.post(path, data="[1, 2]", ct="application/json")
    assert r.status_code == 400 and "JSON object" in status_of(r)["message"]
    assert_nothing_stored(http, ns)


def test_yaml_body_is_accepted(http: Http, ns: str) -> None:
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n"
    r = http.post(f"/api/v1/namespaces/{ns}/configmaps", data=doc, ct="application/yaml")
    assert r.status_code == 201, r.text
    http.delete(f"/api/v1/namespaces/{ns}/configmaps/from-yaml")


def test_unknown_kind_and_api_version(http: Http, ns: str) -> None:
    r = http.post(
        f"/api/v1/namespaces/{ns}/widgets", {"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "w"}}
    )
    assert r.status_code == 404 and status_of(r)["reason"] == "NotFound" and "widgets" in r.json()["message"]
    r = http.get("/apis/example.com/v1/widgets")
    assert r.status_code == 404 and status_of(r)["reason"] == "NotFound"
    body = pod("p")
    body["apiVersion"] = "v2"
    r = http.post(f"/api/v1/namespaces/{ns}/pods", body)
    assert r.status_code == 400
    st = status_of(r)
    assert st["reason"] == "BadRequest" and "apiVersion v1" in st["message"]
    body = pod("p")
    body["kind"] = "Deployment"
    r = http.post(f"/api/v1/namespaces/{ns}/pods", body)
    assert r.status_code == 400 and "send a Pod" in status_of(r)["message"]
    assert_nothing_stored(http, ns)


@pytest.mark.parametrize("name", ["Upper", "under_score", "-lead", "trail-", "a" * 254, "sp ace"])
def test_invalid_names(http: Http, ns: str, name: str) -> None:
    r = http.post(f"/api/v1/namespaces/{ns}/configmaps", configmap(name))
    assert r.status_code == 422
    st = status_of(r)
    assert st["reason"] == "Invalid" and "metadata.name" in st["message"]
    assert "RFC 1123" in st["message"] or "no more than 253 characters" in st["message"]
    assert st["details"]["causes"][0]["field"] == "metadata.name"
    assert_nothing_stored(http, ns)


def test_invalid_namespace_name_is_a_dns_label(http: Http) -> None:
    r = http.post(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}}
    )
    assert r.status_code == 422 and "RFC 1123 label" in status_of(r)["message"]
    assert http.get("/api/v1/namespaces/a.b").status_code == 404


def test_missing_required_fields(http: Http, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}"
    r = http.post(f"{base}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})
    assert (
        r.status_code == 422
        and "metadata.name" in status_of(r)["message"]
        and "generateName" in r.json()["message"]
    )
    r = http.post(f"{base}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap"})
    assert r.status_code == 422 and "metadata" in status_of(r)["message"]
    r = http.post(f"{base}/pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nospec"}})
    assert r.status_code == 422 and "spec.containers" in status_of(r)["message"]
    bad = pod("noimage")
    del bad["spec"]["containers"][0]["image"]
    r = http.post(f"{base}/pods", bad)
    assert r.status_code == 422 and "spec.containers[0].image: Required value" in status_of(r)["message"]
    d = deployment("nosel")
    del d["spec"]["selector"]
    r = http.post(f"/apis/apps/v1/namespaces/{ns}/deployments", d)
    st = status_of(r)
    assert r.status_code == 422 and "spec.selector" in st["message"]
    assert any(c["field"] == "spec.selector" for c in st["details"]["causes"])
    d = deployment("mismatch")
    d["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    r = http.post(f"/apis/apps/v1/namespaces/{ns}/deployments", d)
    assert r.status_code == 422 and "does not match" in status_of(r)["message"]
    r = http.post(
        f"{base}/configmaps",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"n": 1}},
    )
    assert r.status_code == 422 and "data[n]" in status_of(r)["message"]
    assert_nothing_stored(http, ns)


def test_body_over_3_mib_is_413(http: Http, ns: str, api: ApiServerProcess) -> None:
    big = configmap("big", blob="x" * (3 * 1024 * 1024 + 10))
    r = http.post(f"/api/v1/namespaces/{ns}/configmaps", big)
    assert r.status_code == 413
    st = status_of(r)
    assert st["reason"] == "RequestEntityTooLarge" and "3 MiB" in st["message"]
    # chunked upload (no Content-Length) is cut off too
    payload = json.dumps(big).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 1 << 20):
            yield payload[i : i + (1 << 20)]

    r = http.s.post(
        f"{api.url}/api/v1/namespaces/{ns}/configmaps",
        data=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 413 and status_of(r)["reason"] == "RequestEntityTooLarge"
    # just under the limit is fine
    ok = configmap("almost", blob="x" * (3 * 1024 * 1024 - 4096))
    assert http.post(f"/api/v1/namespaces/{ns}/configmaps", ok).status_code == 201
    assert [
        o["metadata"]["name"] for o in http.get(f"/api/v1/namespaces/{ns}/configmaps").json()["items"]
    ] == ["almost"]


def test_wrong_content_type_is_415(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    for ct in ("text/plain", "application/vnd.kubernetes.protobuf", "application/x-www-form-urlencoded"):
        r = http.post(path, data=json.dumps(configmap("ct")), ct=ct)
        assert r.status_code == 415, ct
        st = status_of(r)
        assert st["reason"] == "UnsupportedMediaType" and "application/json" in st["message"]
    http.post(path, configmap("ct"))
    r = http.patch(f"{path}/ct", {"data": {"a": "b"}}, ct="application/x-unknown-patch+json")
    assert r.status_code == 415 and "merge-patch+json" in status_of(r)["message"]
    r = http.patch(f"{path}/ct", {"data": {"a": "b"}}, ct="text/plain")
    assert r.status_code == 415
    assert http.get(f"{path}/ct").json()["data"] == {}


def test_url_and_body_disagree(http: Http, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    body = configmap("m")
    body["metadata"]["namespace"] = "default"
    r = http.post(base, body)
    assert r.status_code == 400
    st = status_of(r)
    assert "namespace of the provided object (default)" in st["message"] and f"({ns})" in st["message"]
    body = configmap("m")
    body["metadata"]["tenant"] = "someone-else"
    r = http.post(base, body)
    assert r.status_code == 400 and "tenant of the provided object" in status_of(r)["message"]
    http.post(base, configmap("m"))
    r = http.put(f"{base}/m", configmap("other-name"))
    assert r.status_code == 400 and "does not match the name on the URL" in status_of(r)["message"]
    assert http.get(f"{base}/other-name").status_code == 404
    r = http.post(
        "/api/v1/nodes",
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "nn", "namespace": "default"}},
    )
    assert r.status_code == 400 and "not namespaced" in status_of(r)["message"]
    assert http.get("/api/v1/nodes/nn").status_code == 404


def test_missing_namespace_and_method_not_allowed(http: Http) -> None:
    r = http.post("/api/v1/namespaces/does-not-exist/configmaps", configmap("x"))
    assert r.status_code == 404 and 'namespaces "does-not-exist" not found' in status_of(r)["message"]
    r = http.put("/api/v1/namespaces/default/configmaps", configmap("x"))
    assert r.status_code == 405 and status_of(r)["reason"] == "MethodNotAllowed"
    r = http.get("/api/v1/namespaces/default/configmaps/x/y/z")
    assert r.status_code == 404


@pytest.mark.slow
def test_unauthenticated_is_401(tmp_path: Path) -> None:
    srv = ApiServerProcess(tmp_path / "auth", anonymous=False).start()
    try:
        h = Http(srv.url)
        r = h.get("/api/v1/namespaces")
        assert r.status_code == 401 and status_of(r)["reason"] == "Unauthorized"
        r = h.get("/api/v1/namespaces", headers={"Authorization": "Bearer not-a-token"})
        assert r.status_code == 401
        assert h.get("/healthz").status_code == 200 and h.get("/version").status_code == 200
    finally:
        srv.stop()


def test_garbage_on_the_socket_does_not_kill_the_server(http: Http, api: ApiServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", api.port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x00garbage\r\n\r\n")
        s.recv(1024)
    assert http.get("/healthz").status_code == 200
