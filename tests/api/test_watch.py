"""Watch streams on both backends: ordering, resume by resourceVersion, selectors
(including selector transitions and the spec.nodeName index), timeouts, and 410 Gone
once the store has been compacted past the requested revision.

The 410 test runs an API server with ``--compact-interval 0.2 --compact-retain 5``, the
same periodic compaction kube-apiserver does every five minutes.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.api.conftest import Http, WatchStream, configmap, pod, start_api, status_of
from tests.helpers import eventually_sync


def test_watch_from_list_revision_sees_every_change_in_order(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    http.post(path, configmap("before"))
    rv = http.get(path).json()["metadata"]["resourceVersion"]
    with WatchStream(http, path, {"resourceVersion": rv}) as w:
        assert w.status == 200
        a = http.post(path, configmap("a")).json()
        http.patch(f"{path}/a", {"data": {"k": "v"}})
        http.delete(f"{path}/a")
        evs = [w.next() for _ in range(3)]
        assert [(t, o["metadata"]["name"]) for t, o in evs] == [
            ("ADDED", "a"),
            ("MODIFIED", "a"),
            ("DELETED", "a"),
        ]
        rvs = [int(o["metadata"]["resourceVersion"]) for _, o in evs]
        assert rvs == sorted(rvs) and rvs[0] == int(a["metadata"]["resourceVersion"])
        assert evs[1][1]["data"] == {"k": "v"} and evs[0][1]["metadata"]["tenant"] == "system"
        # DELETED carries the last state, at the revision of the delete
        assert evs[2][1]["data"] == {"k": "v"} and evs[2][1]["metadata"]["uid"] == a["metadata"]["uid"]
        assert w.quiet(0.3)  # "before" is not replayed: it predates rv


def test_watch_without_revision_starts_with_current_objects(http: Http, ns: str) -> None:
    path = f"/api/v1/tenants/system/namespaces/{ns}/configmaps"
    for n in ("x", "y"):
        http.post(path, configmap(n))
    with WatchStream(http, path) as w:
        assert sorted(w.take(2)) == [("ADDED", "x"), ("ADDED", "y")]
        http.post(path, configmap("z"))
        assert w.take(1) == [("ADDED", "z")]


def test_watch_resumes_from_any_recent_revision(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    rvs = [http.post(path, configmap(f"r{i}")).json()["metadata"]["resourceVersion"] for i in range(5)]
    http.delete(f"{path}/r0")
    # resume after the third create: exactly r3, r4, then the delete of r0
    with WatchStream(http, path, {"resourceVersion": rvs[2]}) as w:
        assert w.take(3) == [("ADDED", "r3"), ("ADDED", "r4"), ("DELETED", "r0")]
        assert w.quiet(0.3)


def test_watch_label_selector_transitions(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    rv = http.get(path).json()["metadata"]["resourceVersion"]
    with WatchStream(http, path, {"resourceVersion": rv, "labelSelector": "team=a"}) as w:
        http.post(path, configmap("other", {"team": "b"}))
        http.post(path, configmap("mine", {"team": "a"}))
        assert w.take(1) == [("ADDED", "mine")]
        http.patch(f"{path}/other", {"metadata": {"labels": {"team": "a"}}})  # enters the selection
        assert w.take(1) == [("ADDED", "other")]
        http.patch(f"{path}/mine", {"metadata": {"labels": {"team": "c"}}})  # leaves it
        assert w.take(1) == [("DELETED", "mine")]
        http.patch(f"{path}/mine", {"data": {"ignored": "yes"}})
        assert w.quiet(0.3)


def test_watch_by_node_name(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    rv = http.get(path).json()["metadata"]["resourceVersion"]
    with (
        WatchStream(
            http, "/api/v1/pods", {"resourceVersion": rv, "fieldSelector": "spec.nodeName=node-a"}
        ) as wa,
        WatchStream(
            http, "/api/v1/pods", {"resourceVersion": rv, "fieldSelector": "spec.nodeName=node-b"}
        ) as wb,
    ):
        for n in ("p1", "p2"):
            http.post(path, pod(n))
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": "p1"},
            "target": {"kind": "Node", "name": "node-a"},
        }
        assert http.post(f"{path}/p1/binding", binding).status_code == 201
        t, o = wa.next()
        assert (t, o["metadata"]["name"], o["spec"]["nodeName"]) == ("ADDED", "p1", "node-a")
        http.patch(f"{path}/p1/status", {"status": {"phase": "Running"}})
        t, o = wa.next()
        assert (t, o["status"]["phase"]) == ("MODIFIED", "Running")
        assert wb.quiet(0.3)
        assert wa.quiet(0.2)  # p2 (unbound) never shows up on node-a


def test_watch_timeout_ends_the_stream(http: Http, ns: str) -> None:
    t0 = time.monotonic()
    with WatchStream(http, f"/api/v1/namespaces/{ns}/configmaps", {"timeoutSeconds": "1"}) as w:
        with pytest.raises(EOFError):
            w.next(5)
    assert time.monotonic() - t0 < 4


def test_watch_bad_resource_version_is_400(http: Http, ns: str) -> None:
    r = http.get(f"/api/v1/namespaces/{ns}/pods", params={"watch": "1", "resourceVersion": "abc"})
    assert r.status_code == 400 and "resourceVersion" in status_of(r)["message"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "etcd"])
def test_compacted_revision_is_410_gone(backend: str, tmp_path, request: pytest.FixtureRequest) -> None:
    if backend == "etcd":
        from tests.api.conftest import HAVE_ETCD

        if not HAVE_ETCD:
            pytest.skip("etcd not installed")
    srv = start_api(
        backend, tmp_path / "api", request, ["--compact-interval", "0.2", "--compact-retain", "5"]
    )
    try:
        http = Http(srv.url)
        ns = f"gone-{backend}"
        http.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        path = f"/api/v1/namespaces/{ns}/configmaps"
        first = http.post(path, configmap("c0")).json()["metadata"]["resourceVersion"]
        http.post(path, configmap("c1"))
        page = http.get(path, params={"limit": "1"}).json()
        for i in range(2, 30):
            http.post(path, configmap(f"c{i}"))
        token = page["metadata"]["continue"]

        def gone() -> list[Any]:  # wait for the periodic compaction to pass `first`
            r = http.get(
                path, params={"watch": "1", "resourceVersion": first, "timeoutSeconds": "1"}, stream=True
            )
            if r.status_code == 410:
                return [r]  # in a list: a 410 Response is falsy
            r.close()
            return []

        r = eventually_sync(gone, 10, 0.2, "a watch from a compacted revision to answer 410")[0]
        st = status_of(r)
        assert st["reason"] in ("Expired", "Gone") and "too old resource version" in st["message"]
        # a recent revision still works
        recent = http.get(path).json()["metadata"]["resourceVersion"]
        with WatchStream(http, path, {"resourceVersion": recent}) as w:
            assert w.status == 200
            http.post(path, configmap("late"))
            assert w.take(1) == [("ADDED", "late")]
        # continuing a paged list whose snapshot was compacted is 410 too
        r = http.get(path, params={"limit": "1", "continue": token})
        assert r.status_code == 410, r.text
        assert "continue" in status_of(r)["message"]
        assert "compacted the store" in srv.log()
    finally:
        srv.stop()


def test_watch_as_table_sends_rows(http: Http, ns: str) -> None:
    """kubectl get -w asks for Tables: each event carries one row, column definitions come once."""
    path = f"/api/v1/namespaces/{ns}/configmaps"
    http.post(path, configmap("t1", a="1"))
    http.post(path, configmap("t2", a="1"))
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    r = http.get(path, params={"watch": "1", "timeoutSeconds": "1"}, headers={"Accept": accept}, stream=True)
    events = [json.loads(line) for line in r.iter_lines() if line]
    assert [e["type"] for e in events] == ["ADDED", "ADDED"]
    first, second = events[0]["object"], events[1]["object"]
    assert first["kind"] == "Table" and first["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in first["columnDefinitions"]][:2] == ["Name", "Data"]
    assert second["columnDefinitions"] is None  # as kube-apiserver: NoHeaders after the first event
    assert [row["cells"][0] for e in events for row in e["object"]["rows"]] == ["t1", "t2"]
    assert first["rows"][0]["object"]["metadata"]["name"] == "t1"
