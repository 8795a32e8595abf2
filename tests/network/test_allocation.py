"""Allocators under concurrency and crashes, against a real API server: two operator processes
never hand out the same VNI or IP, and a kill -9 of the operator in the middle of a churn of
endpoint creates/deletes leaks nothing (allocation records == live endpoints' addresses)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ctl.client import Client
from tests.cluster import ApiServerProcess
from tests.helpers import eventually
from tests.network.conftest import Hollow, droplets, make, operator, phase

pytestmark = pytest.mark.slow


async def _records(client: Client, kind: str) -> list[str]:
    cms = await client.list(
        "configmaps", "kube-system", "system", label_selector=f"network.centaurus.io/allocation={kind}"
    )
    return sorted(c["data"]["value"] for c in cms["items"])


async def _ns(client: Client) -> None:
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n1"}})


async def test_two_operators_never_hand_out_the_same_vni_or_ip(api: ApiServerProcess, tmp_path: Path) -> None:
    hollow = Hollow(tmp_path / "h", ["d1", "d2"])
    # The loser of a race may hold a claimed record for a moment; the periodic reconcile
    # releases it (uniqueness is the invariant; the record count converges), so run it often.
    ops = [operator(api, tmp_path / f"op{i}.log", "--reconcile-interval", "2") for i in range(2)]
    client = api.client()
    try:
        await _ns(client)
        await droplets(client, hollow)
        await asyncio.gather(*(make(client, "VPC", f"v{i}", {"cidr": "10.6.0.0/16"}) for i in range(12)))
        await make(client, "Subnet", "s", {"vpc": "v0", "cidr": "10.6.0.0/24"})
        await phase(client, "subnets", "s")
        await asyncio.gather(
            *(
                make(
                    client,
                    "Endpoint",
                    f"e{i}",
                    {"subnet": "s", "droplet": f"d{1 + i % 2}", "veth": f"ve{i}"},
                    namespace="n1",
                )
                for i in range(40)
            )
        )
        vnis = [(await phase(client, "vpcs", f"v{i}"))["status"]["vni"] for i in range(12)]
        ips = [(await phase(client, "endpoints", f"e{i}", namespace="n1"))["status"]["ip"] for i in range(40)]
        assert len(set(vnis)) == 12 and len(set(ips)) == 40
        assert await eventually(
            lambda: _settled(client, sorted(ips), "ip"), 20, 0.2, "ip records == endpoints"
        )
        assert await eventually(
            lambda: _settled(client, sorted(map(str, vnis)), "vni"), 20, 0.2, "vni records == vpcs"
        )
        c0, c1 = ops[0].log(), ops[1].log()
        assert "Traceback" not in c0 + c1
    finally:
        await client.close()
        for op in ops:
            op.stop()
        hollow.stop()


async def _settled(client: Client, want: list[str], kind: str) -> bool:
    return await _records(client, kind) == want


async def test_kill_9_during_churn_leaks_nothing(api: ApiServerProcess, tmp_path: Path) -> None:
    hollow = Hollow(tmp_path / "h", ["d1", "d2"])
    op = operator(api, tmp_path / "op.log")
    client = api.client()
    try:
        await _ns(client)
        await droplets(client, hollow)
        await make(client, "VPC", "v", {"cidr": "10.7.0.0/16"})
        await make(client, "Subnet", "s", {"vpc": "v", "cidr": "10.7.0.0/24"})
        await phase(client, "subnets", "s")
        live: set[str] = set()
        for i in range(60):  # bounded churn: create, and delete every third one
            await make(
                client,
                "Endpoint",
                f"e{i}",
                {"subnet": "s", "droplet": f"d{1 + i % 2}", "veth": f"ve{i}"},
                namespace="n1",
            )
            live.add(f"e{i}")
            if i % 3 == 2:
                victim = f"e{i - 1}"
                await client.delete("endpoints.mizar.centaurus.io", victim, "n1")
                live.discard(victim)
            if i == 30:
                op.kill()  # SIGKILL in the middle of allocations
                op = operator(api, tmp_path / "op2.log")
            await asyncio.sleep(0.01)
        ips = sorted(
            [
                (await phase(client, "endpoints", n, namespace="n1", timeout=40))["status"]["ip"]
                for n in sorted(live)
            ]
        )
        assert len(set(ips)) == len(ips)
        await eventually(lambda: _settled(client, ips, "ip"), 30, 0.2, "allocated == referenced")

        def programmed() -> bool:
            have = {o["ip"] for d in ("d1", "d2") for o in hollow.objects(d, "endpoints") if o.get("veth")}
            return have == set(ips)

        await eventually(programmed, 20, 0.1, "every live endpoint programmed on its host, nothing else")
    finally:
        await client.close()
        op.stop()
        hollow.stop()
