"""The network operator against a real API server and hollow transit daemons (which count RPCs):
VPC/Subnet/Endpoint provisioning, what is programmed where, delete, RPCs per endpoint that do
not depend on the number of droplets, a daemon that restarts empty, an operator restart that
re-programs nothing, validation (collisions: test_admission.py)."""

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


async def _rpcs_for_endpoints(api: ApiServerProcess, tmp: Path, n_droplets: int) -> tuple[int, int, int]:
    """Mutating RPCs for 8 endpoints (created one by one) on two fixed non-bouncer droplets."""
    names = [f"d{i}" for i in range(n_droplets)]
    hollow = Hollow(tmp / f"h{n_droplets}", names)
    op = operator(api, tmp / f"op{n_droplets}.log")
    client = api.client()
    try:
        await _ns(client, "n1")
        await droplets(client, hollow)
        await make(client, "VPC", "v", {"cidr": "10.2.0.0/16"})
        await make(client, "Subnet", "s", {"vpc": "v", "cidr": "10.2.0.0/24"})
        await phase(client, "vpcs", "v")
        sub = await phase(client, "subnets", "s")
        hosts = [d for d in names if d not in sub["status"]["bouncers"]][:2]
        await eventually(
            lambda: all(hollow.client(d).status()["objects"]["substrates"] == n_droplets - 1 for d in names),
            20,
            0.1,
            "substrates everywhere",
        )
        before = hollow.mutations()
        touched_before = {
            d: sum(v for k, v in hollow.rpcs(d).items() if not k.startswith("GET")) for d in names
        }
        for i in range(8):
            await make(
                client,
                "Endpoint",
                f"e{i}",
                {"subnet": "s", "droplet": hosts[i % 2], "veth": f"ve{i}"},
                namespace="n1",
            )
            await phase(client, "endpoints", f"e{i}", namespace="n1")
        touched = [
            d
            for d in names
            if sum(v for k, v in hollow.rpcs(d).items() if not k.startswith("GET")) != touched_before[d]
        ]
        return hollow.mutations() - before, len(touched), len(sub["status"]["bouncers"])
    finally:
        await client.close()
        op.stop()
        hollow.stop()


async def test_rpcs_per_endpoint_do_not_grow_with_droplets(tmp_path: Path) -> None:
    got = {}
    for n in (3, 12):
        a = ApiServerProcess(tmp_path / f"api{n}").start()
        try:
            got[n] = await _rpcs_for_endpoints(a, tmp_path, n)
        finally:
            a.stop()
    (small, touched_small, _), (large, touched_large, _) = got[3], got[12]
    assert small == large, got  # the same RPCs for the same endpoints, 3 or 12 droplets
    assert touched_small == touched_large == 3, got  # two hosts and the bouncer, never every droplet
    assert small <= 8 * 4, (
        got
    )  # per endpoint: endpoint+agent on its host, endpoint on the bouncer (+nets once per host)


async def test_restarted_empty_daemon_resynced_and_operator_restart_reprograms_nothing(
    api: ApiServerProcess, tmp_path: Path
) -> None:
    hollow = Hollow(tmp_path / "h", ["d1", "d2", "d3"])
    op = operator(api, tmp_path / "op.log")
    client = api.client()
    try:
        await _ns(client, "n1")
        await droplets(client, hollow)
        await make(client, "VPC", "v", {"cidr": "10.3.0.0/16"})
        await make(client, "Subnet", "s", {"vpc": "v", "cidr": "10.3.0.0/24"})
        await _endpoints(client, "n1", "s", ["d1", "d2", "d3"], 6)
        for i in range(6):
            await phase(client, "endpoints", f"ep{i}", namespace="n1")
        snapshot = {
            d: {
                k: sorted(map(str, hollow.objects(d, k)))
                for k in ("substrates", "vpcs", "nets", "endpoints", "agents")
            }
            for d in ("d1", "d2", "d3")
        }
        # d2 restarts empty: resynced in full
        hollow.wipe("d2")
        await eventually(
            lambda: {k: sorted(map(str, hollow.objects("d2", k))) for k in snapshot["d2"]} == snapshot["d2"],
            20,
            0.1,
            "d2 resynced",
        )
        # the operator restarts: nothing is re-programmed
        op.stop()
        before = hollow.mutations()
        op = operator(api, tmp_path / "op2.log")
        await eventually(lambda: "netoperator running" in op.log(), 20, 0.1, "operator running")
        await eventually(
            lambda: all(
                sum(v for k, v in hollow.rpcs(d).items() if k.startswith("GET ")) >= 6
                for d in ("d1", "d2", "d3")
            ),
            20,
            0.1,
            "daemons listed",
        )
        import asyncio

        await asyncio.sleep(1.5)
        assert hollow.mutations() == before
        # and it still works: a new endpoint is programmed
        await make(
            client, "Endpoint", "late", {"subnet": "s", "droplet": "d1", "veth": "vlate"}, namespace="n1"
        )
        e = await phase(client, "endpoints", "late", namespace="n1")
        assert e["status"]["ip"] in {o["ip"] for o in hollow.objects("d1", "endpoints")}
    finally:
        await client.close()
        op.stop()
        hollow.stop()
        assert "Traceback" not in op.log(), op.log()[-4000:]


async def test_validation(api: ApiServerProcess, tmp_path: Path) -> None:
    hollow = Hollow(tmp_path / "h", ["d1"])
    op = operator(api, tmp_path / "op.log")
    client = api.client()
    try:
        await _ns(client, "n1")
        await droplets(client, hollow)
        for spec, field in (
            ({"cidr": "10.0.0.1/16"}, "spec.cidr"),
            ({"cidr": "10.9.0.0/16", "vni": 1 << 24}, "spec.vni"),
            ({"cidr": "10.9.0.0/16", "dividers": 0}, "spec.dividers"),
        ):
            with pytest.raises(ApiError) as ei:
                await make(client, "VPC", "bad", spec)
            assert ei.value.code == 422 and field in str(ei.value)
        await make(client, "VPC", "v", {"cidr": "10.4.0.0/16", "vni": 4242})
        assert (await phase(client, "vpcs", "v"))["status"]["vni"] == 4242
    finally:
        await client.close()
        op.stop()
        hollow.stop()
