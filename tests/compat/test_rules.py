"""The pure rules behind the compatibility features, checked in process (the fast loop):
disruption-budget arithmetic, quota resource names and pod usage, template hashes ignoring nulls,
impersonation header parsing and Table columns."""

from __future__ import annotations

from typing import Any

import pytest
from multidict import CIMultiDict

from ctl.apiserver import status as st
from ctl.apiserver.auth import Identity
from ctl.apiserver.eviction import budget_status
from ctl.apiserver.impersonation import Impersonator, refuse
from ctl.apiserver.tables import column_defs, requested, table
from ctl.controllers.deployment.util import equal_ignore_hash, template_hash
from ctl.types import kinds
from ctl.types.quota_accounting import pod_requests, quota_status, states_request, tracked


def _pod(
    name: str, ready: bool = True, labels: dict[str, str] | None = None, **status: Any
) -> dict[str, Any]:
    conds = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {
        "metadata": {"name": name, "labels": labels if labels is not None else {"app": "x"}},
        "status": {"phase": "Running", "conditions": conds, **status},
    }


@pytest.mark.parametrize(
    ("spec", "desired", "allowed"),
    [
        ({"minAvailable": 2}, 2, 2),
        ({"minAvailable": "50%"}, 2, 2),  # ceil(0.5 * 4) of 4 pods
        ({"minAvailable": "51%"}, 3, 1),
        ({"maxUnavailable": 1}, 3, 1),
        ({"maxUnavailable": "30%"}, 2, 2),  # ceil(0.3 * 4) = 2 may go
        ({}, 1, 3),
    ],
)
def test_budget_arithmetic(spec: dict[str, Any], desired: int, allowed: int) -> None:
    pdb = {
        "metadata": {"name": "b", "generation": 3},
        "spec": {**spec, "selector": {"matchLabels": {"app": "x"}}},
    }
    pods = [_pod(f"p{i}") for i in range(4)] + [_pod("other", labels={"app": "y"})]
    s = budget_status(pdb, pods, now=1000.0)
    assert (s["expectedPods"], s["currentHealthy"], s["desiredHealthy"], s["disruptionsAllowed"]) == (
        4,
        4,
        desired,
        allowed,
    )
    assert s["observedGeneration"] == 3


def test_budget_counts_unready_terminating_and_recently_disrupted_as_unhealthy() -> None:
    pdb = {"metadata": {"name": "b"}, "spec": {"minAvailable": 1, "selector": {}}}
    going = _pod("going")
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    pods = [_pod("a"), _pod("b", ready=False), going, _pod("done", phase="Succeeded"), _pod("evicted")]
    pdb["status"] = {"disruptedPods": {"evicted": "1970-01-01T00:16:30Z", "gone": "1970-01-01T00:16:30Z"}}
    s = budget_status(pdb, pods, now=1000.0)
    assert (s["expectedPods"], s["currentHealthy"], s["disruptionsAllowed"]) == (4, 1, 0)
    assert s["disruptedPods"] == {"evicted": "1970-01-01T00:16:30Z"}  # the gone pod is forgotten
    assert budget_status(pdb, pods, now=1000.0 + 600)["currentHealthy"] == 2  # stale entries expire
    assert budget_status({"metadata": {"name": "n"}, "spec": {"minAvailable": 1}}, pods)["expectedPods"] == 0


def test_quota_names_and_pod_usage() -> None:
    assert tracked("cpu") == "requests.cpu" and tracked("limits.memory") == "limits.memory"
    assert tracked("count/pods") == "pods" and tracked("configmaps") == "count/configmaps"
    assert tracked("count/deployments.apps") == "count/deployments.apps"
    assert tracked("services") is None and tracked("count/widgets.example.com") is None
    assert tracked("count/deployments") is None  # the core group has no deployments
    pod = {
        "spec": {
            "containers": [
                {"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "500m"}}},
            ],
            "initContainers": [
                {"name": "i", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "2"}}}
            ],
            "overhead": {"cpu": "100m"},
        }
    }
    use = pod_requests(pod)
    assert use["requests.cpu"] == pytest.approx(2.1)  # the init container's 2 beats 1.25, plus overhead
    assert use["limits.cpu"] == pytest.approx(2.1) and use["requests.memory"] == 1 << 30
    assert states_request(pod, "requests.cpu") and not states_request(pod, "limits.memory")
    st_ = quota_status(
        {"limits.cpu": "4", "count/configmaps": "3", "services": "1"}, [pod], {"count/configmaps": 2}
    )
    assert st_["used"] == {"limits.cpu": "2100m", "count/configmaps": "2"}


def test_template_hash_ignores_nulls() -> None:
    tpl = {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    undo = {"metadata": {"creationTimestamp": None, "labels": {"app": "w"}}, "spec": tpl["spec"]}
    assert template_hash(undo) == template_hash(tpl) and equal_ignore_hash(undo, tpl)
    assert template_hash({**tpl, "spec": {"containers": [{"name": "c", "image": "j"}]}}) != template_hash(tpl)


class _RBAC:
    def __init__(self, grants: set[tuple[str, str, str]]) -> None:
        self.grants = grants  # (resource, name, namespace)

    def allowed(
        self, ident: Identity, tenant: str, verb: str, group: str, resource: str, ns: Any, name: Any
    ) -> bool:
        return verb == "impersonate" and (resource, name, ns or "") in self.grants


def test_impersonation_headers() -> None:
    caller = Identity("bob", "t1", ("system:authenticated",))
    imp = Impersonator(
        _RBAC(
            {
                ("users", "alice", ""),
                ("groups", "devs", ""),
                ("serviceaccounts", "robot", "ns1"),
                ("uids", "u-1", ""),
            }
        )
    )
    h = CIMultiDict(
        [("Impersonate-User", "alice"), ("Impersonate-Group", "devs"), ("Impersonate-Uid", "u-1")]
    )
    who = imp(h, caller)
    assert (who.user, who.tenant, who.uid, who.impersonator) == ("alice", "t1", "u-1", "bob")
    assert who.groups == ("devs", "system:authenticated")
    sa = imp(CIMultiDict([("Impersonate-User", "system:serviceaccount:ns1:robot")]), caller)
    assert "system:serviceaccounts:ns1" in sa.groups
    for bad in (
        [("Impersonate-User", "carol")],
        [("Impersonate-User", "alice"), ("Impersonate-Group", "admins")],
        [("Impersonate-User", "alice"), ("Impersonate-Extra-Centaurus.io%2Ftenant", "t2")],
    ):
        with pytest.raises(st.APIError) as e:
            imp(CIMultiDict(bad), caller)
        assert e.value.code == 403
    with pytest.raises(st.APIError) as e:
        imp(CIMultiDict([("Impersonate-Group", "devs")]), caller)
    assert e.value.code == 400
    assert imp(CIMultiDict([("Accept", "x")]), caller) is caller
    with pytest.raises(st.APIError):
        refuse(CIMultiDict([("impersonate-user", "alice")]), caller)


def test_table_columns_and_include_object() -> None:
    pod_kind = kinds.by_resource("v1", "pods")
    ev_kind = kinds.by_resource("v1", "events")
    assert pod_kind is not None and ev_kind is not None
    assert [(c[0], c[2]) for c in column_defs(ev_kind)][:2] == [("Last Seen", 0), ("Type", 0)]
    assert ("Name", 1) in [(c[0], c[2]) for c in column_defs(ev_kind)]
    prios = {c[0]: c[2] for c in column_defs(pod_kind)}
    assert prios["Status"] == 0 and prios["Node"] == 1
    t = table(pod_kind, [{"metadata": {"name": "p"}, "spec": {}}], 5, None, "None", headers=False)
    assert t["columnDefinitions"] is None and "object" not in t["rows"][0]
    assert requested({"Accept": "application/json"}, {}) is None
    assert requested({"Accept": "application/json;as=Table;g=meta.k8s.io;v=v1"}, {}) == "Metadata"
    with pytest.raises(st.APIError):
        requested({"Accept": "application/json;as=Table"}, {"includeObject": "All"})
