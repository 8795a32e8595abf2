"""Job controller against a real API server: completions and parallelism, backoffLimit with
back-off, activeDeadlineSeconds, podFailurePolicy, Indexed mode, suspend, ttlSecondsAfterFinished,
validation of what a Job may say."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ctl.client import ApiError, Client
from tests.batch.conftest import Controllers, RunToCompletionKubelet, eventually, job


async def _job(client: Client, ns: str, name: str) -> dict[str, Any]:
    return await client.get("jobs", name, namespace=ns)


def _cond(j: dict[str, Any], typ: str) -> dict[str, Any] | None:
    return next(
        (
            c
            for c in (j.get("status") or {}).get("conditions") or []
            if c["type"] == typ and c["status"] == "True"
        ),
        None,
    )


async def _finished(client: Client, ns: str, name: str, typ: str, timeout: float = 30) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        j = await _job(client, ns, name)
        return j if _cond(j, typ) else None

    return await eventually(done, timeout=timeout, what=f"job {name} {typ}")


async def _pods(client: Client, ns: str, sel: str) -> list[dict[str, Any]]:
    return (await client.list("pods", ns, label_selector=sel))["items"]


async def test_completions_with_parallelism(
    client: Client, ns: str, controllers: Controllers, kubelet: RunToCompletionKubelet
) -> None:
    kubelet.hold = True
    await client.create(job("work", completions=5, parallelism=2), namespace=ns)

    async def two_active() -> bool:
        return ((await _job(client, ns, "work")).get("status") or {}).get("active") == 2

    await eventually(two_active, what="2 active pods")
    await asyncio.sleep(0.5)
    running = [p for p in await _pods(client, ns, "job-name=work") if p["status"].get("phase") == "Running"]
    assert len(running) == 2  # never more than parallelism
    kubelet.hold = False
    j = await _finished(client, ns, "work", "Complete")
    st = j["status"]
    assert st["succeeded"] == 5 and st["failed"] == 0 and st["active"] == 0
    assert st["startTime"] and st["completionTime"]
    assert _cond(j, "Complete")["reason"] == "Completed"
    pods = await _pods(client, ns, "job-name=work")
    assert len(pods) == 5 and all(p["status"]["phase"] == "Succeeded" for p in pods)
    uid = j["metadata"]["uid"]
    for p in pods:
        labels = p["metadata"]["labels"]
        assert labels["controller-uid"] == uid and labels["batch.kubernetes.io/job-name"] == "work"
        ref = p["metadata"]["ownerReferences"][0]
        assert ref["kind"] == "Job" and ref["uid"] == uid and ref["controller"]
    evs = {
        e["reason"]
        for e in (await client.list("events", ns))["items"]
        if e["involvedObject"]["name"] == "work"
    }
    assert {"SuccessfulCreate", "Completed"} <= evs


async def test_backoff_limit_exceeded_with_backoff(
    client: Client, ns: str, controllers: Controllers, kubelet: RunToCompletionKubelet
) -> None:
    kubelet.run_seconds = 0.05
    controllers.job.backoff_base = 0.5
    await client.create(job("fail", exit_code=3, backoffLimit=2), namespace=ns)
    j = await _finished(client, ns, "fail", "Failed")
    assert _cond(j, "Failed")["reason"] == "BackoffLimitExceeded"
    assert j["status"]["failed"] == 3 and j["status"].get("succeeded", 0) == 0
    pods = await _pods(client, ns, "job-name=fail")
    assert len(pods) == 3  # backoffLimit 2: the first try and two retries, no more
    # Re-creation backed off exponentially (base 0.5 s here): about 0.5 s, then about 1 s.
    t = kubelet.started_at
    assert len(t) == 3
    assert t[1] - t[0] >= 0.5 and t[2] - t[1] >= 1.0, t
    await asyncio.sleep(1.0)
    assert len(await _pods(client, ns, "job-name=fail")) == 3  # nothing new after Failed


async def test_on_failure_restarts_count_against_backoff_limit(
    client: Client, ns: str, controllers: Controllers, kubelet: RunToCompletionKubelet
) -> None:
    kubelet.run_seconds = 0.2
    await client.create(job("crashy", exit_code=1, restart="OnFailure", backoffLimit=2), namespace=ns)
    j = await _finished(client, ns, "crashy", "Failed")
    assert _cond(j, "Failed")["reason"] == "BackoffLimitExceeded" and j["status"]["failed"] == 3
    assert len(kubelet.started) == 1  # one pod, restarted in place: never re-created


async def test_active_deadline(
    client: Client, ns: str, controllers: Controllers, kubelet: RunToCompletionKubelet
) -> None:
    kubelet.hold = True
    await client.create(job("slow", activeDeadlineSeconds=2), namespace=ns)
    j = await _finished(client, ns, "slow", "Failed", timeout=20)
    assert _cond(j, "Failed")["reason"] == "DeadlineExceeded"

    async def no_live_pods() -> bool:
        return not [
            p for p in await _pods(client, ns, "job-name=slow") if p["status"].get("phase") == "Running"
        ]

    await eventually(no_live_pods, what="active pods of the failed job deleted")
    kubelet.hold = False


async def test_pod_failure_policy(
    client: Client, ns: str, controllers: Controllers, kubelet: RunToCompletionKubelet
) -> None:
    kubelet.run_seconds = 0.05
    rules = [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]
    await client.create(
        job("fatal", exit_code=42, backoffLimit=6, podFailurePolicy={"rules": rules}), namespace=ns
    )
    j = await _finished(client, ns, "fatal", "Failed")
    assert _cond(j, "Failed")["reason"] == "PodFailurePolicy"
    assert len(await _pods(client, ns, "job-name=fatal")) == 1  # no retry
    # Ignore: failures with that code do not count against backoffLimit 0.
    ign = [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [7]}}]
    await client.create(
        job("flaky", exit_code=7, backoffLimit=0, podFailurePolicy={"rules": ign}), namespace=ns
    )

    async def retried() -> bool:
        return len(await _pods(client, ns, "job-name=flaky")) >= 3

    await eventually(retried, what="ignored failures retried")
    j = await _job(client, ns, "flaky")
    assert not _cond(j, "Failed") and j["status"].get("failed", 0) == 0
    await client.delete("jobs", "flaky", namespace=ns, propagation_policy="Background")


async def test_indexed_completion(
    client: Client, ns: str, controllers: Controllers, kubelet: RunToCompletionKubelet
) -> None:
    await client.create(job("idx", completions=3, parallelism=3, completionMode="Indexed"), namespace=ns)
    j = await _finished(client, ns, "idx", "Complete")
    assert j["status"]["completedIndexes"] == "0-2" and j["status"]["succeeded"] == 3
    pods = await _pods(client, ns, "job-name=idx")
    idx = sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods)
    assert idx == ["0", "1", "2"]
    for p in pods:
        i = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert p["metadata"]["name"].startswith(f"idx-{i}-")
        assert kubelet.env_seen[p["metadata"]["name"]]["JOB_COMPLETION_INDEX"] == i
        assert p["spec"]["hostname"] == f"idx-{i}"


async def test_suspend_and_resume(
    client: Client, ns: str, controllers: Controllers, kubelet: RunToCompletionKubelet
) -> None:
    await client.create(job("later", suspend=True), namespace=ns)

    async def suspended() -> bool:
        return _cond(await _job(client, ns, "later"), "Suspended") is not None

    await eventually(suspended, what="Suspended condition")
    assert await _pods(client, ns, "job-name=later") == []
    await client.request(
        "PATCH",
        client.path("jobs", ns, "later"),
        {"spec": {"suspend": False}},
        content_type="application/merge-patch+json",
    )
    await _finished(client, ns, "later", "Complete")


async def test_ttl_after_finished_deletes_job_and_pods(
    client: Client, ns: str, controllers: Controllers, kubelet: RunToCompletionKubelet
) -> None:
    await client.create(job("brief", ttlSecondsAfterFinished=1), namespace=ns)
    await _finished(client, ns, "brief", "Complete")

    async def gone() -> bool:
        try:
            await _job(client, ns, "brief")
            return False
        except ApiError as e:
            return e.code == 404

    await eventually(gone, timeout=20, what="job deleted after its TTL")
    await eventually(lambda: _no_pods(client, ns, "job-name=brief"), what="its pods collected")


async def _no_pods(client: Client, ns: str, sel: str) -> bool:
    return not await _pods(client, ns, sel)


async def test_validation(client: Client, ns: str) -> None:
    bad = job("always", restart="Always")
    with pytest.raises(ApiError) as e:
        await client.create(bad, namespace=ns)
    assert e.value.code == 422 and "restartPolicy" in str(e.value)
    unset = job("unset")
    del unset["spec"]["template"]["spec"]["restartPolicy"]
    with pytest.raises(ApiError) as e:
        await client.create(unset, namespace=ns)
    assert e.value.code == 422 and "restartPolicy" in str(e.value) and "Required value" in str(e.value)
    with pytest.raises(ApiError) as e:
        await client.create(job("neg", backoffLimit=-1), namespace=ns)
    assert e.value.code == 422 and "backoffLimit" in str(e.value)
    with pytest.raises(ApiError) as e:
        await client.create(job("ix", completionMode="Indexed", parallelism=2), namespace=ns)
    assert e.value.code == 422 and "completions" in str(e.value)
    created = await client.create(job("ok"), namespace=ns)
    spec = created["spec"]
    assert spec["backoffLimit"] == 6 and spec["completions"] == 1 and spec["parallelism"] == 1
    assert spec["completionMode"] == "NonIndexed" and spec["suspend"] is False
