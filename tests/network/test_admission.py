"""Collisions refused up front by the API server (``ctl/apiserver/network_admission.py``), and
the network operator's ``Failed`` phase as the second line of defence for what admission
cannot see yet - against a real API server, a real operator and hollow transit daemons."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ctl.client import ApiError, Client
from tests.cluster import ApiServerProcess
from tests.network.conftest import Hollow, droplets, make, operator, phase, settled

pytestmark = pytest.mark.slow


async def _refused(coro: Any, code: int, reason: str, field: str) -> ApiError:
    with pytest.raises(ApiError) as ei:
        await coro
    e = ei.value
    assert (e.code, e.reason) == (code, reason), e.status
    assert field in str(e) and [c["field"] for c in e.status["details"]["causes"]] == [field], e.status
    return e


async def _ep(client: Client, name: str, spec: dict[str, Any], tenant: str | None = None) -> dict[str, Any]:
    return await make(client, "Endpoint", name, {"droplet": "d1", "veth": f"v{name}", **spec}, tenant, "n1")


async def test_collisions_refused_at_admission(api: ApiServerProcess, tmp_path: Path) -> None:
    hollow = Hollow(tmp_path / "h", ["d1"])
    op = operator(api, tmp_path / "op.log")
    client = api.client()
    try:
        await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n1"}})
        await droplets(client, hollow)
        # VNI: a hand-set VNI another VPC holds is 409, also across tenants (the other VPC unnamed)
        await make(client, "VPC", "v", {"cidr": "10.4.0.0/16", "vni": 4242})
        assert (await phase(client, "vpcs", "v"))["status"]["vni"] == 4242
        e = await _refused(
            make(client, "VPC", "w", {"cidr": "10.4.0.0/16", "vni": 4242}), 409, "AlreadyExists", "spec.vni"
        )
        assert "VNI 4242 is already allocated to another VPC" in str(e)
        await client.create({"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": "other"}})
        e = await _refused(
            make(client, "VPC", "w", {"cidr": "10.4.0.0/16", "vni": 4242}, tenant="other"),
            409,
            "AlreadyExists",
            "spec.vni",
        )
        assert '"v"' not in str(e)
        # ... an allocated (not hand-set) VNI too, and moving a VPC onto it by update
        await make(client, "VPC", "auto", {"cidr": "10.6.0.0/16"})
        auto_vni = (await phase(client, "vpcs", "auto"))["status"]["vni"]
        await _refused(
            make(client, "VPC", "w", {"cidr": "10.4.0.0/16", "vni": auto_vni}),
            409,
            "AlreadyExists",
            "spec.vni",
        )
        await make(client, "VPC", "w", {"cidr": "10.7.0.0/16", "vni": 4343})
        await _refused(
            client.patch("vpcs.mizar.centaurus.io", "w", {"spec": {"vni": 4242}}),
            409,
            "AlreadyExists",
            "spec.vni",
        )
        # a status write and a scaling of the VPC holding the VNI are not refused
        await client.patch("vpcs.mizar.centaurus.io", "v", {"spec": {"dividers": 1}})
        # subnets: outside the VPC, overlapping a sibling (422 with the field); nothing stored
        await make(client, "Subnet", "s", {"vpc": "v", "cidr": "10.4.1.0/24"})
        await phase(client, "subnets", "s")
        e = await _refused(
            make(client, "Subnet", "out", {"vpc": "v", "cidr": "10.5.1.0/24"}), 422, "Invalid", "spec.cidr"
        )
        assert "not inside VPC v's 10.4.0.0/16" in str(e)
        e = await _refused(
            make(client, "Subnet", "over", {"vpc": "v", "cidr": "10.4.1.128/25"}), 422, "Invalid", "spec.cidr"
        )
        assert "overlaps subnet s (10.4.1.0/24)" in str(e)
        names = [o["metadata"]["name"] for o in (await client.list("subnets.mizar.centaurus.io"))["items"]]
        assert names == ["s"]
        # the same CIDR in another VPC is fine, and so is scaling the subnet
        await make(client, "Subnet", "s2", {"vpc": "auto", "cidr": "10.6.1.0/24"})
        await client.patch("subnets.mizar.centaurus.io", "s", {"spec": {"bouncers": 1}})
        # endpoints: a taken IP is 409 (the holder named: same VPC, same tenant); a reserved one 422
        await _ep(client, "a", {"subnet": "s", "ip": "10.4.1.9"})
        assert (await phase(client, "endpoints", "a", namespace="n1"))["status"]["ip"] == "10.4.1.9"
        e = await _refused(
            _ep(client, "b", {"subnet": "s", "ip": "10.4.1.9"}), 409, "AlreadyExists", "spec.ip"
        )
        assert "already allocated to endpoint n1/a" in str(e)
        for ip, why in (
            ("10.4.1.1", "gateway"),
            ("10.4.1.0", "network address"),
            ("10.4.1.255", "broadcast"),
            ("10.4.2.5", "outside"),
        ):
            e = await _refused(_ep(client, "g", {"subnet": "s", "ip": ip}), 422, "Invalid", "spec.ip")
            assert why in str(e)
        # an allocated (not hand-set) address is taken too
        await _ep(client, "c", {"subnet": "s"})
        c_ip = (await phase(client, "endpoints", "c", namespace="n1"))["status"]["ip"]
        await _refused(_ep(client, "d", {"subnet": "s", "ip": c_ip}), 409, "AlreadyExists", "spec.ip")
        # once the holder is gone, the address is free again
        await client.delete("endpoints.mizar.centaurus.io", "a", "n1")
        await _ep(client, "b", {"subnet": "s", "ip": "10.4.1.9"})
        assert (await phase(client, "endpoints", "b", namespace="n1"))["status"]["ip"] == "10.4.1.9"
    finally:
        await client.close()
        op.stop()
        hollow.stop()
        assert "Traceback" not in op.log(), op.log()[-4000:]


async def test_operator_second_line_of_defence(api: ApiServerProcess, tmp_path: Path) -> None:
    """What admission cannot see yet (concurrent creates, objects created before what they
    refer to) is caught by the operator: exactly one holder, the others Failed with a reason."""
    hollow = Hollow(tmp_path / "h", ["d1"])
    op = operator(api, tmp_path / "op.log")
    client = api.client()
    try:
        await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n1"}})
        await droplets(client, hollow)
        # four VPCs asking for one VNI at once: one holds it, the others are refused or Failed
        results = await asyncio.gather(
            *(make(client, "VPC", f"r{i}", {"cidr": "10.9.0.0/16", "vni": 777}) for i in range(4)),
            return_exceptions=True,
        )
        for r in results:
            if isinstance(r, BaseException):
                assert isinstance(r, ApiError) and r.code == 409, r
        created = [r["metadata"]["name"] for r in results if isinstance(r, dict)]
        assert created
        phases = {n: await settled(client, "vpcs", n) for n in created}
        assert sorted(phases.values()).count(("Provisioned", None)) == 1, phases
        assert all(p == ("Failed", "VNIInUse") for p in phases.values() if p[0] != "Provisioned"), phases
        # a subnet created before its VPC: admission cannot check it, the operator fails it
        await make(client, "Subnet", "early", {"vpc": "late", "cidr": "10.20.0.0/24"})
        await make(client, "Subnet", "ok", {"vpc": "late", "cidr": "10.21.0.0/24"})
        await make(client, "VPC", "late", {"cidr": "10.21.0.0/16"})
        assert (await phase(client, "subnets", "early", want="Failed"))["status"]["reason"] == "OutsideVPC"
        await phase(client, "subnets", "ok")
        # two endpoints with one hand-set IP created before their subnet is provisioned
        await _ep(client, "x", {"subnet": "later", "ip": "10.22.0.9"})
        await _ep(client, "y", {"subnet": "later", "ip": "10.22.0.9"})
        await make(client, "VPC", "v22", {"cidr": "10.22.0.0/16"})
        await make(client, "Subnet", "later", {"vpc": "v22", "cidr": "10.22.0.0/24"})
        got = {n: await settled(client, "endpoints", n, namespace="n1") for n in ("x", "y")}
        assert sorted(got.values()) == [("Failed", "IPInUse"), ("Provisioned", None)], got
        cms = await client.list(
            "configmaps", "kube-system", "system", label_selector="network.centaurus.io/allocation=ip"
        )
        assert [c["data"]["value"] for c in cms["items"]].count("10.22.0.9") == 1
    finally:
        await client.close()
        op.stop()
        hollow.stop()
        assert "Traceback" not in op.log(), op.log()[-4000:]
