"""Priority and fairness (:mod:`ctl.apiserver.fairness`): a flooding tenant gets 429s, the others do not.

A real API server runs with one seat and a one-deep queue per tenant. Tenant ``a`` sends
60 creates at once (each holds its seat through the store's fsync); it must get some
``429 TooManyRequests`` with ``Retry-After`` and ``details.retryAfterSeconds`` while tenant
``b`` and the cluster administrator, asking meanwhile, get only successes. The fair
dispatch order itself is checked on :class:`PriorityLevel` directly (no timing involved).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import aiohttp
import pytest

from ctl.apiserver.auth import SYSTEM_MASTERS, Identity
from ctl.apiserver.fairness import PriorityLevel, TooManyRequests, classify, long_running
from tests.cluster import ApiServerProcess
from tests.tenancy.conftest import ADMIN_TOKEN, Caller, api_with_tenant_admins

A_TOKEN, B_TOKEN = "flow-tenant-a-token-0123456789", "flow-tenant-b-token-0123456789"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    extra = ["--tenant-max-inflight", "1", "--tenant-queue-length", "1", "--queue-wait-seconds", "5"]
    users = {A_TOKEN: ("alice", "a"), B_TOKEN: ("bob", "b")}
    with api_with_tenant_admins(tmp_path_factory.mktemp("flow"), extra, users) as api:
        yield api


def _cm(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}


def test_flooding_tenant_gets_429_others_and_admin_get_200(api: ApiServerProcess) -> None:
    others: list[int] = []
    stop = threading.Event()

    def other_callers() -> None:  # tenant b and the admin, one request at a time, while a floods
        b, admin = Caller(api.url, B_TOKEN), Caller(api.url, ADMIN_TOKEN)
        n = 0
        while not stop.is_set() and n < 200:
            others.append(b.post("/api/v1/namespaces/default/configmaps", _cm(f"b-{n}"))[0])
            others.append(admin.get("/api/v1/tenants/a/namespaces/default/configmaps")[0])
            n += 1

    async def flood() -> list[tuple[int, str | None, dict[str, object]]]:
        headers = {"Authorization": f"Bearer {A_TOKEN}"}
        conn = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(headers=headers, connector=conn) as s:

            async def one(i: int) -> tuple[int, str | None, dict[str, object]]:
                async with s.post(f"{api.url}/api/v1/namespaces/default/configmaps", json=_cm(f"a-{i}")) as r:
                    return r.status, r.headers.get("Retry-After"), await r.json()

            out: list[tuple[int, str | None, dict[str, object]]] = []
            for burst in range(5):  # bounded: 5 bursts of 60
                out += await asyncio.gather(*(one(burst * 100 + i) for i in range(60)))
            return out

    t = threading.Thread(target=other_callers)
    t.start()
    try:
        results = asyncio.run(flood())
    finally:
        stop.set()
        t.join(30)
    codes = [c for c, _, _ in results]
    rejected = [(ra, body) for c, ra, body in results if c == 429]
    assert rejected, f"the flooding tenant was never throttled: {sorted(set(codes))}"
    assert set(codes) <= {201, 429}, codes
    ra, body = rejected[0]
    assert ra is not None and int(ra) >= 1
    assert body["kind"] == "Status" and body["reason"] == "TooManyRequests" and body["code"] == 429
    assert body["details"]["retryAfterSeconds"] >= 1  # type: ignore[index]
    assert others and set(others) <= {200, 201}, f"tenant b / the admin were refused: {sorted(set(others))}"
    text = Caller(api.url, ADMIN_TOKEN).call("GET", "/metrics")[1]
    assert 'apiserver_flowcontrol_rejected_requests_total{priority_level="workload",flow="a"}' in text
    assert 'apiserver_flowcontrol_rejected_requests_total{priority_level="workload",flow="b"} 0' in text


def test_watch_takes_no_seat(api: ApiServerProcess) -> None:
    """With its one seat held by watches, the tenant can still create (long-running requests are not counted)."""

    async def go() -> int:
        headers = {"Authorization": f"Bearer {A_TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as s:
            watches = [
                await s.get(f"{api.url}/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=20")
                for _ in range(3)
            ]
            try:
                async with s.post(
                    f"{api.url}/api/v1/namespaces/default/configmaps", json=_cm("during-watch")
                ) as r:
                    return r.status
            finally:
                for w in watches:
                    w.close()

    assert asyncio.run(go()) == 201


def test_fair_dispatch_round_robin_across_flows() -> None:
    """One seat; flow A queues 4 requests before B queues 1: B is served second, not fifth."""

    async def go() -> list[str]:
        lv = PriorityLevel("workload", seats=1, flow_seats=1, queue_length=10, wait=5)
        order: list[str] = []
        await lv.acquire("holder")

        async def req(flow: str) -> None:
            await lv.acquire(flow)
            order.append(flow)
            await asyncio.sleep(0)
            lv.release(flow)

        tasks = [asyncio.create_task(req("A")) for _ in range(4)]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(req("B")))
        await asyncio.sleep(0)
        lv.release("holder")
        await asyncio.gather(*tasks)
        return order

    order = asyncio.run(go())
    assert order.index("B") <= 1, order
    assert sorted(order) == ["A", "A", "A", "A", "B"]


def test_queue_full_and_wait_timeout_reject() -> None:
    async def go() -> tuple[str, str]:
        lv = PriorityLevel("workload", seats=4, flow_seats=1, queue_length=1, wait=0.05)
        await lv.acquire("A")
        waiter = asyncio.create_task(lv.acquire("A"))  # queued
        await asyncio.sleep(0)
        with pytest.raises(TooManyRequests) as full:
            await lv.acquire("A")  # share and queue exhausted
        with pytest.raises(TooManyRequests) as waited:
            await waiter  # never got a seat within 50 ms
        await lv.acquire("B")  # another flow is not affected
        return str(full.value), str(waited.value)

    full, waited = asyncio.run(go())
    assert "full" in full and "waited" in waited


def test_classification() -> None:
    assert classify(Identity("system:admin", "system", (SYSTEM_MASTERS,)))[0] == "exempt"
    assert classify(Identity("system:node:n1", "system", ("system:nodes",))) == ("system", "system:node:n1")
    assert classify(Identity("alice", "a", ())) == ("workload", "a")
    assert classify(Identity("mallory", "a", (SYSTEM_MASTERS,)))[0] == "workload"  # masters only in system


@pytest.mark.parametrize(
    "path, long",
    [
        ("/api/v1/pods?watch=1", True),
        ("/api/v1/namespaces/d/pods?watch=true&resourceVersion=5", True),
        ("/api/v1/namespaces/d/pods/p/log?follow=true", True),
        ("/api/v1/namespaces/d/pods/p/exec?command=sh", True),
        ("/api/v1/namespaces/d/pods/p/log", False),
        ("/api/v1/namespaces/d/pods?watch=0", False),
        ("/api/v1/namespaces/d/pods/exec", False),  # a pod named "exec"
    ],
)
def test_long_running(path: str, long: bool) -> None:
    from aiohttp.test_utils import make_mocked_request

    assert long_running(make_mocked_request("GET", path)) is long
