"""Placement: spread across droplets (pure function), re-placement when a droplet goes away
and live scaling of bouncers, through a real API server and hollow transit daemons."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ctl.network.placement import place
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
