"""End to end on 3 testbed hosts (network namespaces with real transit daemons): two tenants'
VPCs with the SAME CIDR are created through the API, the operator allocates and programs the
transit daemons, and endpoints ping within a tenant across hosts and never across tenants.

The test plays the node agent's part of the contract: it creates the endpoint's netns and veth
pair first (host side named in ``spec.veth``), creates the Endpoint, waits for Provisioned, then
gives the pod side the allocated IP/MAC and a default route via the subnet gateway.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ctl.client import ApiError, Client
from tests.cluster import ApiServerProcess
from tests.dataplane.conftest import need_dataplane, need_tools
from tests.network.conftest import add_testbed_droplets, make, operator, phase

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.bpf]

CIDR = "10.50.0.0/16"


def _plumb(tb: Any, name: str, host: Any) -> str:
    from agent.testbed import netns

    ns = f"{tb.prefix}-{name}"
    veth = netns.ifname_ok(f"v{tb.prefix}{name}"[:15])
    netns.add_netns(ns)
    tb._namespaces.append(ns)
    netns.add_veth("eth0", veth, a_ns=ns, b_ns=host.ns, mtu=tb.endpoint_mtu)
    netns.ip("link", "set", veth, "up", ns=host.ns)
    return veth


def _configure(tb: Any, name: str, st: dict[str, Any]) -> None:
    from agent.testbed import netns

    ns = f"{tb.prefix}-{name}"
    netns.ip("link", "set", "eth0", "address", st["mac"], ns=ns)
    netns.ip("addr", "add", f"{st['ip']}/{st['prefixLength']}", "dev", "eth0", ns=ns)
    netns.ip("link", "set", "eth0", "up", ns=ns)
    netns.ip("route", "add", "default", "via", st["gateway"], "dev", "eth0", ns=ns)
    netns.gro_on("eth0", ns)
    netns.tx_csum_off("eth0", ns)


def _ping(tb: Any, name: str, ip: str) -> bool:
    from agent.testbed import netns

    cp = netns.run(
        ["ping", "-n", "-q", "-c", "1", "-W", "2", ip], ns=f"{tb.prefix}-{name}", check=False, timeout=15
    )
    return cp.returncode == 0


async def _tenant(client: Client, t: str) -> None:
    for body, kw in (
        ({"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": t}}, {}),
        ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}, {"tenant": t}),
    ):
        try:
            await client.create(body, **kw)
        except ApiError as e:
            if e.code != 409:
                raise


async def test_two_tenants_same_cidr_on_three_hosts(api: ApiServerProcess, tmp_path: Path) -> None:
    need_dataplane()
    need_tools("ping", "ip")
    from agent.testbed.dataplane import Testbed

    client = api.client()
    with Testbed(mode="auto") as tb:
        hosts = tb.add_hosts(["h1", "h2", "h3"])
        op = operator(api, tmp_path / "op.log")
        try:
            await add_testbed_droplets(client, tb, hosts)
            layout = {"ta": ["h1", "h2"], "tb": ["h1", "h2", "h3"]}
            eps: dict[str, dict[str, Any]] = {}
            for t, on in layout.items():
                await _tenant(client, t)
                await make(client, "VPC", "v", {"cidr": CIDR}, tenant=t)
                await make(client, "Subnet", "s", {"vpc": "v", "cidr": "10.50.1.0/24"}, tenant=t)
                for i, hn in enumerate(on):
                    name = f"{t}{i}"
                    veth = _plumb(tb, name, tb.hosts[hn])
                    await make(
                        client,
                        "Endpoint",
                        name,
                        {"subnet": "s", "droplet": f"{tb.prefix}-{hn}", "veth": veth},
                        tenant=t,
                        namespace="default",
                    )
            vnis = set()
            for t, on in layout.items():
                vnis.add((await phase(client, "vpcs", "v", tenant=t))["status"]["vni"])
                for i in range(len(on)):
                    e = await phase(client, "endpoints", f"{t}{i}", tenant=t, namespace="default", timeout=60)
                    eps[f"{t}{i}"] = e["status"]
                    _configure(tb, f"{t}{i}", e["status"])
            assert len(vnis) == 2  # same CIDR, different VNIs
            a_ips = {eps[f"ta{i}"]["ip"] for i in range(2)}
            b_ips = {eps[f"tb{i}"]["ip"] for i in range(3)}
            assert a_ips < b_ips  # the same addresses in both tenants
            by_ip = {eps[n]["ip"]: n for n in eps if n.startswith("tb")}
            (only_b,) = b_ips - a_ips
            # within a tenant, across hosts
            assert _ping(tb, "ta0", eps["ta1"]["ip"]) and _ping(tb, "ta1", eps["ta0"]["ip"])
            assert _ping(tb, "tb0", eps["tb1"]["ip"]) and _ping(tb, "tb0", eps["tb2"]["ip"])
            assert _ping(tb, "tb2", eps["tb0"]["ip"])
            # never across: only_b exists only in tenant b
            assert not _ping(tb, "ta0", only_b) and not _ping(tb, "ta1", only_b)
            assert _ping(tb, by_ip[next(iter(a_ips))], only_b) or _ping(tb, "tb0", only_b)
            # take ta1 down: tenant a loses it, tenant b still reaches its own endpoint at that address
            from agent.testbed import netns

            netns.ip("link", "set", "eth0", "down", ns=f"{tb.prefix}-ta1")
            assert not _ping(tb, "ta0", eps["ta1"]["ip"])
            twin = by_ip[eps["ta1"]["ip"]]
            src = next(n for n in ("tb0", "tb1", "tb2") if n != twin)
            assert _ping(tb, src, eps["ta1"]["ip"])
            # an endpoint is written only to its host and its subnet's bouncer
            for t, on in layout.items():
                sub = (await client.get("subnets.mizar.centaurus.io", "s", tenant=t))["status"]
                for i, hn in enumerate(on):
                    e = await client.get("endpoints.mizar.centaurus.io", f"{t}{i}", "default", t)
                    assert e["status"]["programmed"] == sorted({f"{tb.prefix}-{hn}", *sub["bouncers"]})
        finally:
            await client.close()
            op.stop()
            assert "Traceback" not in op.log(), op.log()[-4000:]
