"""Fixtures for the batch tests: a real API server, the Job, CronJob and garbage-collector
controllers running in this process (so a test can move the CronJob controller's clock and
shorten the Job back-off), and :class:`RunToCompletionKubelet`.

The kubelet stands in for scheduler and node agent for the pods of one namespace: it binds
each new pod, reports it Running, then after ``run_seconds`` terminates it with the exit code
its first container's ``EXIT_CODE`` variable names (default 0) - ``Succeeded`` for 0,
``Failed`` otherwise; with ``restartPolicy: OnFailure`` a failing pod instead stays Running and
its ``restartCount`` grows every ``run_seconds`` - and removes pods that are being deleted, as an
agent does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ctl.client import ApiError, Client
from ctl.client.events import EventRecorder
from ctl.client.informer import SharedInformers
from ctl.controllers.base import HashRange
from ctl.controllers.cronjob import CronJobController
from ctl.controllers.gc import GarbageCollector
from ctl.controllers.job import JobController
from ctl.types import meta
from tests.cluster import ApiServerProcess
from tests.controllers.conftest import FakeKubelet, running_status
from tests.controllers.conftest import ns as _ns_fixture
from tests.helpers import eventually  # noqa: F401 - the batch tests import it from here

ns = _ns_fixture  # a fresh namespace per test, on the API server of the client fixture below


class Controllers:
    """The batch controllers and the garbage collector on one client and one set of informers."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.informers = SharedInformers(client)
        self.recorder = EventRecorder(client, "controller-manager", host="test")
        hr = HashRange()
        self.job = JobController(client, self.informers, self.recorder, hr, 4)
        self.job.backoff_base = 0.2
        self.cronjob = CronJobController(client, self.informers, self.recorder, hr, 2)
        self.now = time.time()
        self.cronjob.clock = lambda: self.now
        self.gc = GarbageCollector(client, self.informers, self.recorder, hr, 2)

    async def start(self) -> Controllers:
        self.recorder.start()
        self.informers.start()
        await asyncio.wait_for(self.informers.wait_synced(), 20)
        for c in (self.job, self.cronjob, self.gc):
            await c.prepare()
            c.start()
        return self

    def tick(self, to: float) -> None:
        """Move the CronJob controller's clock to ``to`` and make it look at every CronJob."""
        self.now = to
        for cj in self.cronjob.cronjobs.list():
            self.cronjob.queue.add(meta.object_key(cj))

    async def stop(self) -> None:
        for c in (self.job, self.cronjob, self.gc):
            await c.stop()
        await self.informers.stop()
        await self.recorder.stop(0.5)


def finished_status(pod: dict[str, Any], code: int) -> dict[str, Any]:
    now = meta.now_rfc3339()
    st = dict(pod.get("status") or {})
    st["phase"] = "Succeeded" if code == 0 else "Failed"
    st["conditions"] = [
        {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now}
    ]
    st["containerStatuses"] = [
        {
            "name": c["name"],
            "image": c.get("image", ""),
            "ready": False,
            "restartCount": 0,
            "state": {
                "terminated": {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": now,
                    "finishedAt": now,
                }
            },
        }
        for c in (pod.get("spec") or {}).get("containers") or []
    ]
    return st


def _restarted(status: dict[str, Any], n: int) -> dict[str, Any]:
    for cs in status.get("containerStatuses") or []:
        cs["restartCount"] = n
    return status


def exit_code_of(pod: dict[str, Any]) -> int:
    cs = (pod.get("spec") or {}).get("containers") or [{}]
    for e in cs[0].get("env") or []:
        if e.get("name") == "EXIT_CODE":
            return int(e.get("value") or 0)
    return 0


class RunToCompletionKubelet(FakeKubelet):
    """Binds, runs (for ``run_seconds``) and finishes the pods of one namespace; see the module docstring.

    The watch loop, removal of pods being deleted and ``stop`` are :class:`FakeKubelet`'s; what
    a pod does once bound is this class's :meth:`_start_pod`.
    """

    def __init__(self, client: Client, namespace: str, node: str = "node-batch", run_seconds: float = 0.3):
        super().__init__(client, namespace, node, lease=False)
        self.run_seconds = run_seconds
        self.hold = False  # while True, pods keep running
        self.started: list[str] = []
        self.started_at: list[float] = []  # monotonic times the pods were bound, in order
        self.env_seen: dict[str, dict[str, str]] = {}

    async def _set_status(self, name: str, make: Any) -> bool:
        for _ in range(10):
            try:
                fresh = await self.client.get("pods", name, namespace=self.namespace)
            except ApiError:
                return False
            if fresh["metadata"].get("deletionTimestamp"):
                return False
            fresh["status"] = make(fresh)
            try:
                await self.client.update(fresh, "status")
                return True
            except ApiError as e:
                if e.code != 409:
                    return False
        return False

    async def _start_pod(self, pod: dict[str, Any]) -> None:
        md = pod["metadata"]
        try:
            await self.client.bind(pod, self.node)
        except ApiError:
            return
        self.started.append(md["name"])
        self.started_at.append(time.monotonic())
        c0 = ((pod.get("spec") or {}).get("containers") or [{}])[0]
        self.env_seen[md["name"]] = {e["name"]: e.get("value", "") for e in c0.get("env") or []}
        if not await self._set_status(md["name"], running_status):
            return
        await asyncio.sleep(self.run_seconds)
        while self.hold:
            await asyncio.sleep(0.05)
        code = exit_code_of(pod)
        if code != 0 and (pod.get("spec") or {}).get("restartPolicy") == "OnFailure":
            # restarted in place, as a kubelet does: the pod stays Running, restartCount grows
            for n in range(1, 1000):
                ok = await self._set_status(md["name"], lambda p, n=n: _restarted(running_status(p), n))
                if not ok:
                    return
                await asyncio.sleep(self.run_seconds)
            return
        await self._set_status(md["name"], lambda p: finished_status(p, code))


@pytest.fixture()
async def client(apiserver: ApiServerProcess) -> AsyncIterator[Client]:
    c = apiserver.client()
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture()
async def controllers(client: Client) -> AsyncIterator[Controllers]:
    c = await Controllers(client).start()
    try:
        yield c
    finally:
        await c.stop()


@pytest.fixture()
async def kubelet(client: Client, ns: str) -> AsyncIterator[RunToCompletionKubelet]:
    k = RunToCompletionKubelet(client, ns)
    await k.start()
    try:
        yield k
    finally:
        await k.stop()


def job(name: str, exit_code: int = 0, restart: str = "Never", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": restart,
                    "containers": [
                        {
                            "name": "work",
                            "image": "busybox:1",
                            "env": [{"name": "EXIT_CODE", "value": str(exit_code)}],
                        }
                    ],
                }
            },
            **spec,
        },
    }


def cronjob(name: str, schedule: str, exit_code: int = 0, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {"schedule": schedule, "jobTemplate": {"spec": job("x", exit_code)["spec"]}, **spec},
    }
