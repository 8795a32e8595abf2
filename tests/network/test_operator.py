"""The network operator against a real API server and hollow transit daemons (which count RPCs):
VPC/Subnet/Endpoint provisioning, what is programmed where, delete, RPCs per endpoint that do
not depend on the number of droplets, a daemon that restarts empty, an operator restart that
re-programs nothing, validation and collisions."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctl.client import ApiError, Client
from tests.cluster import ApiServerProcess
from tests.helpers import eventually
from tests.network.conftest import Hollow, droplets, make, operator, phase

pytestmark = pytest.mark.slow


async def _endpoints(
    client: Client, ns: str, subnet: str, hosts: list[str], n: int, prefix: str = "ep"
) -> None:
    for i in range(n):
        await make(
            client,
            "Endpoint",
            f"{prefix}{i}",
            {"subnet": subnet, "droplet": hosts[i % len(hosts)], "veth": f"v{prefix}{i}", "pod": f"pod{i}"},
            namespace=ns,
        )


async def _ns(client: Client, name: str) -> None:
    try:
        await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    except ApiError as e:
        if e.code != 409:
            raise


async def test_provision_program_delete(api: ApiServerProcess, tmp_path: Path) -> None:
    hollow = Hollow(tmp_path / "h", ["d1", "d2", "d3"])
    op = operator(api, tmp_path / "op.log")
    client = api.client()
    try:
        await _ns(client, "n1")
        await droplets(client, hollow)
        await make(client, "VPC", "v1", {"cidr": "10.1.0.0/16"})
        await make(client, "Subnet", "s1", {"vpc": "v1", "cidr": "10.1.1.0/24"})
        vpc = await phase(client, "vpcs", "v1")
        sub = await phase(client, "subnets", "s1")
        vni = vpc["status"]["vni"]
        assert 1 <= vni < 1 << 24 and sub["status"]["vni"] == vni
        assert sub["status"]["gateway"] == "10.1.1.1" and len(sub["status"]["bouncers"]) == 1
        bouncer = sub["status"]["bouncers"][0]
        await _endpoints(client, "n1", "s1", ["d1", "d2", "d3"], 6)
        eps = [await phase(client, "endpoints", f"ep{i}", namespace="n1") for i in range(6)]
        ips = [e["status"]["ip"] for e in eps]
        assert len(set(ips)) == 6 and not {"10.1.1.0", "10.1.1.1", "10.1.1.255"} & set(ips)
        for e in eps:
            host = e["spec"]["droplet"]
            assert e["status"]["programmed"] == sorted({host, bouncer})
            assert e["status"]["mac"].startswith("0a:58:")
        # the host holds its own endpoints (local, with the veth) and agents; others do not
        for d in ("d1", "d2", "d3"):
            local = {o["ip"] for o in hollow.objects(d, "endpoints") if o.get("veth")}
            mine = {e["status"]["ip"] for e in eps if e["spec"]["droplet"] == d}
            assert local == mine
            assert {a["veth"] for a in hollow.objects(d, "agents")} == {
                e["spec"]["veth"] for e in eps if e["spec"]["droplet"] == d
            }
        remote_on_bouncer = {
            o["ip"]
            for o in hollow.objects(bouncer, "endpoints")
            if not o.get("veth") and not o.get("gateway")
        }
        assert remote_on_bouncer == {e["status"]["ip"] for e in eps if e["spec"]["droplet"] != bouncer}
        non_bouncers = [d for d in ("d1", "d2", "d3") if d != bouncer]
        for d in non_bouncers:
            assert not [o for o in hollow.objects(d, "endpoints") if not o.get("veth")]  # no remote entries
        # Bouncer/Divider records
        bs = await client.list("bouncers")
        assert [b["spec"]["droplet"] for b in bs["items"] if b["spec"]["subnet"] == "s1"] == [bouncer]
        # delete: gone from every droplet that had it, IP released
        gone = eps[0]
        await client.delete("endpoints.mizar.centaurus.io", "ep0", "n1")

        def removed() -> bool:
            return all(
                gone["status"]["ip"] not in {o["ip"] for o in hollow.objects(d, "endpoints")}
                for d in ("d1", "d2", "d3")
            )

        await eventually(removed, 10, 0.05, "ep0 removed everywhere")
        cms = await client.list(
            "configmaps", "kube-system", "system", label_selector="network.centaurus.io/allocation=ip"
        )
        held = {c["data"]["value"] for c in cms["items"]}
        assert gone["status"]["ip"] not in held and set(ips[1:]) <= held
    finally:
        await client.close()
        op.stop()
        hollow.stop()
        assert "Traceback" not in op.log(), op.log()[-4000:]
