"""Data plane benchmark: the XDP Geneve path vs kernel VXLAN + bridge vs plain veth routing.

One run builds, on one substrate bridge (agent.testbed), three pairs of endpoints on two
"hosts" each, and measures the same figures for every path:

* ``xdp``    — Centaurus: transit_agent/transit_xdp, Geneve, direct path after learning
               (hosts h1/h2 with transitd, bouncer on h3; native XDP unless --xdp-mode).
* ``xdp+tc-agent`` — the same with the TC variant of the agent (transit_agent_tc), which
               encapsulates on the skb and keeps the endpoint's TSO/GSO, XDP in generic mode
               and transit_decap_tc decapsulating GSO packets whole (hosts h4/h5).
* ``xdp-generic`` (``--generic``) — the XDP programs in generic mode (hosts h6/h7).
* ``vxlan``  — what flannel-style overlays use: per host a Linux bridge with the endpoint's
               veth and a VXLAN device (UDP 4789) with static FDB entries to the other host.
* ``routed`` — the limit: no encapsulation, the endpoints' subnets routed between the two
               host namespaces over the same substrate.

Figures: TCP throughput (iperf3, one stream), UDP packets/s at 64-byte payload (iperf3
unlimited rate, received packets), round-trip latency (ping, 0.002 s interval), and CPU per
packet (system-wide busy CPU time from /proc/stat during a fixed-rate UDP run, divided by
the packets received). Endpoint MTU is 1400 on every path. Prints a Rich table, writes JSON
under benchmarks/results/, and compares XDP against VXLAN (the target: at least as good on
every figure). Needs root, bcc, iperf3. Not part of the test suite's pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.testbed import netns  # noqa: E402
from agent.testbed.dataplane import Testbed  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MTU = 1400  # endpoint MTU; --mtu changes it (substrate MTU = endpoint MTU + 100)


def sh(ns: str, *cmd: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    return netns.run(list(cmd), ns=ns, timeout=timeout, check=check)


def cpu_jiffies() -> tuple[int, int]:
    """(softirq, all busy) jiffies since boot, all CPUs."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (parts + [0] * 8)[:8]
    return softirq, user + nice + system + irq + softirq + steal


class Pair:
    """Two endpoint namespaces (client, server) and their addresses."""

    def __init__(self, name: str, client_ns: str, server_ns: str, server_ip: str) -> None:
        self.name, self.client_ns, self.server_ns, self.server_ip = name, client_ns, server_ns, server_ip


def plain_host(tb: Testbed, name: str) -> tuple[str, str]:
    """A host namespace on the test bed's substrate without a transit daemon: (ns, ip)."""
    ns = f"{tb.prefix}-{name}"
    netns.add_netns(ns)
    tb._namespaces.append(ns)
    port = netns.ifname_ok(f"{tb.prefix}{name}"[:15])
    netns.add_veth("sub0", port, a_ns=ns, mtu=tb.substrate_mtu)
    netns.ip("link", "set", port, "master", tb.bridge)
    netns.ip("link", "set", port, "up")
    ip = str(next(tb._addrs))
    netns.ip("addr", "add", f"{ip}/{tb.substrate.prefixlen}", "dev", "sub0", ns=ns)
    netns.ip("link", "set", "sub0", "up", ns=ns)
    return ns, ip


def endpoint_ns(tb: Testbed, name: str, host_ns: str, ip_cidr: str, gw: str | None) -> str:
    ns = f"{tb.prefix}-{name}"
    netns.add_netns(ns)
    tb._namespaces.append(ns)
    netns.add_veth("eth0", f"v{name}", a_ns=ns, b_ns=host_ns, mtu=MTU)
    netns.ip("addr", "add", ip_cidr, "dev", "eth0", ns=ns)
    netns.ip("link", "set", "eth0", "up", ns=ns)
    netns.ip("link", "set", f"v{name}", "up", ns=host_ns)
    if gw:
        netns.ip("route", "add", "default", "via", gw, ns=ns)
    return ns


def build_vxlan(tb: Testbed) -> Pair:
    (n1, ip1), (n2, ip2) = plain_host(tb, "x1"), plain_host(tb, "x2")
    for i, (ns, local, remote) in enumerate(((n1, ip1, ip2), (n2, ip2, ip1)), 1):
        netns.ip(
            "link",
            "add",
            "vx0",
            "type",
            "vxlan",
            "id",
            "42",
            "local",
            local,
            "dstport",
            "4789",
            "nolearning",
            ns=ns,
        )
        netns.ip("link", "add", "br0", "type", "bridge", ns=ns)
        netns.ip("link", "set", "vx0", "master", "br0", ns=ns)
        netns.ip("link", "set", "vx0", "mtu", str(MTU + 50), ns=ns)
        netns.ip("link", "set", "vx0", "up", ns=ns)
        netns.ip("link", "set", "br0", "up", ns=ns)
        netns.run(["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx0", "dst", remote], ns=ns)
        ep = endpoint_ns(tb, f"xe{i}", ns, f"10.42.0.{i}/24", None)
        netns.ip("link", "set", f"vxe{i}", "master", "br0", ns=ns)
        del ep
    return Pair("vxlan", f"{tb.prefix}-xe1", f"{tb.prefix}-xe2", "10.42.0.2")


def build_routed(tb: Testbed) -> Pair:
    (n1, ip1), (n2, ip2) = plain_host(tb, "r1"), plain_host(tb, "r2")
    for i, (ns, other) in enumerate(((n1, ip2), (n2, ip1)), 1):
        sh(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        endpoint_ns(tb, f"re{i}", ns, f"10.43.{i}.2/24", f"10.43.{i}.1")
        netns.ip("addr", "add", f"10.43.{i}.1/24", "dev", f"vre{i}", ns=ns)
        j = 3 - i
        netns.ip("route", "add", f"10.43.{j}.0/24", "via", other, ns=ns)
    return Pair("routed", f"{tb.prefix}-re1", f"{tb.prefix}-re2", "10.43.2.2")


def build_xdp(tb: Testbed, generic_too: bool) -> list[Pair]:
    """xdp (native) on h1/h2, xdp+tc-agent on h4/h5, optionally xdp-generic on h6/h7; bouncer h3."""
    names = ["h1", "h2", "h3", "h4", "h5"] + (["h6", "h7"] if generic_too else [])
    hosts = tb.add_hosts(names)
    h1, h2, h3, h4, h5 = hosts[:5]
    tb.add_vpc(100, "10.44.0.0/16", dividers=[h3])
    tb.add_subnet(100, "10.44.1.0/24", bouncers=[h3])
    a = tb.add_endpoint("xa", h1, 100, "10.44.1.5")
    b = tb.add_endpoint("xb", h2, 100, "10.44.1.6")
    pairs = [Pair("xdp", a.ns, b.ns, b.ip)]
    for h in (h4, h5):  # TC agent + generic XDP + TC GSO decap: GSO end to end
        h.client.load("generic", "tc")
        netns.run(["ethtool", "-K", h.bridge_port, "tx", "on"], check=False)
    c = tb.add_endpoint("xc", h4, 100, "10.44.1.7")
    d = tb.add_endpoint("xd", h5, 100, "10.44.1.8")
    for ep in (c, d):  # the TC agent keeps the endpoint's offloads
        netns.run(["ethtool", "-K", "eth0", "tx", "on"], ns=ep.ns, check=False)
    pairs.append(Pair("xdp+tc-agent", c.ns, d.ns, d.ip))
    if generic_too:
        h6, h7 = hosts[5:]
        for h in (h6, h7):
            h.client.load("generic")
        e = tb.add_endpoint("xe", h6, 100, "10.44.1.9")
        f = tb.add_endpoint("xf", h7, 100, "10.44.1.10")
        pairs.append(Pair("xdp-generic", e.ns, f.ns, f.ip))
    return pairs


def iperf(pair: Pair, args: list[str], seconds: float) -> dict[str, Any]:
    srv = subprocess.Popen(
        ["ip", "netns", "exec", pair.server_ns, "iperf3", "-s", "-1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.4)
        cp = sh(
            pair.client_ns,
            "iperf3",
            "-c",
            pair.server_ip,
            "-J",
            "-t",
            str(seconds),
            *args,
            timeout=seconds + 30,
            check=False,
        )
        out: dict[str, Any] = json.loads(cp.stdout) if cp.stdout.strip() else {"error": cp.stderr}
        if "error" in out:
            raise RuntimeError(f"iperf3 {pair.name}: {out['error']}")
        return out
    finally:
        srv.kill()
        srv.wait(5)


def tcp_gbps(pair: Pair, seconds: float) -> float:
    out = iperf(pair, [], seconds)
    return float(out["end"]["sum_received"]["bits_per_second"]) / 1e9


def udp_run(pair: Pair, seconds: float, rate: str) -> tuple[float, int, float, float]:
    """(received packets/s, received packets, softirq CPU s, process CPU s) for 64-byte UDP.

    Softirq time is where every one of these data paths runs (veth NAPI, bridge, VXLAN,
    XDP); it is system-wide, so other load on the machine adds to it (take the minimum of
    several runs). Process CPU is iperf3's own (client + server) as it reports it."""
    s0, _ = cpu_jiffies()
    out = iperf(pair, ["-u", "-l", "64", "-b", rate], seconds)
    s1, _ = cpu_jiffies()
    s = out["end"]["sum"]
    received = int(s["packets"]) - int(s.get("lost_packets", 0))
    cpu = out["end"].get("cpu_utilization_percent", {})
    proc_s = (float(cpu.get("host_total", 0)) + float(cpu.get("remote_total", 0))) / 100 * float(s["seconds"])
    return received / float(s["seconds"]), received, (s1 - s0) / os.sysconf("SC_CLK_TCK"), proc_s


def latency_us(pair: Pair, count: int) -> tuple[float, float]:
    cp = sh(
        pair.client_ns,
        "ping",
        "-n",
        "-q",
        "-i",
        "0.002",
        "-c",
        str(count),
        pair.server_ip,
        timeout=count * 0.01 + 20,
    )
    line = [x for x in cp.stdout.splitlines() if "min/avg/max" in x][0]
    mn, avg, mx, mdev = (float(x) for x in line.split("=")[1].split()[0].split("/"))
    return avg * 1000, mdev * 1000


def measure_once(pair: Pair, seconds: float, fixed_pps: int) -> dict[str, Any]:
    r: dict[str, Any] = {"path": pair.name}
    r["tcp_gbps"] = round(tcp_gbps(pair, seconds), 3)
    pps, _, _, _ = udp_run(pair, seconds, "0")
    r["udp_pps"] = round(pps)
    fpps, n, soft_s, proc_s = udp_run(pair, 2 * seconds, str(fixed_pps * 64 * 8))
    r["fixed_rate_pps"] = round(fpps)
    r["softirq_ns_per_pkt"] = round(soft_s * 1e9 / max(n, 1))
    r["iperf_cpu_ns_per_pkt"] = round(proc_s * 1e9 / max(n, 1))
    r["lat_avg_us"], r["lat_mdev_us"] = (round(x, 1) for x in latency_us(pair, 500))
    return r


BEST = {
    "tcp_gbps": max,
    "udp_pps": max,
    "fixed_rate_pps": max,
    "softirq_ns_per_pkt": min,
    "iperf_cpu_ns_per_pkt": min,
    "lat_avg_us": min,
    "lat_mdev_us": min,
}


def best_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"path": runs[0]["path"], "runs": len(runs)}
    for k, f in BEST.items():
        out[k] = f(r[k] for r in runs)
    return out


def program_cost(repeat: int = 200_000) -> dict[str, float]:
    """ns per run of each main program path, by BPF_PROG_TEST_RUN (no namespaces involved)."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    from agent.transit.loader import compile_programs, remove_pins, test_run
    from agent.transit.maps import TransitMaps
    from ctl.transit import geneve as gnv

    host = f"bench-{os.getpid()}"
    progs = compile_programs(host)
    try:
        m = TransitMaps(progs)
        me, peer = ("192.168.10.1", "02:00:00:00:0a:01"), ("192.168.10.2", "02:00:00:00:0a:02")
        m.set_config(me[0], me[1], 1, 30.0)
        m.put("substrates", {"ip": peer[0], "mac": peer[1]})
        m.put(
            "agents", {"veth": "lo", "ifindex": 1, "vni": 100, "ip": "10.0.1.5", "mac": "0a:58:0a:00:01:05"}
        )
        m.put("nets", {"vni": 100, "cidr": "10.0.1.0/24", "bouncers": [peer[0]]})
        local = {
            "vni": 100,
            "ip": "10.0.1.5",
            "mac": "0a:58:0a:00:01:05",
            "host": me[0],
            "host_mac": me[1],
            "ifindex": 1,
            "gateway": False,
        }
        remote = {
            "vni": 100,
            "ip": "10.0.1.9",
            "mac": "0a:58:0a:00:01:09",
            "host": peer[0],
            "host_mac": peer[1],
            "gateway": False,
        }
        m.put("endpoints", local)
        m.put("endpoints", remote)
        inner = (
            Ether(src="0a:58:0a:00:01:05", dst="0a:58:0a:00:01:06")
            / IP(src="10.0.1.5", dst="10.0.1.6")
            / UDP()
            / (b"x" * 18)
        )
        to_local = gnv.encap(
            inner.copy(), vni=100, src_host=peer[0], src_mac=peer[1], dst_host=me[0], dst_mac=me[1]
        )
        to_local[IP].src, to_local[IP].dst = peer[0], me[0]
        back = (
            Ether(src="0a:58:0a:00:01:06", dst="0a:58:0a:00:01:05")
            / IP(src="10.0.1.6", dst="10.0.1.5")
            / UDP()
            / (b"x" * 18)
        )
        decap = gnv.encap(back, vni=100, src_host=peer[0], src_mac=peer[1], dst_host=me[0], dst_mac=me[1])
        fwd = (
            Ether(src="0a:58:0a:00:01:06", dst="0a:58:0a:00:01:09")
            / IP(src="10.0.1.6", dst="10.0.1.9")
            / UDP()
            / (b"x" * 18)
        )
        bounce = gnv.encap(fwd, vni=100, src_host=peer[0], src_mac=peer[1], dst_host=me[0], dst_mac=me[1])
        out = {}
        for name, fd, pkt in (
            ("agent_encap_to_bouncer", progs.agent_fd, inner),
            ("xdp_decap_to_endpoint", progs.xdp_fd, decap),
            ("xdp_bounce", progs.xdp_fd, bounce),
            ("xdp_pass_non_geneve", progs.xdp_fd, Ether() / IP() / UDP(dport=53)),
        ):
            r = test_run(fd, bytes(pkt), ingress_ifindex=1, repeat=repeat)
            out[name] = float(r.duration_ns)
        return out
    finally:
        remove_pins(host)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="duration of each iperf3 run")
    ap.add_argument("--fixed-pps", type=int, default=20000, help="rate of the CPU-per-packet run")
    ap.add_argument("--xdp-mode", default="auto", choices=["auto", "native", "generic"])
    ap.add_argument(
        "--mtu",
        type=int,
        default=1400,
        help="endpoint MTU on every path (native XDP on veth allows up to ~3400)",
    )
    ap.add_argument("--repeat", type=int, default=3, help="runs per path (interleaved); best figure kept")
    ap.add_argument("--generic", action="store_true", help="add an xdp-generic pair")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("dataplane_bench needs root", file=sys.stderr)
        return 1
    global MTU
    MTU = args.mtu
    rows = []
    with Testbed(mode=args.xdp_mode, endpoint_mtu=MTU, substrate_mtu=MTU + 100) as tb:
        pairs = [*build_xdp(tb, args.generic), build_vxlan(tb), build_routed(tb)]
        for p in pairs:
            ok = (
                sh(
                    p.client_ns, "ping", "-c", "3", "-i", "0.2", "-W", "1", p.server_ip, check=False
                ).returncode
                == 0
            )
            if not ok:
                raise SystemExit(f"{p.name}: no connectivity")
        runs: dict[str, list[dict[str, Any]]] = {p.name: [] for p in pairs}
        for i in range(args.repeat):
            for p in pairs[i % len(pairs) :] + pairs[: i % len(pairs)]:
                print(f"run {i + 1}/{args.repeat}: {p.name} ...", flush=True)
                runs[p.name].append(measure_once(p, args.seconds, args.fixed_pps))
        rows = [best_of(runs[p.name]) for p in pairs]
        st = tb.hosts["h1"].client.status()
        xdp_modes = sorted({a["mode"] for a in st["attachments"]})
    prog_ns = program_cost()
    by = {r["path"]: r for r in rows}

    def vs_vxlan(name: str) -> dict[str, bool]:
        x, v = by[name], by["vxlan"]
        return {
            "tcp_gbps": x["tcp_gbps"] >= v["tcp_gbps"],
            "udp_pps": x["udp_pps"] >= v["udp_pps"],
            "lat_avg_us": x["lat_avg_us"] <= v["lat_avg_us"],
            "iperf_cpu_ns_per_pkt": x["iperf_cpu_ns_per_pkt"] <= v["iperf_cpu_ns_per_pkt"],
        }

    better = {name: vs_vxlan(name) for name in by if name.startswith("xdp")}
    result = {
        "bench": "dataplane",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kernel": os.uname().release,
        "cpus": os.cpu_count(),
        "xdp_attach_modes": xdp_modes,
        "endpoint_mtu": MTU,
        "seconds": args.seconds,
        "fixed_pps": args.fixed_pps,
        "repeat": args.repeat,
        "rows": rows,
        "all_runs": runs,
        "xdp_at_least_vxlan": better,
        "program_ns_per_packet": prog_ns,
    }
    from rich.console import Console
    from rich.table import Table

    t = Table(
        title=f"Data plane (kernel {result['kernel']}, {result['cpus']} CPUs, XDP {','.join(xdp_modes)})"
    )
    for c in (
        "path",
        "TCP Gbit/s",
        "UDP 64B pps",
        "RTT avg µs",
        "RTT mdev µs",
        f"softirq ns/pkt @{args.fixed_pps}pps",
        "iperf3 CPU ns/pkt",
    ):
        t.add_column(c, justify="right")
    for r in rows:
        t.add_row(
            r["path"], f"{r['tcp_gbps']:.2f}", f"{r['udp_pps']:,}", f"{r['lat_avg_us']:.1f}", f"{r['lat_mdev_us']:.1f}",
            f"{r['softirq_ns_per_pkt']:,}", f"{r['iperf_cpu_ns_per_pkt']:,}",
        )  # fmt: skip
    Console().print(t)
    Console().print("BPF_PROG_TEST_RUN ns/packet: " + ", ".join(f"{k} {v:.0f}" for k, v in prog_ns.items()))
    for name, b in better.items():
        Console().print(f"{name} >= vxlan: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in b.items()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"dataplane_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
