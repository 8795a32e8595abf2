"""Request bodies built to hurt the server: alias bombs, YAML tags, deep nesting, huge bad values.

Each is sent to a real API server (embedded store); the answer must be a 4xx Status that
says what is wrong, quickly, without the server's memory growing, and the server must be
healthy afterwards. Before :mod:`ctl.apiserver.decode` these were 500s (or a 737 MiB server).
"""

from __future__ import annotations

import json
import time

import pytest

from tests.api.conftest import Http, configmap, pod, status_of
from tests.cluster import ApiServerProcess

YAML = "application/yaml"


@pytest.fixture(scope="module")
def api(apiserver: ApiServerProcess) -> ApiServerProcess:
    return apiserver


def rss_kib(api: ApiServerProcess) -> int:
    assert api.proc is not None
    with open(f"/proc/{api.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def billion_laughs(levels: int = 9) -> str:
    lines = [
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata: {name: lol}",
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    prev = "a"
    for i in range(1, levels):
        name = chr(ord("a") + i)
        lines.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
        prev = name
    return "\n".join(lines) + "\n"


def assert_healthy(http: Http) -> None:
    assert http.get("/healthz").status_code == 200


def test_yaml_alias_bomb_is_refused_quickly_without_memory_growth(
    http: Http, ns: str, api: ApiServerProcess
) -> None:
    body = billion_laughs()
    assert len(body) < 600  # a few hundred bytes that would expand to ~10^9 strings
    before = rss_kib(api)
    t0 = time.monotonic()
    r = http.req("POST", f"/api/v1/namespaces/{ns}/configmaps", data=body, ct=YAML)
    elapsed = time.monotonic() - t0
    assert r.status_code in (400, 413), r.text[:500]
    assert "aliasing" in status_of(r)["message"]
    assert elapsed < 2.0
    assert rss_kib(api) - before < 50 * 1024
    assert http.get(f"/api/v1/namespaces/{ns}/configmaps/lol").status_code == 404
    assert_healthy(http)


def test_reasonable_yaml_aliases_still_work_and_are_not_shared(http: Http, ns: str) -> None:
    body = (
        "apiVersion: v1\nkind: ConfigMap\n"
        "metadata: {name: anchors, labels: &l {app: web}, annotations: *l}\n"
        "data: {a: x, b: y}\n"
    )
    r = http.req("POST", f"/api/v1/namespaces/{ns}/configmaps", data=body, ct=YAML)
    assert r.status_code == 201, r.text
    md = r.json()["metadata"]
    assert md["labels"] == {"app": "web"} and md["annotations"] == {"app": "web"}


@pytest.mark.parametrize(
    "value",
    [
        "!!set {a, b}",
        "!!binary aGVsbG8=",
        "!!python/object/apply:os.system [echo pwned]",
        "!!omap [{a: 1}]",
        "!custom x",
    ],
)
def test_yaml_tags_outside_json_are_400(http: Http, ns: str, value: str) -> None:
    body = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: tagged}}\ndata:\n  k: {value}\n"
    r = http.req("POST", f"/api/v1/namespaces/{ns}/configmaps", data=body, ct=YAML)
    assert r.status_code == 400, r.text
    assert "tag" in status_of(r)["message"]


@pytest.mark.parametrize("key", ["1", "true", "2001-12-14", "[a, b]", "null"])
def test_yaml_non_string_keys_are_400(http: Http, ns: str, key: str) -> None:
    body = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: keys}}\ndata:\n  {key}: x\n"
    if key.startswith("["):
        body = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: keys}}\ndata:\n  ? {key}\n  : x\n"
    r = http.req("POST", f"/api/v1/namespaces/{ns}/configmaps", data=body, ct=YAML)
    assert r.status_code == 400, r.text
    assert "keys must be strings" in status_of(r)["message"]


def test_yaml_timestamps_stay_strings(http: Http, ns: str) -> None:
    body = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dates\n"
        "  annotations: {when: 2001-12-14t21:59:43.10-05:00}\ndata:\n  day: 2001-12-14\n"
    )
    r = http.req("POST", f"/api/v1/namespaces/{ns}/configmaps", data=body, ct=YAML)
    assert r.status_code == 201, r.text
    got = http.get(f"/api/v1/namespaces/{ns}/configmaps/dates").json()
    assert got["data"]["day"] == "2001-12-14"
    assert got["metadata"]["annotations"]["when"] == "2001-12-14t21:59:43.10-05:00"


def test_yaml_infinity_is_400(http: Http, ns: str) -> None:
    body = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: inf}\nspec: {replicas: .inf}\n"
    r = http.req("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", data=body, ct=YAML)
    assert r.status_code == 400, r.text


def nested(depth: int) -> object:
    v: object = "x"
    for _ in range(depth):
        v = {"a": v}
    return v


@pytest.mark.parametrize("depth", [300, 2000])
def test_deep_json_is_400(http: Http, ns: str, depth: int) -> None:
    cm = configmap("deep-json")
    cm["extra"] = nested(depth)
    data = (
        json.dumps(cm)
        if depth < 900
        else '{"metadata":{"name":"deep"},"x":' + "[" * depth + "]" * depth + "}"
    )
    r = http.req("POST", f"/api/v1/namespaces/{ns}/configmaps", data=data)
    assert r.status_code == 400, r.text[:500]
    assert "nested" in status_of(r)["message"]
    assert_healthy(http)


def test_deep_yaml_is_400(http: Http, ns: str) -> None:
    depth = 600
    body = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep-yaml}\nx: " + "[" * depth + "]" * depth + "\n"
    )
    r = http.req("POST", f"/api/v1/namespaces/{ns}/configmaps", data=body, ct=YAML)
    assert r.status_code == 400, r.text[:500]
    assert "nested" in status_of(r)["message"]
    # Also through PATCH, which decodes the same way.
    http.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("target"))
    r = http.req(
        "PATCH", f"/api/v1/namespaces/{ns}/configmaps/target", data="x: " + "[" * depth + "]" * depth, ct=YAML
    )
    assert r.status_code == 400, r.text[:500]
    assert_healthy(http)


def test_moderate_nesting_is_fine(http: Http, ns: str) -> None:
    cm = configmap("nested-ok")
    cm["metadata"]["annotations"] = {"a": "b"}
    cm["extra"] = nested(40)
    r = http.post(f"/api/v1/namespaces/{ns}/configmaps", cm)
    assert r.status_code == 201, r.text[:300]


def test_a_huge_bad_value_gives_a_small_error(http: Http, ns: str) -> None:
    big = "x" * (1024 * 1024)
    p = pod("big-env")
    p["spec"]["containers"][0]["env"] = big  # a string where a list belongs
    r = http.post(f"/api/v1/namespaces/{ns}/pods", p)
    assert r.status_code in (400, 422), r.text[:300]
    assert len(r.content) < 64 * 1024
    status_of(r)
    cm = configmap("big-label")
    cm["metadata"]["labels"] = {"k": big}
    r = http.post(f"/api/v1/namespaces/{ns}/configmaps", cm)
    assert r.status_code == 422, r.text[:300]
    assert len(r.content) < 16 * 1024


def test_the_list_of_field_errors_is_capped(http: Http, ns: str) -> None:
    p = pod("many-errors")
    p["spec"]["containers"] = [{"name": f"BAD_{i}", "image": ""} for i in range(500)]
    r = http.post(f"/api/v1/namespaces/{ns}/pods", p)
    assert r.status_code == 422, r.text[:300]
    causes = status_of(r)["details"]["causes"]
    assert 1 <= len(causes) <= 25
    assert len(r.content) < 32 * 1024


@pytest.mark.parametrize(
    ("ct", "body"),
    [
        ("application/strategic-merge-patch+json", {"$patch": "delete"}),
        ("application/strategic-merge-patch+json", {"$patch": "delete", "data": {}}),
        ("application/strategic-merge-patch+json", {"metadata": {"$patch": "delete"}}),
        ("application/strategic-merge-patch+json", [1, 2]),
        ("application/json-patch+json", [{"op": "add"}]),
        ("application/json-patch+json", [1]),
        ("application/json-patch+json", {"op": "add", "path": "/x"}),
        ("application/json-patch+json", [{"op": "replace", "path": "/metadata/name/x/y", "value": 1}]),
        ("application/json-patch+json", [{"op": "move", "from": "/nope", "path": "/data"}]),
        ("application/merge-patch+json", "a string"),
        ("application/merge-patch+json", {"metadata": "not a map"}),
        ("application/merge-patch+json", {"metadata": {"name": 7}}),
    ],
)
def test_malformed_patches_are_4xx(http: Http, ns: str, ct: str, body: object) -> None:
    http.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("patched", {"a": "b"}, k="v"))
    r = http.patch(f"/api/v1/namespaces/{ns}/configmaps/patched", body, ct=ct)
    assert 400 <= r.status_code < 500, r.text[:500]
    status_of(r)
    assert http.get(f"/api/v1/namespaces/{ns}/configmaps/patched").status_code == 200
