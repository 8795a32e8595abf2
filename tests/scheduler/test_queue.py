"""Unit tests of the scheduling queue: priority order, back-off, parking and moving unschedulable pods."""

from __future__ import annotations

import asyncio
import time

from ctl.scheduler.queue import ACTIVE, BACKOFF, UNSCHEDULABLE, SchedulingQueue
from tests.scheduler.helpers import pod


def test_priority_then_fifo() -> None:
    q = SchedulingQueue()
    q.add(pod("low-1"))
    q.add(pod("high", priority=100))
    q.add(pod("low-2"))
    order = [q.pop_nowait().key.rsplit("/", 1)[1] for _ in range(3)]  # type: ignore[union-attr]
    assert order == ["high", "low-1", "low-2"]
    assert q.pop_nowait() is None


def test_backoff_grows_and_is_capped() -> None:
    q = SchedulingQueue(initial_backoff=1.0, max_backoff=10.0)
    assert [q.backoff_duration(a) for a in (1, 2, 3, 4, 5, 6)] == [1, 2, 4, 8, 10, 10]


def test_unschedulable_pods_wait_for_a_cluster_change() -> None:
    q = SchedulingQueue(initial_backoff=0.05, max_backoff=0.05)
    q.add(pod("p"))
    info = q.pop_nowait()
    assert info is not None
    q.requeue_unschedulable(info.key)
    assert q.counts()[UNSCHEDULABLE] == 1
    time.sleep(0.06)
    q.flush()
    assert q.pop_nowait() is None  # nothing changed: stays parked
    assert q.move_all() == 1
    assert q.pop_nowait() is not None  # back-off already over: straight to active


def test_a_move_during_the_attempt_sends_the_pod_to_backoff_not_parking() -> None:
    q = SchedulingQueue(initial_backoff=0.05, max_backoff=0.05)
    q.add(pod("p"))
    info = q.pop_nowait()
    assert info is not None
    q.move_all()  # e.g. a node was added while this pod was being scheduled
    q.requeue_unschedulable(info.key)
    assert q.counts()[BACKOFF] == 1
    assert q.pop_nowait() is None
    time.sleep(0.06)
    q.flush()
    assert q.pop_nowait() is not None


def test_moved_pods_still_in_backoff_wait_it_out() -> None:
    q = SchedulingQueue(initial_backoff=0.2, max_backoff=0.2)
    q.add(pod("p"))
    info = q.pop_nowait()
    q.requeue_unschedulable(info.key)  # type: ignore[union-attr]
    q.move_all()
    assert q.counts()[BACKOFF] == 1
    q.flush()
    assert q.pop_nowait() is None
    time.sleep(0.21)
    q.flush()
    assert q.counts()[ACTIVE] == 1


def test_update_of_a_parked_pod_requeues_it_and_delete_drops_it() -> None:
    q = SchedulingQueue(initial_backoff=0.0, max_backoff=0.0)
    p = pod("p", uid="u1")
    q.add(p)
    q.requeue_unschedulable(q.pop_nowait().key)  # type: ignore[union-attr]
    p2 = pod("p", uid="u1", nodeSelector={"a": "b"})
    q.add(p2)
    info = q.pop_nowait()
    assert info is not None and info.node_selector == {"a": "b"}
    q.delete(info.key)
    assert len(q) == 0 and q.pop_nowait() is None


def test_long_parked_pods_are_retried_anyway() -> None:
    q = SchedulingQueue(initial_backoff=0.0, max_backoff=0.0, unschedulable_timeout=0.05)
    q.add(pod("p"))
    q.requeue_unschedulable(q.pop_nowait().key)  # type: ignore[union-attr]
    time.sleep(0.06)
    q.flush()
    assert q.pop_nowait() is not None


async def test_pop_waits_for_a_pod() -> None:
    q = SchedulingQueue()
    task = asyncio.create_task(q.pop())
    await asyncio.sleep(0.01)
    assert not task.done()
    q.add(pod("p"))
    info = await asyncio.wait_for(task, 1)
    assert info.key.endswith("/p")
