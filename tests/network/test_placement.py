"""Placement: spread across droplets (pure function), re-placement when a droplet goes away
and live scaling of bouncers, through a real API server and hollow transit daemons."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from ctl.client import ApiError, Client
from ctl.network.nodehealth import NodeHealth, node_name
from ctl.network.placement import place
from ctl.types import meta
from ctl.types.columns import columns_for
from tests.cluster import ApiServerProcess
from tests.helpers import eventually
from tests.network.conftest import Hollow, droplets, make, operator, phase


def test_place_spreads_keeps_and_drops() -> None:
    drops = [f"d{i}" for i in range(4)]
    load: Counter[str] = Counter()
    for s in range(8):
        got = place(1, [], drops, load, f"s{s}")
        load.update(got)
    assert sorted(load.values()) == [2, 2, 2, 2]  # spread, not random
    assert place(2, ["d3"], drops, {}, "x")[0] == "d3"  # a live placement is kept
    assert "d3" not in place(1, ["d3"], drops[:3], {}, "x")  # a gone droplet is replaced
    assert len(place(1, ["d0", "d1"], drops, {"d0": 5}, "x")) == 1


@pytest.mark.slow
async def test_replace_on_droplet_gone_and_scale(api: ApiServerProcess, tmp_path: Path) -> None:
    hollow = Hollow(tmp_path / "h", ["d1", "d2", "d3"])
    op = operator(api, tmp_path / "op.log")
    client = api.client()
    try:
        await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n1"}})
        await droplets(client, hollow)
        await make(client, "VPC", "v", {"cidr": "10.8.0.0/16"})
        await make(client, "Subnet", "s", {"vpc": "v", "cidr": "10.8.0.0/24"})
        (b0,) = (await phase(client, "subnets", "s"))["status"]["bouncers"]
        host = next(d for d in ("d1", "d2", "d3") if d != b0)
        await make(client, "Endpoint", "e", {"subnet": "s", "droplet": host, "veth": "ve"}, namespace="n1")
        ip = (await phase(client, "endpoints", "e", namespace="n1"))["status"]["ip"]
        await client.delete("droplets.mizar.centaurus.io", b0)

        async def moved() -> str | None:
            b = (await client.get("subnets.mizar.centaurus.io", "s"))["status"].get("bouncers") or []
            return b[0] if b and b0 not in b else None

        b1 = await eventually(moved, 20, 0.1, "bouncer re-placed")
        await eventually(
            lambda: ip in {o["ip"] for o in hollow.objects(b1, "endpoints")},
            20,
            0.1,
            "endpoint on the new bouncer",
        )
        await client.patch("subnets.mizar.centaurus.io", "s", {"spec": {"bouncers": 2}})

        async def two() -> bool:
            return (
                len((await client.get("subnets.mizar.centaurus.io", "s"))["status"].get("bouncers") or [])
                == 2
            )

        await eventually(two, 20, 0.1, "scaled to 2 bouncers")
        nets = [n for n in hollow.objects(host, "nets") if n["cidr"] == "10.8.0.0/24"]
        await eventually(
            lambda: (
                len([n for n in hollow.objects(host, "nets") if n["cidr"] == "10.8.0.0/24"][0]["bouncers"])
                == 2
            ),
            20,
            0.1,
            "host's nets entry lists both",
        )
        assert nets
        await client.patch("subnets.mizar.centaurus.io", "s", {"spec": {"bouncers": 1}})

        async def one() -> bool:
            return (
                len((await client.get("subnets.mizar.centaurus.io", "s"))["status"].get("bouncers") or [])
                == 1
            )

        await eventually(one, 20, 0.1, "scaled back to 1")
    finally:
        await client.close()
        op.stop()
        hollow.stop()
        assert "Traceback" not in op.log(), op.log()[-4000:]


async def _node(client: Client, name: str, ready: bool) -> None:
    try:
        await client.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    except ApiError as e:
        if e.code != 409:
            raise
    node = await client.get("nodes", name)
    node["status"] = {
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "reason": "KubeletReady" if ready else "KubeletNotReady",
                "lastTransitionTime": meta.now_rfc3339(),
            }
        ]
    }
    await client.update_status(node)


@pytest.mark.slow
async def test_replace_on_node_notready_reprograms_only_affected(
    api: ApiServerProcess, tmp_path: Path
) -> None:
    """A bouncer whose droplet's Node is NotReady moves after the grace period (not before),
    and only the droplets the move concerns are re-programmed (counted on hollow daemons):
    the old and new bouncer, the hosts of the subnet's endpoints, the VPC's divider."""
    names = [f"d{i}" for i in range(1, 9)]
    hollow = Hollow(tmp_path / "h", names)
    op = operator(api, tmp_path / "op.log", "--node-grace-period", "2s")
    client = api.client()
    try:
        await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n1"}})
        for n in names:
            await _node(client, n, True)
        await droplets(client, hollow)
        for v, cidr in (("v", "10.8.0.0/16"), ("u", "10.9.0.0/16")):
            await make(client, "VPC", v, {"cidr": cidr})
            await make(client, "Subnet", f"s{v}", {"vpc": v, "cidr": cidr.replace("0.0/16", "0.0/24")})
        (b0,) = (await phase(client, "subnets", "sv"))["status"]["bouncers"]
        (bu,) = (await phase(client, "subnets", "su"))["status"]["bouncers"]
        (dv,) = (await phase(client, "vpcs", "v"))["status"]["dividers"]
        (du,) = (await phase(client, "vpcs", "u"))["status"]["dividers"]
        hosts = [d for d in names if d not in (b0, bu, dv, du)][:2]
        for i, h in enumerate(hosts):
            await make(
                client, "Endpoint", f"e{i}", {"subnet": "sv", "droplet": h, "veth": f"ve{i}"}, namespace="n1"
            )
        await make(client, "Endpoint", "f", {"subnet": "su", "droplet": bu, "veth": "vf"}, namespace="n1")
        ips = [(await phase(client, "endpoints", f"e{i}", namespace="n1"))["status"]["ip"] for i in range(2)]
        await phase(client, "endpoints", "f", namespace="n1")
        await asyncio.sleep(0.5)  # let background substrate writes finish before counting
        hollow.reset()
        await _node(client, b0, False)
        # within the grace period nothing moves
        await asyncio.sleep(1.0)
        assert (await client.get("subnets.mizar.centaurus.io", "sv"))["status"]["bouncers"] == [b0]

        async def moved() -> str | None:
            b = (await client.get("subnets.mizar.centaurus.io", "sv"))["status"].get("bouncers") or []
            return b[0] if b and b0 not in b else None

        b1 = await eventually(moved, 20, 0.1, "bouncer re-placed after the grace period")
        await eventually(
            lambda: set(ips) <= {o["ip"] for o in hollow.objects(b1, "endpoints")},
            20,
            0.1,
            "on the new bouncer",
        )
        b1_ip = (await client.get("droplets.mizar.centaurus.io", b1))["spec"]["ip"]
        for i, h in enumerate(hosts):

            async def reprogrammed(i: int = i, h: str = h) -> bool:
                e = await client.get("endpoints.mizar.centaurus.io", f"e{i}", "n1")
                nets = [n for n in hollow.objects(h, "nets") if n["cidr"] == "10.8.0.0/24"]
                return e["status"].get("programmed") == sorted({h, b1}) and nets[0]["bouncers"] == [b1_ip]

            await eventually(
                reprogrammed, 20, 0.1, f"{h}'s nets entry and e{i}'s status name the new bouncer"
            )
        await eventually(
            lambda: not {o["ip"] for o in hollow.objects(b0, "endpoints")} & set(ips), 20, 0.1, "gone from b0"
        )
        d = await client.get("droplets.mizar.centaurus.io", b0)
        assert d["status"].get("reason") == "NodeNotReady", d["status"]
        assert dict(columns_for("Droplet"))["STATUS"](d) == "Ready(NodeNotReady)"  # what `get droplets` shows
        await asyncio.sleep(0.5)
        # what else moved with b0 (it may also have carried the other subnet's bouncer or a divider)
        su = (await client.get("subnets.mizar.centaurus.io", "su"))["status"]["bouncers"]
        vdiv = (await client.get("vpcs.mizar.centaurus.io", "v"))["status"]["dividers"]
        udiv = (await client.get("vpcs.mizar.centaurus.io", "u"))["status"]["dividers"]
        allowed = {b0, b1, *hosts, dv, *vdiv}
        if b0 in (bu, du):
            allowed |= {bu, *su, du, *udiv}
        touched = {n for n in names if hollow.mutated(n)}
        assert {b0, b1, *hosts} <= touched <= allowed, (touched, allowed)
        assert set(names) - allowed, "the test needs an unconcerned droplet"
        assert b0 not in vdiv + udiv + su
        # Ready again: placeable again, but nothing moves back and nothing is re-programmed
        hollow.reset()
        await _node(client, b0, True)

        async def cleared() -> bool:
            st = (await client.get("droplets.mizar.centaurus.io", b0))["status"]
            return st.get("reason") != "NodeNotReady"

        await eventually(cleared, 20, 0.1, "droplet placeable again")
        await asyncio.sleep(1.0)
        assert (await client.get("subnets.mizar.centaurus.io", "sv"))["status"]["bouncers"] == [b1]
        assert hollow.mutations() == 0
    finally:
        await client.close()
        op.stop()
        hollow.stop()
        assert "Traceback" not in op.log(), op.log()[-4000:]


def test_node_health_grace_by_own_clock() -> None:
    h = NodeHealth(grace=10)
    drop = {"metadata": {"name": "d1"}, "spec": {}}
    other = {"metadata": {"name": "d2"}, "spec": {"node": "n2"}}
    assert node_name(drop) == "d1" and node_name(other) == "n2"

    def node(status: str) -> dict:
        return {"metadata": {"name": "d1"}, "status": {"conditions": [{"type": "Ready", "status": status}]}}

    assert not h.verdict(drop, None, now=0).excluded  # no Node: a transit-only host is healthy
    assert not h.verdict(drop, node("True"), now=0).excluded
    v = h.verdict(drop, node("Unknown"), now=100)
    assert not v.excluded and v.recheck is not None and 10 <= v.recheck < 10.1
    assert not h.verdict(drop, node("False"), now=109).excluded  # still within the grace period
    v = h.verdict(drop, node("False"), now=110.5)
    assert v.excluded and "grace 10s" in v.message
    assert not h.verdict(drop, node("True"), now=111).excluded  # Ready again: the clock restarts
    assert not h.verdict(drop, node("False"), now=112).excluded


@pytest.mark.slow
def test_netoperator_bad_flags_one_line() -> None:
    import subprocess
    import sys

    from tests.cluster import ROOT

    for flags, msg in ((["--check-rate", "0"], "--check-rate"), (["--workers", "0"], "--workers")):
        r = subprocess.run(
            [sys.executable, "-m", "ctl", "serve", "netoperator", "--server", "http://127.0.0.1:1", *flags],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT,
        )
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1 and msg in lines[0], r.stderr
