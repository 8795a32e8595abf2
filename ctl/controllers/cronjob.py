"""CronJob controller (batch/v1): create Jobs on a cron schedule.

For each CronJob it parses ``spec.schedule`` in ``spec.timeZone`` (:mod:`ctl.types.cron`)
and looks at the Jobs it controls (controller ownerReference, through the shared jobs
informer's ``controller`` index):

* ``status.active`` lists the Jobs that have not finished; ``lastSuccessfulTime`` is the
  latest ``completionTime`` of a Job that completed;
* history: finished Jobs beyond ``successfulJobsHistoryLimit`` (Complete) and
  ``failedJobsHistoryLimit`` (Failed), oldest first, are deleted with the background
  policy, so the garbage collector removes their pods;
* scheduling (unless ``suspend``): the most recent schedule time after
  ``lastScheduleTime`` (or the CronJob's creation) and not after now is due; if it is
  older than ``startingDeadlineSeconds`` it is missed (a ``MissedSchedule`` Warning).
  ``concurrencyPolicy`` decides what happens while a Job is still active: ``Allow`` runs
  another, ``Forbid`` skips this run (``JobAlreadyActive`` event), ``Replace`` deletes the
  active Jobs first. The Job is named ``NAME-<scheduled time in minutes>`` (as Kubernetes
  does, so a retried sync finds it instead of creating a second one), carries the
  template's labels and annotations, a controller ownerReference and the
  ``batch.kubernetes.io/cronjob-scheduled-timestamp`` annotation, and
  ``lastScheduleTime`` is set;
* the key is re-queued for the next schedule time.

``clock`` (default :func:`time.time`) is the controller's notion of now, so tests can
drive schedules without waiting for minutes to pass.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from typing import Any

from ctl.client.aio import ApiError
from ctl.client.informer import SharedInformers, by_controller
from ctl.controllers.base import Controller
from ctl.controllers.job import finished
from ctl.types import meta
from ctl.types.cron import CronError, Schedule
from ctl.types.jobtemplate import SCHEDULED_ANNOTATION, job_from_template

MAX_MISSED = 100


def job_name(cronjob: str, scheduled: float) -> str:
    return f"{cronjob}-{int(scheduled // 60)}"


def _ref(job: dict[str, Any]) -> dict[str, Any]:
    md = job["metadata"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": md["name"],
        "namespace": md.get("namespace"),
        "uid": md["uid"],
        "resourceVersion": md.get("resourceVersion"),
    }


def _ts(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return meta.parse_rfc3339(value)
    except ValueError:
        return None


class CronJobController(Controller):
    name = "cronjob"

    def setup(self, informers: SharedInformers) -> None:
        self.cronjobs = informers.get("cronjobs")
        self.primary = self.cronjobs
        self.jobs = informers.get("jobs")
        self.jobs.add_index("controller", by_controller)
        self.clock: Callable[[], float] = time.time
        self.cronjobs.add_handler(self._on_cronjob)
        self.jobs.add_handler(self._on_job)

    def _on_cronjob(self, typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        self.enqueue(obj)

    def _on_job(self, typ: str, job: dict[str, Any], old: dict[str, Any] | None) -> None:
        ref = meta.controller_of(job)
        if ref is None or ref.get("kind") != "CronJob":
            return
        cj = self.cronjobs.get_key(meta.sibling_key(job, ref["name"]))
        if cj is not None and cj["metadata"]["uid"] == ref.get("uid"):
            self.enqueue(cj)

    async def sync(self, key: str) -> float | None:
        cj = self.cronjobs.get_key(key)
        if cj is None or cj["metadata"].get("deletionTimestamp"):
            return None
        spec = cj.get("spec") or {}
        try:
            sched = Schedule.parse(spec.get("schedule") or "", spec.get("timeZone"))
        except CronError as e:
            self.recorder.warning(cj, "UnparseableSchedule", f"unparseable schedule: {e}")
            return None
        now = self.clock()
        jobs = self.jobs.by_index("controller", cj["metadata"]["uid"])
        old = cj.get("status") or {}
        status = {k: v for k, v in old.items()}
        active = [j for j in jobs if not finished(j) and not j["metadata"].get("deletionTimestamp")]
        done_ok = [j for j in jobs if finished(j) == "Complete"]
        done_failed = [j for j in jobs if finished(j) == "Failed"]
        for j in done_ok:
            ct = _ts((j.get("status") or {}).get("completionTime"))
            last = _ts(status.get("lastSuccessfulTime"))
            if ct is not None and (last is None or ct > last):
                status["lastSuccessfulTime"] = meta.rfc3339(ct)
        for j in [*done_ok, *done_failed]:
            if any(r.get("uid") == j["metadata"]["uid"] for r in old.get("active") or []):
                self.recorder.normal(
                    cj,
                    "SawCompletedJob",
                    f"Saw completed job: {j['metadata']['name']}, status: {finished(j)}",
                )
        await self._history(cj, done_ok, int(spec.get("successfulJobsHistoryLimit", 3)))
        await self._history(cj, done_failed, int(spec.get("failedJobsHistoryLimit", 1)))

        again: float | None = None
        if not spec.get("suspend"):
            active, again = await self._schedule(cj, sched, now, active, status)
        status["active"] = [_ref(j) for j in sorted(active, key=lambda j: j["metadata"]["name"])]
        if not status["active"]:
            status.pop("active")
        await self._write_status(cj, status)
        return again

    async def _schedule(
        self,
        cj: dict[str, Any],
        sched: Schedule,
        now: float,
        active: list[dict[str, Any]],
        status: dict[str, Any],
    ) -> tuple[list[dict[str, Any]], float | None]:
        spec = cj.get("spec") or {}
        md = cj["metadata"]
        nxt = sched.next_after(now)
        again = None if nxt is None else max(nxt - now, 0.0) + 0.05
        earliest = _ts(status.get("lastScheduleTime")) or _ts(md.get("creationTimestamp")) or now
        sds = spec.get("startingDeadlineSeconds")
        if sds is not None:
            earliest = max(earliest, now - sds - 60)
        due = sched.times_between(earliest, now, MAX_MISSED)
        if not due:
            return active, again
        scheduled = due[-1]
        if sds is not None and now - scheduled > sds:
            self.recorder.warning(
                cj, "MissedSchedule", f"Missed scheduled time to start a job: {meta.rfc3339(scheduled)}"
            )
            return active, again
        name = job_name(md["name"], scheduled)
        if any(j["metadata"]["name"] == name for j in active):
            return active, again
        policy = spec.get("concurrencyPolicy") or "Allow"
        if active and policy == "Forbid":
            self.recorder.normal(
                cj, "JobAlreadyActive", "Not starting job because prior execution is running"
            )
            return active, again
        if active and policy == "Replace":
            for j in active:
                await self._delete_job(cj, j, "SuccessfulDelete")
            active = []
        body = job_from_template(cj, name, scheduled)
        try:
            job = await self.client.create(body, namespace=md.get("namespace"), tenant=md.get("tenant"))
            self.recorder.normal(cj, "SuccessfulCreate", f"Created job {name}")
        except ApiError as e:
            if e.code != 409:
                self.recorder.warning(cj, "FailedCreate", f"Error creating job: {e}")
                raise
            job = await self.client.get("jobs", name, namespace=md.get("namespace"), tenant=md.get("tenant"))
            if (meta.controller_of(job) or {}).get("uid") != md["uid"]:
                return active, again
        status["lastScheduleTime"] = meta.rfc3339(scheduled)
        if not finished(job):
            active = [*active, job]
        return active, again

    async def _history(self, cj: dict[str, Any], jobs: list[dict[str, Any]], limit: int) -> None:
        if len(jobs) <= limit:
            return

        def age(j: dict[str, Any]) -> tuple[float, str, str]:
            # Oldest first: by scheduled time (to the second, unlike startTime), then creation, then name.
            md = j["metadata"]
            sched = _ts((md.get("annotations") or {}).get(SCHEDULED_ANNOTATION)) or 0.0
            return (sched, str(md.get("creationTimestamp") or ""), str(md["name"]))

        victims = sorted(jobs, key=age)[: len(jobs) - limit]
        await asyncio.gather(*(self._delete_job(cj, j, "SuccessfulDelete") for j in victims))

    async def _delete_job(self, cj: dict[str, Any], job: dict[str, Any], reason: str) -> None:
        jmd = job["metadata"]
        if jmd.get("deletionTimestamp"):
            return
        try:
            await self.client.delete(
                "jobs",
                jmd["name"],
                namespace=jmd.get("namespace"),
                tenant=jmd.get("tenant"),
                propagation_policy="Background",
                preconditions={"uid": jmd["uid"]},
            )
        except ApiError as e:
            if e.code in (404, 409):
                return
            raise
        self.recorder.normal(cj, reason, f"Deleted job {jmd['name']}")

    async def _write_status(self, cj: dict[str, Any], status: dict[str, Any]) -> None:
        old = cj.get("status") or {}

        def strip(s: dict[str, Any]) -> dict[str, Any]:
            out = dict(s)
            out["active"] = [
                {k: v for k, v in r.items() if k != "resourceVersion"} for r in s.get("active") or []
            ]
            return out

        if strip(status) == strip(old):
            return
        body = copy.deepcopy(cj)
        body["status"] = status
        try:
            await self.client.update(body, "status")
        except ApiError as e:
            if e.code != 404:
                raise
