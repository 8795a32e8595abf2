"""Job controller (batch/v1): run pods until enough of them succeed, or give up.

For each Job it looks at the pods it controls (found by their controller ownerReference,
through the shared pods informer's ``controller`` index) and:

* counts them: active (not finished, not being deleted), succeeded and failed. Failed
  pods a ``podFailurePolicy`` rule ``Ignore``s do not count; a ``FailJob`` rule fails the
  Job at once (reason ``PodFailurePolicy``); ``Count`` (or no matching rule) counts. With
  ``restartPolicy: OnFailure`` container restarts of active pods count as failures too,
  as in Kubernetes. The counters in ``status`` only grow, so deleting a finished pod
  never makes the Job run it again;
* finishes it: ``Complete`` once ``completions`` pods succeeded (every index, for an
  ``Indexed`` Job; any one success when ``completions`` is unset), ``Failed`` with reason
  ``BackoffLimitExceeded`` once more than ``backoffLimit`` pods failed, or
  ``DeadlineExceeded`` once it ran ``activeDeadlineSeconds``. Active pods of a finished
  Job are deleted; ``completionTime`` is set on success;
* otherwise keeps ``min(parallelism, remaining)`` pods active: pods are created from the
  template with the ``job-name``/``controller-uid`` labels (and their
  ``batch.kubernetes.io/`` forms) and a controller ownerReference; an Indexed Job's pod
  gets its index in the ``batch.kubernetes.io/job-completion-index`` annotation and
  label and in the ``JOB_COMPLETION_INDEX`` variable of every container, and the hostname
  ``NAME-INDEX``. After a failure, re-creation waits an exponential back-off
  (``BACKOFF_BASE`` * 2^(failures-1), at most ``BACKOFF_MAX``; 10 s and 6 min as in
  Kubernetes, ``CENTAURUS_JOB_BACKOFF_BASE`` overrides the base);
* ``suspend: true`` deletes the active pods and sets the ``Suspended`` condition;
  resuming resets ``startTime``;
* ``ttlSecondsAfterFinished``: that long after it finished the Job is deleted with the
  background policy, so the garbage collector removes its pods.

:class:`~ctl.controllers.ownership.Expectations` keep a lagging watch from creating pods
twice, as in the ReplicaSet controller. Creations go out in slow-start batches.
"""

from __future__ import annotations

import asyncio
import copy
import os
import time
from typing import Any

from ctl.client.aio import ApiError
from ctl.client.informer import SharedInformers, by_controller
from ctl.controllers.base import Controller
from ctl.controllers.ownership import Expectations, delete_owned_pod
from ctl.controllers.podutil import is_ready
from ctl.types import meta
from ctl.types.batch_validation import (
    BATCH_CONTROLLER_UID_LABEL,
    BATCH_JOB_NAME_LABEL,
    COMPLETION_INDEX_ANNOTATION,
    CONTROLLER_UID_LABEL,
    JOB_NAME_LABEL,
)
from ctl.types.meta import object_key

BURST = 500
BACKOFF_BASE = float(os.environ.get("CENTAURUS_JOB_BACKOFF_BASE", "10"))
BACKOFF_MAX = 360.0


def condition_true(job: dict[str, Any], typ: str) -> dict[str, Any] | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") == typ and c.get("status") == "True":
            return c
    return None


def finished(job: dict[str, Any]) -> str | None:
    """``Complete`` or ``Failed`` for a finished Job, else None."""
    for t in ("Complete", "Failed"):
        if condition_true(job, t):
            return t
    return None


def pod_index(pod: dict[str, Any]) -> int | None:
    v = (pod["metadata"].get("annotations") or {}).get(COMPLETION_INDEX_ANNOTATION)
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def format_indexes(idx: set[int]) -> str:
    """``{0,1,2,5}`` -> ``0-2,5`` (the form of ``status.completedIndexes``)."""
    out: list[str] = []
    s = sorted(idx)
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[j] + 1:
            j += 1
        out.append(str(s[i]) if i == j else f"{s[i]}-{s[j]}")
        i = j + 1
    return ",".join(out)


def parse_indexes(text: str | None) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        try:
            out.update(range(int(a), int(b or a) + 1))
        except ValueError:
            continue
    return out


def exit_codes(pod: dict[str, Any]) -> list[tuple[str, int]]:
    """(container, exit code) of the pod's terminated containers."""
    out = []
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        t = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
        if t and t.get("exitCode") is not None:
            out.append((cs.get("name", ""), int(t["exitCode"])))
    return out


def failure_action(job: dict[str, Any], pod: dict[str, Any]) -> str:
    """What the Job's podFailurePolicy says about a failed pod: FailJob, Ignore or Count."""
    pfp = (job.get("spec") or {}).get("podFailurePolicy") or {}
    codes = exit_codes(pod)
    for rule in pfp.get("rules") or []:
        oec = rule.get("onExitCodes")
        if oec:
            vals = set(oec.get("values") or [])
            cname = oec.get("containerName")
            for name, code in codes:
                if cname and name != cname:
                    continue
                if code == 0:
                    continue
                hit = code in vals if oec.get("operator") == "In" else code not in vals
                if hit:
                    return str(rule.get("action") or "Count")
        for pat in rule.get("onPodConditions") or []:
            for c in (pod.get("status") or {}).get("conditions") or []:
                if c.get("type") == pat.get("type") and c.get("status") == (pat.get("status") or "True"):
                    return str(rule.get("action") or "Count")
    return "Count"


def _phase(pod: dict[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


class JobController(Controller):
    name = "job"

    def setup(self, informers: SharedInformers) -> None:
        self.jobs = informers.get("jobs")
        self.primary = self.jobs
        self.pods = informers.get("pods")
        self.pods.add_index("controller", by_controller)
        self.exp = Expectations()
        self.clock = time.time
        self.backoff_base = BACKOFF_BASE
        # job key -> (failures seen, monotonic time the count last grew): the back-off clock
        self._failures: dict[str, tuple[int, float]] = {}
        self.jobs.add_handler(self._on_job)
        self.pods.add_handler(self._on_pod)

    # ------------------------------------------------------------------ events
    def _on_job(self, typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        if typ == "DELETED":
            self.exp.delete(object_key(obj))
            self._failures.pop(object_key(obj), None)
        self.enqueue(obj)

    def _job_of(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        ref = meta.controller_of(pod)
        if ref is None or ref.get("kind") != "Job":
            return None
        job = self.jobs.get_key(meta.sibling_key(pod, ref["name"]))
        if job is None or job["metadata"]["uid"] != ref.get("uid"):
            return None
        return job

    def _on_pod(self, typ: str, pod: dict[str, Any], old: dict[str, Any] | None) -> None:
        job = self._job_of(pod)
        if job is None:
            return
        k = object_key(job)
        if typ == "ADDED":
            if pod["metadata"].get("deletionTimestamp"):
                self.exp.deletion_observed(k, object_key(pod))
            else:
                self.exp.creation_observed(k)
        elif typ == "DELETED" or (
            pod["metadata"].get("deletionTimestamp") and not (old or pod)["metadata"].get("deletionTimestamp")
        ):
            self.exp.deletion_observed(k, object_key(pod))
        self.enqueue(job)

    # ------------------------------------------------------------------ sync
    async def sync(self, key: str) -> float | None:
        job = self.jobs.get_key(key)
        if job is None:
            self.exp.delete(key)
            self._failures.pop(key, None)
            return None
        if job["metadata"].get("deletionTimestamp"):
            return None
        pods = self.pods.by_index("controller", job["metadata"]["uid"])
        done = finished(job)
        if done:
            await self._delete_all(key, job, [p for p in pods if self._active(p)])
            return await self._ttl(job)
        return await self._reconcile(key, job, pods)

    @staticmethod
    def _active(pod: dict[str, Any]) -> bool:
        return _phase(pod) not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")

    async def _reconcile(self, key: str, job: dict[str, Any], pods: list[dict[str, Any]]) -> float | None:
        spec = job.get("spec") or {}
        old = job.get("status") or {}
        now = self.clock()
        indexed = spec.get("completionMode") == "Indexed"
        completions = spec.get("completions")
        parallelism = int(spec.get("parallelism", 1) or 0)
        backoff_limit = int(spec.get("backoffLimit", 6))
        on_failure = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") == "OnFailure"

        active = [p for p in pods if self._active(p)]
        succeeded_pods = [p for p in pods if _phase(p) == "Succeeded"]
        failed_pods = [p for p in pods if _phase(p) == "Failed"]
        fail_job: dict[str, Any] | None = None
        counted_failed = 0
        for p in failed_pods:
            action = failure_action(job, p)
            if action == "FailJob" and fail_job is None:
                fail_job = p
            if action == "Count" or action == "FailJob":
                counted_failed += 1
        if on_failure:
            counted_failed += sum(
                int(cs.get("restartCount") or 0)
                for p in active
                for cs in (p.get("status") or {}).get("containerStatuses") or []
            )
        failed = max(int(old.get("failed") or 0), counted_failed)
        done_idx = parse_indexes(old.get("completedIndexes")) if indexed else set()
        if indexed:
            done_idx |= {
                i for p in succeeded_pods if (i := pod_index(p)) is not None and i < (completions or 0)
            }
            succeeded = len(done_idx)
        else:
            succeeded = max(int(old.get("succeeded") or 0), len(succeeded_pods))

        status: dict[str, Any] = {k: v for k, v in old.items() if k not in ("active", "ready")}
        conds = [c for c in old.get("conditions") or []]
        status["succeeded"] = succeeded
        status["failed"] = failed
        if indexed:
            status["completedIndexes"] = format_indexes(done_idx)

        # Suspended: no pods run.
        if spec.get("suspend"):
            await self._delete_all(key, job, active)
            status["active"] = 0
            status["ready"] = 0
            if not condition_true(job, "Suspended"):
                conds = self._set_condition(conds, "Suspended", "JobSuspended", "Job suspended")
                self.recorder.normal(job, "Suspended", "Job suspended")
            status.pop("startTime", None)
            status["conditions"] = conds
            await self._write_status(job, status)
            return None
        if condition_true(job, "Suspended"):
            conds = self._set_condition(conds, "Suspended", "JobResumed", "Job resumed", status="False")
            self.recorder.normal(job, "Resumed", "Job resumed")
        if not status.get("startTime"):
            status["startTime"] = meta.rfc3339(now)
        start = meta.parse_rfc3339(status["startTime"])

        # Finished?
        failure: tuple[str, str] | None = None
        if fail_job is not None:
            failure = (
                "PodFailurePolicy",
                f"Pod {fail_job['metadata']['name']} failed with a FailJob exit code",
            )
        elif failed > backoff_limit:
            failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        ads = spec.get("activeDeadlineSeconds")
        if failure is None and ads is not None and now - start >= ads:
            failure = ("DeadlineExceeded", "Job was active longer than specified deadline")
        complete = False
        if failure is None:
            if completions is None:
                complete = succeeded > 0 and not active
            else:
                complete = succeeded >= completions
        if failure is not None or complete:
            await self._delete_all(key, job, active)
            status["active"] = 0
            status["ready"] = 0
            if failure is not None:
                conds = self._set_condition(conds, "Failed", failure[0], failure[1])
                self.recorder.warning(job, failure[0], failure[1])
            else:
                conds = self._set_condition(conds, "Complete", "Completed", "Job completed")
                status["completionTime"] = meta.rfc3339(now)
                self.recorder.normal(job, "Completed", "Job completed")
            status["conditions"] = conds
            await self._write_status(job, status)
            return await self._ttl({**job, "status": status})

        # Keep the right number of pods active.
        again: float | None = None
        if ads is not None:
            again = max(start + ads - now, 0.05)
        if self.exp.satisfied(key):
            wait = self._backoff_wait(key, failed)
            if wait > 0:
                again = wait if again is None else min(again, wait)
            else:
                await self._manage(key, job, active, succeeded, completions, parallelism, indexed, done_idx)
        status["active"] = len(active)
        status["ready"] = sum(1 for p in active if is_ready(p))
        status["conditions"] = conds
        if not conds:
            status.pop("conditions", None)
        await self._write_status(job, status)
        return again

    def _backoff_wait(self, key: str, failed: int) -> float:
        if failed <= 0:
            return 0.0
        seen, since = self._failures.get(key, (0, 0.0))
        mono = time.monotonic()
        if failed > seen:
            self._failures[key] = (failed, mono)
            since = mono
        delay = min(self.backoff_base * 2 ** (failed - 1), BACKOFF_MAX)
        return max(since + delay - mono, 0.0)

    async def _manage(
        self,
        key: str,
        job: dict[str, Any],
        active: list[dict[str, Any]],
        succeeded: int,
        completions: int | None,
        parallelism: int,
        indexed: bool,
        done_idx: set[int],
    ) -> None:
        if indexed:
            running = {pod_index(p) for p in active}
            missing = [i for i in range(completions or 0) if i not in done_idx and i not in running]
            want_new = max(min(parallelism - len(active), len(missing)), 0)
            indexes: list[int | None] = list(missing[:want_new])
            surplus = len(active) - parallelism
        else:
            if completions is None:
                want = parallelism if succeeded == 0 else 0
            else:
                want = min(parallelism, max(completions - succeeded, 0))
            indexes = [None] * max(want - len(active), 0)
            surplus = len(active) - want
        if surplus > 0:
            victims = sorted(
                active, key=lambda p: (1 if p["spec"].get("nodeName") else 0, _phase(p) == "Running")
            )
            victims = victims[:surplus]
            self.exp.expect_deletions(key, [object_key(p) for p in victims])
            await asyncio.gather(*(self._delete_pod(key, job, p) for p in victims))
            return
        if not indexes:
            return
        indexes = indexes[:BURST]
        self.exp.expect_creations(key, len(indexes))
        created = await self._create_pods(job, indexes)
        for _ in range(len(indexes) - created):
            self.exp.creation_observed(key)

    def pod_for(self, job: dict[str, Any], index: int | None) -> dict[str, Any]:
        """The pod the Job runs next (``index`` for an Indexed Job)."""
        jmd = job["metadata"]
        tpl = (job.get("spec") or {}).get("template") or {}
        tmd = tpl.get("metadata") or {}
        labels = dict(tmd.get("labels") or {})
        labels.update(
            {
                JOB_NAME_LABEL: jmd["name"],
                CONTROLLER_UID_LABEL: jmd["uid"],
                BATCH_JOB_NAME_LABEL: jmd["name"],
                BATCH_CONTROLLER_UID_LABEL: jmd["uid"],
            }
        )
        annotations = dict(tmd.get("annotations") or {})
        spec = copy.deepcopy(tpl.get("spec") or {})
        gen = jmd["name"] + "-"
        if index is not None:
            labels[COMPLETION_INDEX_ANNOTATION] = str(index)
            annotations[COMPLETION_INDEX_ANNOTATION] = str(index)
            gen = f"{jmd['name']}-{index}-"
            spec.setdefault("hostname", f"{jmd['name']}-{index}"[:63].rstrip("-"))
            for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
                env = [e for e in c.get("env") or [] if e.get("name") != "JOB_COMPLETION_INDEX"]
                env.append({"name": "JOB_COMPLETION_INDEX", "value": str(index)})
                c["env"] = env
        md: dict[str, Any] = {
            "generateName": gen,
            "namespace": jmd.get("namespace"),
            "labels": labels,
            "ownerReferences": [meta.owner_reference(job)],
        }
        if annotations:
            md["annotations"] = annotations
        return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec}

    async def _create_pods(self, job: dict[str, Any], indexes: list[int | None]) -> int:
        md = job["metadata"]
        done = 0
        batch = 1
        while done < len(indexes):
            part = indexes[done : done + batch]
            results = await asyncio.gather(
                *(
                    self.client.create(
                        self.pod_for(job, i), namespace=md.get("namespace"), tenant=md.get("tenant")
                    )
                    for i in part
                ),
                return_exceptions=True,
            )
            err = None
            for r in results:
                if isinstance(r, BaseException):
                    if isinstance(r, asyncio.CancelledError):
                        raise r
                    err = r
                    self.recorder.warning(job, "FailedCreate", f"Error creating: {r}")
                else:
                    done += 1
                    self.recorder.normal(job, "SuccessfulCreate", f"Created pod: {r['metadata']['name']}")
            if err is not None:
                if "being terminated" not in str(err):
                    self.log.warning("job %s/%s: create failed: %s", md.get("namespace"), md["name"], err)
                return done
            batch *= 2
        return done

    async def _delete_pod(self, key: str, job: dict[str, Any], pod: dict[str, Any]) -> None:
        await delete_owned_pod(self.client, self.exp, self.recorder, key, job, pod)

    async def _delete_all(self, key: str, job: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        if not pods:
            return
        self.exp.expect_deletions(key, [object_key(p) for p in pods])
        await asyncio.gather(*(self._delete_pod(key, job, p) for p in pods))

    # ------------------------------------------------------------------ finishing
    async def _ttl(self, job: dict[str, Any]) -> float | None:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return None
        st = job.get("status") or {}
        c = condition_true(job, "Complete") or condition_true(job, "Failed") or {}
        when = st.get("completionTime") or c.get("lastTransitionTime")
        if not when:
            return None
        left = meta.parse_rfc3339(when) + ttl - self.clock()
        if left > 0:
            return left + 0.05
        md = job["metadata"]
        try:
            await self.client.delete(
                "jobs",
                md["name"],
                namespace=md.get("namespace"),
                tenant=md.get("tenant"),
                propagation_policy="Background",
                preconditions={"uid": md["uid"]},
            )
            self.log.info("job %s/%s deleted %ss after it finished", md.get("namespace"), md["name"], ttl)
        except ApiError as e:
            if e.code not in (404, 409):
                raise
        return None

    @staticmethod
    def _set_condition(
        conds: list[dict[str, Any]], typ: str, reason: str, message: str, status: str = "True"
    ) -> list[dict[str, Any]]:
        now = meta.now_rfc3339()
        out = [c for c in conds if c.get("type") != typ]
        out.append(
            {
                "type": typ,
                "status": status,
                "reason": reason,
                "message": message,
                "lastProbeTime": now,
                "lastTransitionTime": now,
            }
        )
        return out

    async def _write_status(self, job: dict[str, Any], status: dict[str, Any]) -> None:
        if status == (job.get("status") or {}):
            return
        body = copy.deepcopy(job)
        body["status"] = status
        try:
            await self.client.update(body, "status")
        except ApiError as e:
            if e.code == 404:
                return
            raise  # a conflict: the worker retries with the fresh object from the watch
