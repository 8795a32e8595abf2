"""Functional tests on a five-host test bed (agent.testbed): real namespaces, real transit
daemons, real traffic.

Topology (VPC 100 and VPC 200 both use 10.0.0.0/16):
    h1: a 10.0.1.5, c 10.0.1.7 (VPC 100); y 10.0.1.6 (VPC 200)
    h2: bouncer of 10.0.1.0/24 (both VPCs)
    h3: bouncer of 10.0.2.0/24; b 10.0.1.6 (VPC 100); x 10.0.1.5 (VPC 200)
    h4: divider of VPC 100 and VPC 200
    h5: d 10.0.2.8 (VPC 100); z 10.0.1.9 (VPC 200)
So a -> b goes through bouncer h2, a -> d through bouncer h2, divider h4 and bouncer h3; each
test starts from empty learned paths and neighbour caches and asserts on the counters of the
hosts it expects on the path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dataplane.conftest import need_dataplane, need_tools

HERE = Path(__file__).parent


def nz(c: dict[str, dict[str, int]], prog: str = "transit_xdp") -> dict[str, int]:
    return {k: v for k, v in c[prog].items() if v}


@pytest.fixture(scope="module")
def tb() -> Iterator[Any]:
    need_dataplane()
    need_tools("ip", "ping", "ethtool", "tcpdump")
    from agent.testbed.dataplane import Testbed

    bed = Testbed(mode=os.environ.get("CENTAURUS_XDP_MODE", "auto"))
    try:
        h1, h2, h3, h4, h5 = bed.add_hosts(["h1", "h2", "h3", "h4", "h5"])
        for vni in (100, 200):
            bed.add_vpc(vni, "10.0.0.0/16", dividers=[h4])
            bed.add_subnet(vni, "10.0.1.0/24", bouncers=[h2])
            bed.add_subnet(vni, "10.0.2.0/24", bouncers=[h3])
        bed.add_endpoint("a", h1, 100, "10.0.1.5")
        bed.add_endpoint("c", h1, 100, "10.0.1.7")
        bed.add_endpoint("b", h3, 100, "10.0.1.6")
        bed.add_endpoint("d", h5, 100, "10.0.2.8")
        bed.add_endpoint("y", h1, 200, "10.0.1.6")
        bed.add_endpoint("x", h3, 200, "10.0.1.5")
        bed.add_endpoint("z", h5, 200, "10.0.1.9")
        yield bed
    finally:
        bed.close()


def fresh(tb: Any) -> None:
    """Forget learned paths, neighbours and counters everywhere."""
    for h in tb.hosts.values():
        h.client.flush_learned()
        h.client.reset_counters()
    for ep in tb.endpoints.values():
        tb.sh(ep, "ip", "neigh", "flush", "all", check=False)


def counters(tb: Any) -> dict[str, dict[str, dict[str, int]]]:
    return {n: h.client.counters() for n, h in tb.hosts.items()}


def echo(tb: Any, client: Any, server: Any, proto: str, nbytes: int, port: int = 7000) -> str:
    srv = tb.popen(
        server,
        sys.executable,
        str(HERE / "echo_server.py"),
        server.name,
        str(port),
        "20",
        stdout=subprocess.PIPE,
    )
    try:
        assert srv.stdout is not None and srv.stdout.readline().strip() == "ready"
        cp = tb.sh(
            client,
            sys.executable,
            str(HERE / "echo_client.py"),
            proto,
            server.ip,
            str(port),
            str(nbytes),
            check=False,
            timeout=30,
        )
        assert cp.returncode == 0, f"{proto} echo {client.name}->{server.name} failed: {cp.stderr.strip()}"
        return cp.stdout.strip()
    finally:
        srv.kill()
        srv.wait(5)


def test_ping_same_subnet_across_hosts_via_bouncer_then_direct(tb: Any) -> None:
    a, b = tb.endpoints["a"], tb.endpoints["b"]
    assert tb.ping(a, b.ip)  # warms the neighbour caches (ARP answered by bouncer h2)
    for h in tb.hosts.values():
        h.client.flush_learned()
        h.client.reset_counters()
    assert tb.ping(a, b.ip)  # no learned path now: the echo request goes via the bouncer
    c1 = counters(tb)
    assert nz(c1["h1"], "transit_agent").get("redirect_bouncer", 0) >= 1
    assert nz(c1["h2"])["tx_bounce"] >= 1
    assert nz(c1["h3"])["redirect_decap"] >= 1
    bounced = c1["h2"]["transit_xdp"]["tx_bounce"]
    # After the first exchange both ends know each other's host: the bouncer sees nothing more.
    assert tb.ping(a, b.ip, count=5, wait=1)
    assert tb.ping(b, a.ip, count=3, wait=1)
    c2 = counters(tb)
    assert c2["h2"]["transit_xdp"]["tx_bounce"] == bounced
    assert c2["h1"]["transit_agent"]["redirect_learned"] >= 5
    assert c2["h3"]["transit_agent"]["redirect_learned"] >= 5


def test_arp_answered_by_bouncer(tb: Any) -> None:
    a, b = tb.endpoints["a"], tb.endpoints["b"]
    fresh(tb)
    assert tb.ping(a, b.ip)
    c = counters(tb)
    assert nz(c["h2"])["tx_arp_reply"] >= 1
    neigh = tb.sh(a, "ip", "neigh", "show", b.ip).stdout
    assert b.mac in neigh


def test_tcp_and_udp_across_hosts(tb: Any) -> None:
    a, b, d = tb.endpoints["a"], tb.endpoints["b"], tb.endpoints["d"]
    fresh(tb)
    assert echo(tb, a, b, "udp", 1000) == "b"
    assert echo(tb, a, b, "tcp", 300_000) == "b"
    assert echo(tb, b, a, "tcp", 100_000, port=7001) == "a"
    assert echo(tb, a, d, "udp", 1200) == "d"
    assert echo(tb, a, d, "tcp", 300_000, port=7002) == "d"


def test_cross_subnet_goes_through_divider(tb: Any) -> None:
    a, d = tb.endpoints["a"], tb.endpoints["d"]
    assert tb.ping(a, d.ip)  # neighbour cache for the gateway
    for h in tb.hosts.values():
        h.client.flush_learned()
        h.client.reset_counters()
    assert tb.ping(a, d.ip)
    c = counters(tb)
    assert nz(c["h2"]).get("tx_to_divider", 0) >= 1, c["h2"]
    assert nz(c["h4"]).get("tx_divide", 0) >= 1, c["h4"]
    assert nz(c["h3"]).get("tx_bounce", 0) >= 1, c["h3"]
    assert nz(c["h5"]).get("redirect_decap", 0) >= 1, c["h5"]
    # d learned a's host from the option that travelled all the way: the reply went direct.
    assert nz(c["h5"], "transit_agent").get("redirect_learned", 0) >= 1


def test_same_host_endpoints_delivered_locally(tb: Any) -> None:
    a, c = tb.endpoints["a"], tb.endpoints["c"]
    fresh(tb)
    assert tb.ping(a, c.ip, count=2, wait=1)
    k = counters(tb)
    assert nz(k["h1"], "transit_agent").get("redirect_local", 0) >= 4
    assert all(k[h]["transit_xdp"]["tx_bounce"] == 0 for h in k)


def test_vpcs_with_same_cidr_stay_isolated(tb: Any) -> None:
    a, x, y, z = (tb.endpoints[n] for n in "axyz")
    fresh(tb)
    assert echo(tb, a, tb.endpoints["b"], "udp", 100) == "b"  # 10.0.1.6 in VPC 100 is b
    assert echo(tb, x, y, "udp", 100) == "y"  # 10.0.1.6 in VPC 200 is y
    assert tb.ping(x, z.ip)
    assert not tb.ping(a, z.ip, wait=1)  # 10.0.1.9 exists only in VPC 200
    c = counters(tb)
    assert nz(c["h2"]).get("drop_unknown_ep", 0) + nz(c["h2"]).get("drop_arp_unknown", 0) >= 1


def test_deleting_endpoint_removes_reachability_everywhere(tb: Any) -> None:
    a, b = tb.endpoints["a"], tb.endpoints["b"]
    e = tb.add_endpoint("e", tb.hosts["h5"], 100, "10.0.1.20")
    try:
        assert tb.ping(a, e.ip) and tb.ping(b, e.ip)  # both have learned e's host by now
        tb.unprogram_endpoint(e)
        for h in tb.hosts.values():
            h.client.reset_counters()
        assert not tb.ping(a, e.ip, wait=1)
        assert not tb.ping(b, e.ip, wait=1)
        for h in tb.hosts.values():
            assert all(o["ip"] != e.ip or o["vni"] != 100 for o in h.client.list("endpoints"))
        c = counters(tb)
        drops = sum(v for h in c.values() for k, v in h["transit_xdp"].items() if k.startswith("drop"))
        assert drops >= 2
    finally:
        tb.delete_endpoint(e)


def test_transitd_restart_keeps_running_ping_alive(tb: Any) -> None:
    a, b = tb.endpoints["a"], tb.endpoints["b"]
    fresh(tb)
    before = {n: h.client.status() for n, h in tb.hosts.items()}
    eps_before = {n: h.client.list("endpoints") for n, h in tb.hosts.items()}
    ping = tb.popen(a, "ping", "-n", "-i", "0.05", "-c", "120", "-W", "1", b.ip, stdout=subprocess.PIPE)
    time.sleep(1.0)
    for n in ("h1", "h2", "h3"):
        tb.hosts[n].restart_transitd()
    out, _ = ping.communicate(timeout=30)
    assert " 0% packet loss" in out, out
    for n in ("h1", "h2", "h3"):
        st = tb.hosts[n].client.status()
        assert st["loaded"] and st["pid"] != before[n]["pid"]
        assert st["objects"] == before[n]["objects"] | {"learned": st["objects"]["learned"]}
        # the new daemon's programs replaced the old ones
        assert {x["prog_id"] for x in st["attachments"]} != {x["prog_id"] for x in before[n]["attachments"]}
        assert tb.hosts[n].client.list("endpoints") == eps_before[n]


def test_capture_decodes_as_geneve_with_vni(tb: Any, tmp_path: Path) -> None:
    need_tools("tshark")
    from ctl.transit.packets import read_pcap

    a, b = tb.endpoints["a"], tb.endpoints["b"]
    fresh(tb)
    pcap = tmp_path / "h1.pcap"
    cap = subprocess.Popen(
        ["tcpdump", "-U", "-q", "-i", tb.hosts["h1"].bridge_port, "-w", str(pcap), "udp", "port", "6081"],
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)
    try:
        assert tb.ping(a, b.ip, count=3, wait=1)
    finally:
        time.sleep(0.5)
        cap.terminate()
        cap.wait(5)
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-T", "fields", "-e", "geneve.vni", "-e", "geneve.proto_type", "-e", "ip.dst", "-e", "_ws.malformed", "-E", "separator=,"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split("\n")  # fmt: skip
    rows = [r for r in out if r]
    assert len(rows) >= 6
    for r in rows:
        vni, proto, *_rest = r.split(",")
        assert int(vni, 0) == 100 and int(proto, 0) == 0x6558, r
        assert not r.endswith(",1") and "malformed" not in r.lower()
    decoded = read_pcap(pcap)
    assert all(d["geneve"] and d["vni"] == 100 and d["outer"]["ip"]["chksum_ok"] for d in decoded)
    assert any(o["name"] == "centaurus.src_host" for d in decoded for o in d["options"])


# ---- RPC and CLI against the live test bed -----------------------------------------------------


def ctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "centaurusctl"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "ctl.cli.main"]
    cp = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60)
    if check:
        assert cp.returncode == 0, cp.stderr
    return cp


def test_rpc_rejects_bad_batches_without_half_applying(tb: Any) -> None:
    from ctl.transit.client import TransitError

    h2 = tb.hosts["h2"]
    before = h2.client.list("endpoints")
    good = {"vni": 100, "ip": "10.0.1.50", "mac": "0a:58:0a:00:01:32", "host": tb.hosts["h5"].ip}
    for bad, msg in (
        ({"vni": 100, "ip": "10.0.1.51", "mac": "zz", "host": tb.hosts["h5"].ip}, "not a MAC"),
        (
            {"vni": 100, "ip": "10.0.1.51", "mac": "0a:58:0a:00:01:33", "host": "192.0.2.99"},
            "no substrate entry",
        ),
        ({"vni": 0, "ip": "10.0.1.51", "mac": "0a:58:0a:00:01:33", "host": tb.hosts["h5"].ip}, "VNI"),
        ({"vni": 100, "ip": "10.0.1.51", "mac": "0a:58:0a:00:01:33", "veth": "nosuchveth"}, "no interface"),
    ):
        with pytest.raises(TransitError) as ei:
            h2.client.put("endpoints", [good, bad])
        assert msg in str(ei.value) and ei.value.code == 422
        assert "\n" not in str(ei.value)
    assert h2.client.list("endpoints") == before
    with pytest.raises(TransitError) as ei:
        h2.client.delete("substrates", tb.hosts["h1"].ip)  # still the host of endpoints
    assert ei.value.code == 409
    with pytest.raises(TransitError) as ei:
        h2.client.get("nets", "100/10.9.0.0/16")
    assert ei.value.code == 404


def test_transit_cli(tb: Any) -> None:
    base = ["transit", "--run-dir", str(tb.run_dir), "--host", "h2"]
    assert "transit_xdp" in ctl(*base, "status").stdout
    out = ctl(*base, "get", "ep").stdout
    assert "10.0.1.5" in out and "10.0.1.6" in out
    h5 = tb.hosts["h5"].ip
    ctl(
        *base,
        "update",
        "ep",
        "--vni",
        "100",
        "--ip",
        "10.0.1.60",
        "--mac",
        "0a:58:0a:00:01:3c",
        "--host-ip",
        h5,
    )
    got = json.loads(ctl(*base, "get", "ep", "100/10.0.1.60", "-o", "json").stdout)
    assert got["host"] == h5 and got["host_mac"] == tb.hosts["h5"].mac
    ctl(*base, "update", "net", "--json", json.dumps({"vni": 100, "cidr": "10.0.9.0/24", "bouncers": [h5]}))
    assert "10.0.9.0/24" in ctl(*base, "get", "net").stdout
    ctl(*base, "delete", "net", "100/10.0.9.0/24")
    ctl(*base, "delete", "ep", "100/10.0.1.60")
    bad = ctl(
        *base,
        "update",
        "ep",
        "--vni",
        "100",
        "--ip",
        "10.0.1.61",
        "--mac",
        "nope",
        "--host-ip",
        h5,
        check=False,
    )
    assert (
        bad.returncode == 1 and bad.stderr.startswith("error:") and len(bad.stderr.strip().splitlines()) == 1
    )
    missing = ctl(*base, "get", "ep", "100/10.0.1.61", check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr
    dump = ctl(*base, "dump").stdout
    for section in (
        "== config",
        "== substrate",
        "== vpcs",
        "== nets",
        "== endpoints",
        "== agent_md",
        "== ep_cache",
        "== counters",
    ):
        assert section in dump
    tb.ping(tb.endpoints["a"], tb.endpoints["b"].ip)
    stats = json.loads(ctl(*base, "stats", "-o", "json").stdout)
    assert set(stats) == {"transit_xdp", "transit_agent"} and "drop_ttl" in stats["transit_xdp"]
    nodaemon = ctl("transit", "--run-dir", str(tb.run_dir), "--host", "nope", "status", check=False)
    assert nodaemon.returncode == 1 and "not reachable" in nodaemon.stderr


def test_packet_cli_trace_craft_decode(tb: Any, tmp_path: Path) -> None:
    a, b = tb.endpoints["a"], tb.endpoints["b"]
    h1, h2 = tb.hosts["h1"], tb.hosts["h2"]
    fresh(tb)
    out = ctl(
        "packet",
        "trace",
        a.ip,
        b.ip,
        "--vni",
        "100",
        "--run-dir",
        str(tb.run_dir),
        "--ping",
        a.ns,
        "-o",
        "json",
    ).stdout
    t = json.loads(out)
    assert [(h["host"], h["role"]) for h in t["hops"]] == [("h1", "agent"), ("h2", "bouncer"), ("h3", "host")]
    seen_h2 = t["observed"]["h2"]
    assert seen_h2.get("transit_xdp.tx_bounce", 0) + seen_h2.get("transit_xdp.tx_arp_reply", 0) >= 1
    # ARP to the bouncer from h1's substrate interface: the answer comes back (seen on h1's bridge port).
    res = json.loads(
        ctl("packet", "craft", "--netns", h1.ns, "--itf", "sub0", "--vni", "100", "--src", a.ip, "--dst", b.ip, "--to", h2.ip,
            "--arp", "--sniff-itf", h1.bridge_port, "-o", "json").stdout
    )  # fmt: skip
    replies = [d for d in res["received"] if d["inner"].get("arp", {}).get("op") == "reply"]
    assert (
        replies
        and replies[0]["inner"]["arp"]["sha"] == b.mac
        and replies[0]["options"][0]["host_ip"] == tb.hosts["h3"].ip
    )
    pcap = tmp_path / "x.pcap"
    cap = subprocess.Popen(
        ["tcpdump", "-U", "-q", "-i", h1.bridge_port, "-c", "4", "-w", str(pcap), "udp", "port", "6081"],
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)
    tb.ping(a, b.ip, count=2, wait=1)
    cap.wait(10)
    dec = ctl("packet", "decode", str(pcap), "-o", "wide").stdout
    assert "vni 100" in dec and "centaurus.src_host" in dec and "ICMP 10.0.1.5 -> 10.0.1.6" in dec


def test_unload_and_load_again(tb: Any) -> None:
    h5 = tb.hosts["h5"]
    st = h5.client.unload()
    assert not st["loaded"] and all(a["mode"] is None for a in st["attachments"])
    st = h5.client.load("generic")
    assert st["loaded"] and {a["mode"] for a in st["attachments"]} == {"xdpgeneric"}
    st = h5.client.load(tb.mode)
    assert st["loaded"] and None not in {a["mode"] for a in st["attachments"]}
    assert tb.ping(tb.endpoints["a"], tb.endpoints["d"].ip)
