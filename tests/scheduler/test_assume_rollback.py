"""The scheduler's assume cache: a pod counts on its node as soon as it is picked, and the
assumption is rolled back when binding fails (requeued with back-off unless the pod is gone)."""

from __future__ import annotations

from typing import Any

import pytest

from ctl.client import ApiError, ClientConfig
from ctl.client.aio import Client
from ctl.scheduler.queue import BACKOFF, UNSCHEDULABLE
from ctl.scheduler.scheduler import Options, Scheduler
from tests.scheduler.helpers import node, pod


class FakeClient(Client):
    def __init__(self, fail: ApiError | None) -> None:
        super().__init__(ClientConfig("http://127.0.0.1:1"))
        self.fail = fail
        self.binds: list[tuple[str, str]] = []

    async def bind(self, p: dict[str, Any], node_name: str) -> None:
        self.binds.append((p["metadata"]["name"], node_name))
        if self.fail:
            raise self.fail


def make(fail: ApiError | None) -> tuple[Scheduler, FakeClient]:
    c = FakeClient(fail)
    s = Scheduler(c, options=Options(scheduled_events=False, initial_backoff=5, max_backoff=5))
    s._node_handler(0)("ADDED", node("n1", cpu="1"), None)
    return s, c


async def schedule(s: Scheduler, p: dict[str, Any]) -> str | None:
    s.on_pod("ADDED", p, None)
    info = s.queue.pop_nowait()
    assert info is not None
    await s._sem.acquire()
    chosen = s.schedule_one(info)
    if chosen is not None:
        # assumed before the binding returns: a second pod no longer fits
        assert s.cache.is_accounted(info.key) and s.cache.pods[info.key].assumed
        await s._bind(info, chosen)
    return chosen


async def test_successful_binding_stays_assumed_until_the_watch_confirms() -> None:
    s, c = make(None)
    p = pod("a", cpu="800m", uid="u-a")
    assert await schedule(s, p) == "n1"
    assert c.binds == [("a", "n1")]
    key = "/default/a"
    assert s.cache.pods[key].assumed
    bound = {**p, "spec": {**p["spec"], "nodeName": "n1"}}
    s.on_pod("MODIFIED", bound, p)
    assert not s.cache.pods[key].assumed
    assert s.cache.req_cpu[s.cache.index["n1"]] == pytest.approx(800)  # counted once
    # a second pod does not fit, then fits once the first is deleted
    assert await schedule(s, pod("b", cpu="800m", uid="u-b")) is None
    assert s.queue.counts()[UNSCHEDULABLE] == 1
    s.on_pod("DELETED", bound, bound)
    assert s.cache.req_cpu[s.cache.index["n1"]] == 0
    # parked as unschedulable, the deletion moves it on (to back-off: its 5 s have not passed yet)
    assert s.queue.counts()[BACKOFF] == 1


async def test_failed_binding_is_rolled_back_and_retried_after_backoff() -> None:
    s, _ = make(ApiError(500, {"message": "store unavailable"}))
    assert await schedule(s, pod("a", cpu="800m", uid="u-a")) == "n1"
    assert not s.cache.is_accounted("/default/a")
    assert s.cache.req_cpu[s.cache.index["n1"]] == 0
    assert s.queue.counts()[BACKOFF] == 1
    assert s.stats["bind_errors"] == 1


async def test_binding_a_deleted_pod_is_dropped() -> None:
    s, _ = make(ApiError(404, {"message": 'pods "a" not found', "reason": "NotFound"}))
    assert await schedule(s, pod("a", cpu="800m", uid="u-a")) == "n1"
    assert not s.cache.is_accounted("/default/a")
    assert len(s.queue) == 0
