"""CronJob controller against a real API server, its clock moved by the test: Jobs at the
scheduled times, concurrencyPolicy Allow/Forbid/Replace, startingDeadlineSeconds, suspend,
history limits (old Jobs and their pods collected), time zones, status."""

from __future__ import annotations

from typing import Any

import pytest

from ctl.client import ApiError, Client
from ctl.types import meta
from ctl.types.cron import Schedule
from tests.batch.conftest import Controllers, RunToCompletionKubelet, cronjob, eventually


async def _cj(client: Client, ns: str, name: str) -> dict[str, Any]:
    return await client.get("cronjobs", name, namespace=ns)


async def _jobs(client: Client, ns: str) -> list[dict[str, Any]]:
    return [j for j in (await client.list("jobs", ns))["items"] if not j["metadata"].get("deletionTimestamp")]


def _done(j: dict[str, Any], typ: str = "Complete") -> bool:
    return any(
        c["type"] == typ and c["status"] == "True" for c in (j.get("status") or {}).get("conditions") or []
    )


async def _create(client: Client, ns: str, body: dict[str, Any]) -> tuple[dict[str, Any], Schedule, float]:
    cj = await client.create(body, namespace=ns)
    spec = cj["spec"]
    return (
        cj,
        Schedule.parse(spec["schedule"], spec.get("timeZone")),
        meta.parse_rfc3339(cj["metadata"]["creationTimestamp"]),
    )


async def _reasons(client: Client, ns: str, name: str) -> list[str]:
    return [
        e["reason"] for e in (await client.list("events", ns))["items"] if e["involvedObject"]["name"] == name
    ]


async def test_schedule_creates_jobs_and_status(
    client: Client, ns: str, controllers: Controllers, kubelet: RunToCompletionKubelet
) -> None:
    cj, sched, created = await _create(client, ns, cronjob("tick", "*/5 * * * *"))
    controllers.tick(created)
    await eventually(lambda: _cj(client, ns, "tick"), what="cronjob seen")
    assert await _jobs(client, ns) == []  # nothing is due yet
    t1 = sched.next_after(created)
    assert t1 is not None
    controllers.tick(t1 + 5)

    async def one_job() -> list[dict[str, Any]] | None:
        js = await _jobs(client, ns)
        return js if len(js) == 1 else None

    (j,) = await eventually(one_job, what="the first scheduled job")
    assert j["metadata"]["name"] == f"tick-{int(t1 // 60)}"
    ref = j["metadata"]["ownerReferences"][0]
    assert ref["kind"] == "CronJob" and ref["uid"] == cj["metadata"]["uid"] and ref["controller"]
    assert j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == meta.rfc3339(t1)

    async def completed_status() -> dict[str, Any] | None:
        st = (await _cj(client, ns, "tick")).get("status") or {}
        return st if st.get("lastSuccessfulTime") and not st.get("active") else None

    st = await eventually(completed_status, what="lastSuccessfulTime, no active job")
    assert st["lastScheduleTime"] == meta.rfc3339(t1)
    assert "SawCompletedJob" in await _reasons(client, ns, "tick")
    # A tick within the same schedule period makes no second job.
    controllers.tick(t1 + 30)
    t2 = sched.next_after(t1)
    assert t2 is not None
    controllers.tick(t2 + 1)

    async def two_jobs() -> bool:
        return len(await _jobs(client, ns)) == 2

    await eventually(two_jobs, what="the second scheduled job")
    assert {j["metadata"]["name"] for j in await _jobs(client, ns)} == {
        f"tick-{int(t1 // 60)}",
        f"tick-{int(t2 // 60)}",
    }


async def test_concurrency_policies(
    client: Client, ns: str, controllers: Controllers, kubelet: RunToCompletionKubelet
) -> None:
    kubelet.hold = True  # jobs stay active
    _, sched, created = await _create(client, ns, cronjob("forbid", "* * * * *", concurrencyPolicy="Forbid"))
    await _create(client, ns, cronjob("replace", "* * * * *", concurrencyPolicy="Replace"))
    await _create(client, ns, cronjob("allow", "* * * * *"))
    t1 = sched.next_after(created)
    assert t1 is not None
    controllers.tick(t1 + 1)

    async def owned(name: str, n: int) -> list[dict[str, Any]] | None:
        js = [j for j in await _jobs(client, ns) if j["metadata"]["ownerReferences"][0]["name"] == name]
        return js if len(js) == n else None

    for name in ("forbid", "replace", "allow"):
        await eventually(lambda name=name: owned(name, 1), what=f"{name}: first job")

    async def active(name: str, n: int) -> bool:
        return len((await _cj(client, ns, name)).get("status", {}).get("active") or []) == n

    for name in ("forbid", "replace", "allow"):
        await eventually(lambda name=name: active(name, 1), what=f"{name}: one active job")
    controllers.tick(t1 + 61)
    await eventually(lambda: owned("allow", 2), what="allow: a second, concurrent job")
    first = f"replace-{int(t1 // 60)}"
    second = f"replace-{int((t1 + 60) // 60)}"

    async def replaced() -> bool:
        js = await owned("replace", 1)
        return js is not None and js[0]["metadata"]["name"] == second

    await eventually(replaced, what="replace: the old job deleted, a new one made")
    assert first not in {j["metadata"]["name"] for j in await _jobs(client, ns)}
    await eventually(lambda: _has(client, ns, "forbid", "JobAlreadyActive"), what="forbid: skipped")
    assert await owned("forbid", 1)
    kubelet.hold = False


async def _has(client: Client, ns: str, name: str, reason: str) -> bool:
    return reason in await _reasons(client, ns, name)


async def test_starting_deadline_and_suspend(
    client: Client, ns: str, controllers: Controllers, kubelet: RunToCompletionKubelet
) -> None:
    _, sched, created = await _create(client, ns, cronjob("late", "*/10 * * * *", startingDeadlineSeconds=30))
    await _create(client, ns, cronjob("paused", "*/10 * * * *", suspend=True))
    t1 = sched.next_after(created)
    assert t1 is not None
    controllers.tick(t1 + 45)  # 45 s late, the deadline is 30 s: missed
    await eventually(lambda: _has(client, ns, "late", "MissedSchedule"), what="MissedSchedule warning")
    assert await _jobs(client, ns) == []
    controllers.tick(t1 + 600 + 10)  # the next run, in time: it runs; the suspended one does not

    async def late_ran() -> bool:
        return [j["metadata"]["ownerReferences"][0]["name"] for j in await _jobs(client, ns)] == ["late"]

    await eventually(late_ran, what="the next run, within the deadline")
    assert not ((await _cj(client, ns, "paused")).get("status") or {}).get("lastScheduleTime")


async def test_history_limits_collect_jobs_and_pods(
    client: Client, ns: str, controllers: Controllers, kubelet: RunToCompletionKubelet
) -> None:
    body = cronjob("hist", "* * * * *", successfulJobsHistoryLimit=1, failedJobsHistoryLimit=0)
    _, sched, created = await _create(client, ns, body)
    t = sched.next_after(created)
    assert t is not None
    names = []
    for i in range(3):
        controllers.tick(t + 60 * i + 1)
        name = f"hist-{int((t + 60 * i) // 60)}"
        names.append(name)

        async def complete(name: str = name) -> bool:
            try:
                return _done(await client.get("jobs", name, namespace=ns))
            except ApiError:
                return False

        await eventually(complete, what=f"{name} complete", diag=lambda: _listing(controllers))
    controllers.tick(t + 60 * 2 + 30)

    async def one_left() -> bool:
        return [j["metadata"]["name"] for j in await _jobs(client, ns)] == [names[-1]]

    await eventually(one_left, what="only the newest successful job kept")

    async def pods_collected() -> bool:
        pods = (await client.list("pods", ns))["items"]
        return {p["metadata"]["labels"]["job-name"] for p in pods} == {names[-1]}

    await eventually(pods_collected, what="pods of deleted jobs garbage-collected")
    # A failed run with failedJobsHistoryLimit 0 is removed once it failed.
    bad = cronjob("bad", "* * * * *", exit_code=1, failedJobsHistoryLimit=0)
    bad["spec"]["jobTemplate"]["spec"]["backoffLimit"] = 0
    _, _, c2 = await _create(client, ns, bad)
    t3 = sched.next_after(c2)
    assert t3 is not None
    controllers.tick(t3 + 1)
    await eventually(lambda: _has(client, ns, "bad", "SuccessfulCreate"), what="bad: job made")

    async def bad_gone() -> bool:
        return not [j for j in await _jobs(client, ns) if j["metadata"]["name"].startswith("bad-")]

    await eventually(bad_gone, what="the failed job deleted (limit 0)")


def _listing(controllers: Controllers) -> str:
    return "jobs: " + ", ".join(
        f"{j['metadata']['name']}:{(j.get('status') or {}).get('conditions')}"
        for j in controllers.cronjob.jobs.list()
    )


async def test_time_zone(
    client: Client, ns: str, controllers: Controllers, kubelet: RunToCompletionKubelet
) -> None:
    _, sched, created = await _create(client, ns, cronjob("tokyo", "0 9 * * *", timeZone="Asia/Tokyo"))
    t = sched.next_after(created)
    assert t is not None and meta.rfc3339(t).endswith("T00:00:00Z")  # 09:00 in Tokyo is midnight UTC
    controllers.tick(t + 2)

    async def scheduled() -> str | None:
        return ((await _cj(client, ns, "tokyo")).get("status") or {}).get("lastScheduleTime")

    assert await eventually(scheduled, what="lastScheduleTime") == meta.rfc3339(t)


async def test_validation(client: Client, ns: str) -> None:
    for spec, field in (
        ({"schedule": "61 * * * *"}, "spec.schedule"),
        ({"schedule": "* * * *"}, "spec.schedule"),
        ({"schedule": "@often"}, "spec.schedule"),
        ({"schedule": "* * * * *", "timeZone": "Mars/Olympus"}, "spec.timeZone"),
        ({"schedule": "* * * * *", "concurrencyPolicy": "Sometimes"}, "concurrencyPolicy"),
    ):
        body = cronjob("bad", "x")
        body["spec"].update(spec)
        with pytest.raises(ApiError) as e:
            await client.create(body, namespace=ns)
        assert e.value.code == 422 and field in str(e.value), (spec, str(e.value))
    made = await client.create(cronjob("fine", "@hourly"), namespace=ns)
    s = made["spec"]
    assert s["concurrencyPolicy"] == "Allow" and s["suspend"] is False
    assert s["successfulJobsHistoryLimit"] == 3 and s["failedJobsHistoryLimit"] == 1
