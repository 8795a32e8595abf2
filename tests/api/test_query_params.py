"""Query parameters parsed strictly: a bad value is a 400 Status naming the parameter.

Against a real API server (embedded store). The data-safety cases matter most: a
malformed ``labelSelector`` used to match everything, so a DELETE of a collection with it
deleted every object; here it deletes nothing.
"""

from __future__ import annotations

import pytest

from tests.api.conftest import Http, configmap, names, pod, status_of
from tests.cluster import ApiServerProcess


@pytest.fixture(scope="module")
def api(apiserver: ApiServerProcess) -> ApiServerProcess:
    return apiserver


def bad(r: object, param: str) -> None:
    st = status_of(r)  # type: ignore[arg-type]
    assert st["code"] == 400 and st["reason"] == "BadRequest", st
    assert param in st["message"], st


BAD_LABEL_SELECTORS = [
    "!!!",
    "a=b=c",
    "a,,b",
    ",a",
    "a,",
    "a in ()",
    "a in (x",
    "a b",
    "-a=b",
    "a=-b",
    "x" * 64,
]


@pytest.mark.parametrize("selector", BAD_LABEL_SELECTORS)
def test_malformed_label_selector_is_400_and_deletes_nothing(http: Http, ns: str, selector: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    for n in ("one", "two"):
        assert http.post(path, configmap(n, {"a": "b"})).status_code == 201
    bad(http.get(path, params={"labelSelector": selector}), "labelSelector")
    bad(http.delete(path, params={"labelSelector": selector}), "labelSelector")
    bad(http.get(path, params={"labelSelector": selector, "watch": "1"}), "labelSelector")
    assert names(http, path) == ["one", "two"]


def test_valid_label_selectors_still_select(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    http.post(path, configmap("web", {"app.kubernetes.io/name": "web", "tier": "front"}))
    http.post(path, configmap("db", {"app.kubernetes.io/name": "db"}))
    assert names(http, path, labelSelector="app.kubernetes.io/name=web") == ["web"]
    assert names(http, path, labelSelector="app.kubernetes.io/name in (web, db),!tier") == ["db"]
    assert names(http, path, labelSelector=" tier , app.kubernetes.io/name != db ") == ["web"]
    assert names(http, path, labelSelector="tier=") == []
    r = http.delete(path, params={"labelSelector": "tier=front"})
    assert r.status_code == 200, r.text
    assert names(http, path) == ["db"]


@pytest.mark.parametrize(
    "selector",
    ["metadata.name", "=x", "metadata.name=a,,status.phase=b", "metadata.name=a=b", "metadata.name=a\\"],
)
def test_malformed_field_selector_is_400(http: Http, ns: str, selector: str) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    http.post(path, pod("p1"))
    bad(http.get(path, params={"fieldSelector": selector}), "fieldSelector")
    bad(http.delete(path, params={"fieldSelector": selector}), "fieldSelector")
    assert names(http, path) == ["p1"]


def test_field_selector_escapes_and_empty_values(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    http.post(path, pod("unbound"))
    assert names(http, path, fieldSelector="spec.nodeName=") == ["unbound"]
    assert names(http, path, fieldSelector="metadata.name=a\\,b") == []
    assert names(http, path, fieldSelector="metadata.name!=x,spec.nodeName==") == ["unbound"]


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("limit", "-1"),
        ("limit", "abc"),
        ("limit", "1.5"),
        ("resourceVersion", "abc"),
        ("resourceVersion", "-3"),
        ("timeoutSeconds", "abc"),
        ("continue", "zz"),
        ("continue", "7b7d"),  # '{}'
        ("continue", b'{"k":5,"r":1}'.hex()),
        ("continue", b'{"k":"/registry/configmaps/","r":"1"}'.hex()),
        ("continue", b'{"k":"/registry/secrets/system/kube-system/x","r":1}'.hex()),
        ("continue", b'{"k":"/registry/configmaps/system/","r":99999999999}'.hex()),
        ("watch", "maybe"),
        ("fieldValidation", "Loose"),
        ("fieldManager", "x" * 129),
        ("dryRun", "yes"),
        ("dryRun", ""),
    ],
)
def test_bad_list_parameters_are_400(http: Http, ns: str, param: str, value: str) -> None:
    r = http.get(f"/api/v1/namespaces/{ns}/configmaps", params={param: value})
    bad(r, param)


def test_watch_with_bad_resource_version_is_400(http: Http, ns: str) -> None:
    r = http.get(f"/api/v1/namespaces/{ns}/configmaps", params={"watch": "1", "resourceVersion": "abc"})
    bad(r, "resourceVersion")


def test_a_valid_continue_token_still_pages(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(3):
        http.post(path, configmap(f"c{i}"))
    first = http.get(path, params={"limit": "2"}).json()
    token = first["metadata"]["continue"]
    rest = http.get(path, params={"limit": "2", "continue": token}).json()
    assert [o["metadata"]["name"] for o in first["items"] + rest["items"]] == ["c0", "c1", "c2"]
    # The token is for this list only: another namespace's list refuses it.
    other = http.get("/api/v1/namespaces/default/configmaps", params={"continue": token})
    bad(other, "continue")


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("gracePeriodSeconds", "abc"),
        ("gracePeriodSeconds", "null"),
        ("gracePeriodSeconds", "1e10"),
        ("gracePeriodSeconds", "1.5"),
        ("gracePeriodSeconds", "99999999999999999999"),
        ("propagationPolicy", "Sometimes"),
        ("dryRun", "true"),
    ],
)
def test_bad_delete_parameters_are_400_and_delete_nothing(
    http: Http, ns: str, param: str, value: str
) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    http.post(path, pod("keep"))
    bad(http.delete(f"{path}/keep", params={param: value}), param)
    bad(http.delete(path, params={param: value}), param)
    assert http.get(f"{path}/keep").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"gracePeriodSeconds": "abc"},
        {"gracePeriodSeconds": 1.5},
        {"propagationPolicy": 7},
        {"dryRun": "All"},
        {"preconditions": "x"},
        {"orphanDependents": "yes"},
        [1, 2],
    ],
)
def test_bad_delete_options_bodies_are_400(http: Http, ns: str, body: object) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    http.post(path, configmap("keep"))
    r = http.delete(f"{path}/keep", body)
    assert r.status_code == 400, r.text
    status_of(r)
    assert http.get(f"{path}/keep").status_code == 200


def test_negative_grace_period_means_one_second(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    http.post(path, pod("bound", nodeName="n1"))
    r = http.delete(f"{path}/bound", params={"gracePeriodSeconds": "-5"})
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["deletionGracePeriodSeconds"] == 1
