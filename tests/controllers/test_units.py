"""Pure helpers of the controllers: fenceposts, template hashes, the progress deadline, deletion ranking,
tolerations, flags."""

from __future__ import annotations

import argparse

import pytest

from ctl.client.informer import Informer
from ctl.controllers.base import MAX_HASH, HashRange, WorkQueue
from ctl.controllers.deployment import equal_ignore_hash, fenceposts, int_or_percent, template_hash
from ctl.controllers.deployment.progress import update_progressing
from ctl.controllers.main import duration, select_controllers
from ctl.controllers.nodelifecycle import tolerates
from ctl.controllers.podutil import deletion_rank
from ctl.types import meta


def test_fenceposts_round_like_kubernetes() -> None:
    def d(replicas: int, surge: object, unavailable: object) -> dict:
        return {
            "spec": {
                "replicas": replicas,
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
                },
            }
        }

    assert fenceposts(d(10, "25%", "25%")) == (3, 2)  # surge rounds up, unavailable down
    assert fenceposts(d(3, "50%", "50%")) == (2, 1)
    assert fenceposts(d(4, 0, 0)) == (0, 1)  # both zero: one may be unavailable
    assert fenceposts(d(1, "10%", "10%")) == (1, 0)
    assert int_or_percent("7", 10, True) == 7
    with pytest.raises(ValueError):
        int_or_percent("x%", 10, True)


def test_template_hash_is_stable_and_ignores_its_label() -> None:
    t = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    h = template_hash(t)
    assert h == template_hash({"spec": t["spec"], "metadata": {"labels": {"app": "a"}}})
    assert h == template_hash({**t, "metadata": {"labels": {"app": "a", "pod-template-hash": h}}})
    assert h != template_hash(t, collision_count=1)
    assert h != template_hash({**t, "spec": {"containers": [{"name": "c", "image": "j"}]}})
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert equal_ignore_hash(t, {**t, "metadata": {"labels": {"app": "a", "pod-template-hash": "x"}}})


def test_deletion_rank_prefers_unscheduled_pending_unready() -> None:
    def pod(
        name: str,
        node: str = "",
        phase: str = "Pending",
        ready: bool = False,
        created: str = "2024-01-01T00:00:00Z",
    ) -> dict:
        conds = [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": created}]
        return {
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": conds},
        }

    pods = [
        pod("ready", "n", "Running", True),
        pod("unscheduled"),
        pod("pending", "n"),
        pod("notready", "n", "Running"),
        pod("ready-newer", "n", "Running", True, "2024-01-02T00:00:00Z"),
    ]
    order = [p["metadata"]["name"] for p in sorted(pods, key=deletion_rank)]
    assert order == ["unscheduled", "pending", "notready", "ready-newer", "ready"]


def test_tolerations() -> None:
    taint = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}

    def pod(*tols: dict) -> dict:
        return {"spec": {"tolerations": list(tols)}}

    assert tolerates(pod(), taint) == (False, None)
    assert tolerates(pod({"key": taint["key"], "operator": "Exists"}), taint) == (True, None)
    assert tolerates(pod({"operator": "Exists"}), taint) == (True, None)
    assert tolerates(
        pod({"key": taint["key"], "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}), taint
    ) == (True, 5.0)
    assert tolerates(pod({"key": taint["key"], "operator": "Exists", "effect": "NoSchedule"}), taint) == (
        False,
        None,
    )
    assert tolerates(pod({"key": "other", "operator": "Exists"}), taint) == (False, None)


def test_flags() -> None:
    assert duration("40s") == 40 and duration("5m") == 300 and duration("1m30s") == 90 and duration("2") == 2
    assert duration("300ms") == 0.3 and duration("24h") == 86400 and duration("30d") == 30 * 86400
    with pytest.raises(argparse.ArgumentTypeError, match="use e.g. 40s"):
        duration("5 minutes")
    with pytest.raises(argparse.ArgumentTypeError):
        duration("soon")
    assert select_controllers("*") == [
        "replicaset",
        "deployment",
        "daemonset",
        "statefulset",
        "garbagecollector",
        "namespace",
        "nodelifecycle",
        "resourcequota",
        "disruption",
        "tenant",
        "job",
        "cronjob",
    ]
    assert select_controllers("rs,gc") == ["replicaset", "garbagecollector"]
    assert "nodelifecycle" not in select_controllers("*,-nodelifecycle")
    with pytest.raises(ValueError):
        select_controllers("bogus")
    r = HashRange.parse("0-100")
    assert r.owns({"metadata": {"hashKey": 100}}) and not r.owns({"metadata": {"hashKey": 101}})
    assert HashRange.parse("").everything and HashRange.parse(f"0-{MAX_HASH}").everything
    for bad in ("5", "9-3", "a-b"):
        with pytest.raises(ValueError):
            HashRange.parse(bad)


async def test_workqueue_dedupes_and_requeues_dirty_keys() -> None:
    q = WorkQueue("t")
    q.add("a")
    q.add("a")
    assert len(q) == 1
    k = await q.get()
    q.add("a")  # while processing: not handed to a second worker
    assert len(q) == 0
    q.done(k)
    assert len(q) == 1


def test_progress_deadline_with_an_injected_clock() -> None:
    t0 = 1_700_000_000.0
    d = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 3, "progressDeadlineSeconds": 60},
        "status": {"replicas": 3, "updatedReplicas": 1, "availableReplicas": 1},
    }
    # Progress (one more updated pod): ReplicaSetUpdated, look again after the deadline.
    new = {"replicas": 3, "updatedReplicas": 2, "availableReplicas": 1, "observedGeneration": 2}
    assert update_progressing(d, new, "rs-1", t0) == (61.0, False)
    (cond,) = new["conditions"]
    assert (cond["status"], cond["reason"]) == ("True", "ReplicaSetUpdated")
    # No progress since then: not yet exceeded 30 s later, exceeded 61 s later.
    cond["lastUpdateTime"] = meta.rfc3339(t0)
    d["status"] = dict(new)
    stalled = {**new, "conditions": [dict(cond)]}
    again, exceeded = update_progressing(d, stalled, "rs-1", t0 + 30)
    assert again == pytest.approx(31.0) and not exceeded
    stalled = {**new, "conditions": [dict(cond)]}
    assert update_progressing(d, stalled, "rs-1", t0 + 61) == (None, True)
    assert stalled["conditions"][0]["reason"] == "ProgressDeadlineExceeded"
    # Complete: NewReplicaSetAvailable; paused or without a deadline nothing changes.
    done = {"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3, "observedGeneration": 2}
    assert update_progressing(d, done, "rs-1", t0) == (None, False)
    assert done["conditions"][0]["reason"] == "NewReplicaSetAvailable"
    paused = {**d, "spec": {**d["spec"], "paused": True}}
    untouched = dict(new, conditions=[])
    assert (
        update_progressing(paused, untouched, "rs-1", t0) == (None, False) and untouched["conditions"] == []
    )


async def test_a_failing_informer_handler_is_reported_once_per_object_version(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inf = Informer(None, "pods")  # type: ignore[arg-type]  # no client: events are fed by hand
    seen: list[str] = []

    def bad(typ: str, obj: dict, old: dict | None) -> None:  # type: ignore[type-arg]
        for c in obj["spec"]["containers"]:  # 7 is not iterable
            seen.append(c)

    inf.add_handler(bad)
    inf.add_handler(lambda typ, obj, old: seen.append(typ))  # later handlers still run
    pod = {
        "metadata": {"name": "p", "namespace": "n", "tenant": "t", "resourceVersion": "5"},
        "spec": {"containers": 7},
    }
    with caplog.at_level("DEBUG", logger="centaurus.informer"):
        await inf._emit("ADDED", pod, None)
        await inf._emit("MODIFIED", pod, pod)  # a relist shows the same version again
        warned = [r for r in caplog.records if r.levelname == "WARNING"]
        assert len(warned) == 1 and "t/n/p" in warned[0].getMessage() and not warned[0].exc_info
        pod2 = {**pod, "metadata": {**pod["metadata"], "resourceVersion": "6"}}
        await inf._emit("MODIFIED", pod2, pod)  # a new version is news
        await inf._emit("DELETED", pod2, pod2)
        await inf._emit("ADDED", pod, None)  # recreated after the deletion: news again
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 3
    assert seen == ["ADDED", "MODIFIED", "MODIFIED", "DELETED", "ADDED"]


def test_object_keys_default_missing_parts_to_empty() -> None:
    pod = {"metadata": {"tenant": "t", "namespace": "n", "name": "p"}}
    assert meta.object_key(pod) == "t/n/p" and meta.sibling_key(pod, "rs") == "t/n/rs"
    assert meta.object_key({"metadata": {"name": "node-a"}}) == "//node-a"  # cluster-scoped
    assert meta.object_key({"metadata": {"tenant": None, "namespace": None, "name": "x"}}) == "//x"
    assert meta.object_key({"metadata": 7}) == "//"  # malformed: never raises
