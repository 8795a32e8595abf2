"""A tenant's ``default`` Network through the real tenant controller and network operator:
the tenant controller creates it when the tenant is created, the operator turns it into a VPC
and a Subnet of its name and CIDR (owned by the Network), both Provisioned, and the Network
goes Ready - for two tenants with the same CIDR, on different VNIs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctl.client import ApiError
from tests.cluster import ApiServerProcess, RoleProcess
from tests.helpers import eventually
from tests.network.conftest import Hollow, droplets, operator, phase

pytestmark = pytest.mark.slow


async def test_tenant_default_network_ready_same_cidr(api: ApiServerProcess, tmp_path: Path) -> None:
    hollow = Hollow(tmp_path / "h", ["d1", "d2"])
    ctrl = RoleProcess(
        "controllers", ["--server", api.url, "--controllers", "tenant,garbagecollector"], tmp_path / "c.log"
    ).start()
    op = operator(api, tmp_path / "op.log")
    client = api.client()
    try:
        await droplets(client, hollow)
        for t in ("ta", "tb"):
            await client.create({"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": t}})
        nets = {}
        for t in ("ta", "tb"):

            async def ready(t: str = t) -> dict | None:
                try:
                    n = await client.get("networks", "default", tenant=t)
                except ApiError as e:
                    if e.code != 404:
                        raise
                    return None  # not created by the tenant controller yet
                return n if (n.get("status") or {}).get("phase") == "Ready" else None

            nets[t] = await eventually(ready, 60, 0.1, f"tenant {t}'s default Network Ready")
            vpc = await phase(client, "vpcs", "default", tenant=t)
            sub = await phase(client, "subnets", "default", tenant=t)
            for o in (vpc, sub):
                (ref,) = o["metadata"]["ownerReferences"]
                assert (ref["kind"], ref["name"], ref["uid"]) == (
                    "Network",
                    "default",
                    nets[t]["metadata"]["uid"],
                )
            assert vpc["spec"]["cidr"] == sub["spec"]["cidr"] == nets[t]["status"]["cidr"] == "10.0.0.0/16"
            assert nets[t]["status"]["vni"] == vpc["status"]["vni"] == sub["status"]["vni"]
            assert sub["status"]["gateway"] == "10.0.0.1" and len(sub["status"]["bouncers"]) == 1
        assert nets["ta"]["status"]["vni"] != nets["tb"]["status"]["vni"]  # same CIDR, two VPCs
    finally:
        await client.close()
        op.stop()
        ctrl.stop()
        hollow.stop()
        assert "Traceback" not in op.log(), op.log()[-4000:]
