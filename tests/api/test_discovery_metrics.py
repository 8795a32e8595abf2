"""Discovery (/api, /apis, group and resource lists), /version, OpenAPI v2 and v3,
/healthz, /readyz, /livez and /metrics, on the embedded store."""

from __future__ import annotations

import re

import pytest

from ctl.types import kinds
from tests.api.conftest import Http, configmap, status_of
from tests.cluster import ApiServerProcess


@pytest.fixture(scope="module")
def api(apiserver: ApiServerProcess) -> ApiServerProcess:
    return apiserver


def test_core_and_group_discovery_list_every_kind(http: Http) -> None:
    assert http.get("/api").json()["versions"] == ["v1"]
    groups = {g["name"]: g for g in http.get("/apis").json()["groups"]}
    assert {
        "apps",
        "coordination.k8s.io",
        "rbac.authorization.k8s.io",
        "arktos.centaurus.io",
        "mizar.centaurus.io",
    } <= set(groups)
    assert groups["apps"]["preferredVersion"]["groupVersion"] == "apps/v1"
    seen: set[str] = set()
    for gv in ["v1"] + [v["groupVersion"] for g in groups.values() for v in g["versions"]]:
        path = "/api/v1" if gv == "v1" else f"/apis/{gv}"
        doc = http.get(path).json()
        assert doc["kind"] == "APIResourceList" and doc["groupVersion"] == gv
        for r in doc["resources"]:
            if "/" not in r["name"]:
                seen.add(f"{gv}/{r['kind']}")
                virtual = {f"{k.api_version}/{k.kind}": k for k in kinds.VIRTUAL_KINDS}
                if f"{gv}/{r['kind']}" in virtual:  # reviews: create only; metrics: get and list
                    assert r["verbs"] == list(virtual[f"{gv}/{r['kind']}"].verbs)
                else:
                    assert {"get", "list", "watch", "create"} <= set(r["verbs"])
    assert {f"{k.api_version}/{k.kind}" for k in kinds.KINDS} <= seen
    res = {r["name"]: r for r in http.get("/apis/apps/v1").json()["resources"]}
    assert res["deployments/scale"]["kind"] == "Scale" and res["deployments/scale"]["group"] == "autoscaling"
    assert res["deployments"]["namespaced"] is True and "deploy" in res["deployments"]["shortNames"]
    core = {r["name"]: r for r in http.get("/api/v1").json()["resources"]}
    assert core["pods/binding"]["verbs"] == ["create"] and core["namespaces"]["namespaced"] is False
    assert http.get("/apis/apps").json()["kind"] == "APIGroup"
    r = http.get("/apis/nope.example.com")
    assert r.status_code == 404 and status_of(r)["reason"] == "NotFound"


def test_version(http: Http) -> None:
    v = http.get("/version").json()
    assert v["major"] == "1" and v["minor"].isdigit() and v["gitVersion"].startswith("v1.")


def test_openapi_v2_and_v3(http: Http) -> None:
    doc = http.get("/openapi/v2").json()
    assert doc["swagger"] == "2.0"
    gvks = {
        (g["group"], g["version"], g["kind"])
        for d in doc["definitions"].values()
        for g in d.get("x-kubernetes-group-version-kind", [])
    }
    assert {(k.group, k.version, k.kind) for k in kinds.KINDS} <= gvks
    assert "/apis/apps/v1/namespaces/{namespace}/deployments" in doc["paths"]
    r = http.get(
        "/openapi/v2", headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"}
    )
    assert r.status_code == 406
    idx = http.get("/openapi/v3").json()["paths"]
    assert "api/v1" in idx and "apis/apps/v1" in idx
    v3 = http.get(idx["apis/apps/v1"]["serverRelativeURL"]).json()
    assert v3["openapi"].startswith("3.") and any(
        s.endswith(".Deployment") for s in v3["components"]["schemas"]
    )
    assert http.get("/openapi/v3/apis/nope/v1").status_code == 404


def test_health_endpoints(http: Http) -> None:
    for p in ("/healthz", "/livez", "/readyz"):
        r = http.get(p)
        assert r.status_code == 200 and r.text == "ok", p


def _counter(text: str, verb: str, resource: str, code: int) -> float:
    m = re.search(
        rf'^apiserver_request_total{{verb="{verb}",resource="{resource}",code="{code}"}} (\S+)$', text, re.M
    )
    return float(m.group(1)) if m else 0.0


def test_metrics_count_requests(http: Http, ns: str) -> None:
    before = http.get("/metrics").text
    http.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("m1"))
    http.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("m1"))  # 409
    http.get(f"/api/v1/namespaces/{ns}/configmaps/none")  # 404
    r = http.get("/metrics")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    after = r.text
    assert _counter(after, "create", "configmaps", 201) == _counter(before, "create", "configmaps", 201) + 1
    assert _counter(after, "create", "configmaps", 409) == _counter(before, "create", "configmaps", 409) + 1
    assert _counter(after, "get", "configmaps", 404) == _counter(before, "get", "configmaps", 404) + 1
    assert re.search(
        r'^apiserver_request_duration_seconds_bucket\{verb="create",resource="configmaps",le="\+Inf"\} \d+',
        after,
        re.M,
    )
    assert re.search(r"^centaurus_store_revision \d+", after, re.M)
    assert "apiserver_registered_watchers" in after
    # every non-comment line is "name{labels} value" or "name value"
    for line in after.splitlines():
        if line and not line.startswith("#"):
            assert re.match(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eEInfa]+$", line), line
