"""Packet tools behind ``centaurusctl packet``: craft/send, capture/decode, and trace.

* ``craft_and_send`` builds a Geneve packet (VNI, inner ICMP/UDP/ARP between two endpoint
  addresses, options) with scapy and sends it from a chosen host's namespace and interface
  to a bouncer; it captures what comes back where it can be seen (by default on the same
  interface; on a test bed pass the host's bridge port, which sees frames before XDP does).
* ``read_pcap`` / ``capture`` decode a pcap file or a live interface (via tcpdump, bounded
  by count and time) into outer/inner headers and named options (``geneve.decode``).
* ``trace`` predicts the hops of a flow from the transit daemons' maps (agent -> bouncer ->
  divider -> bouncer -> host, with the same flow hash as the programs) and, when asked to
  generate traffic, shows which counters rose on which host.

All of it runs as root and shells out only to ``ip netns exec`` and ``tcpdump``.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ctl.transit import flowhash
from ctl.transit import geneve as gnv
from ctl.transit.client import TransitClient, TransitError


class PacketError(Exception):
    pass


# ---- capture / decode ------------------------------------------------------------------------


def read_pcap(path: str | Path, limit: int = 10_000) -> list[dict[str, Any]]:
    from scapy.utils import PcapReader  # type: ignore[import-untyped]

    if not Path(path).exists():
        raise PacketError(f"no such pcap file: {path}")
    out = []
    try:
        with PcapReader(str(path)) as r:
            for i, p in enumerate(r):
                if i >= limit:
                    break
                d = gnv.decode(p)
                d["time"] = float(p.time)
                out.append(d)
    except Exception as e:  # scapy raises plain Scapy_Exception on garbage
        raise PacketError(f"cannot read {path}: {e}") from e
    return out


def _ns_prefix(netns: str | None) -> list[str]:
    return ["ip", "netns", "exec", netns] if netns else []


def capture(
    itf: str,
    *,
    netns: str | None = None,
    count: int = 20,
    seconds: float = 5.0,
    bpf_filter: str = "",
    on_start: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Capture up to ``count`` frames for at most ``seconds`` on ``itf`` and decode them."""
    if shutil.which("tcpdump") is None:
        raise PacketError("tcpdump is not installed")
    with tempfile.TemporaryDirectory() as td:
        pcap = Path(td) / "cap.pcap"
        cmd = [*_ns_prefix(netns), "tcpdump", "-U", "-q", "-i", itf, "-c", str(count), "-w", str(pcap)]
        if bpf_filter:
            cmd += bpf_filter.split()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 3
        while not pcap.exists() and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.05)
        if p.poll() is not None:
            raise PacketError(
                f"tcpdump on {itf}: {(p.stderr.read() if p.stderr else '').strip().splitlines()[-1:]}"
            )
        time.sleep(0.2)
        try:
            if on_start:
                on_start()
            p.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            p.terminate()
            p.wait(5)
        return read_pcap(pcap) if pcap.exists() and pcap.stat().st_size > 24 else []


# ---- craft -----------------------------------------------------------------------------------


def _mac_of(itf: str, netns: str | None) -> str:
    out = subprocess.run(
        [*_ns_prefix(netns), "cat", f"/sys/class/net/{itf}/address"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if out.returncode != 0:
        raise PacketError(f"no interface {itf}{' in ' + netns if netns else ''}")
    return out.stdout.strip()


def _ip_of(itf: str, netns: str | None) -> str:
    out = subprocess.run(
        [*_ns_prefix(netns), "ip", "-4", "-o", "addr", "show", "dev", itf],
        capture_output=True,
        text=True,
        timeout=10,
    )
    for line in out.stdout.splitlines():
        return line.split()[3].split("/")[0]
    raise PacketError(f"{itf} has no IPv4 address; pass --src-host")


def _neighbor_mac(ip: str, itf: str, netns: str | None) -> str:
    subprocess.run([*_ns_prefix(netns), "ping", "-c", "1", "-W", "1", ip], capture_output=True, timeout=10)
    out = subprocess.run(
        [*_ns_prefix(netns), "ip", "neigh", "show", ip, "dev", itf],
        capture_output=True,
        text=True,
        timeout=10,
    )
    parts = out.stdout.split()
    if "lladdr" in parts:
        return parts[parts.index("lladdr") + 1]
    raise PacketError(f"cannot resolve the MAC of {ip} on {itf}; pass --dst-mac")


def build(
    *,
    vni: int,
    inner_src: str,
    inner_dst: str,
    src_host: str,
    src_mac: str,
    dst_host: str,
    dst_mac: str,
    kind: str = "icmp",
    inner_src_mac: str | None = None,
    inner_dst_mac: str | None = None,
    options: list[Any] | None = None,
    ttl: int = 64,
    payload: bytes = b"centaurus-probe",
) -> Any:
    """A Geneve packet from ``src_host`` to ``dst_host`` carrying one inner frame."""
    from scapy.layers.inet import ICMP, IP, UDP  # type: ignore[import-untyped]
    from scapy.layers.l2 import ARP, Ether  # type: ignore[import-untyped]

    smac = inner_src_mac or "0a:58:" + ":".join(f"{int(x):02x}" for x in inner_src.split("."))
    if kind == "arp":
        inner = Ether(src=smac, dst="ff:ff:ff:ff:ff:ff") / ARP(
            op=1, hwsrc=smac, psrc=inner_src, pdst=inner_dst
        )
    else:
        dmac = inner_dst_mac or "0a:58:" + ":".join(f"{int(x):02x}" for x in inner_dst.split("."))
        l4 = ICMP(id=0xCE, seq=1) if kind == "icmp" else UDP(sport=40000, dport=7)
        inner = Ether(src=smac, dst=dmac) / IP(src=inner_src, dst=inner_dst) / l4 / payload
    opts = options if options is not None else [gnv.src_host_option(src_host, src_mac)]
    sport = flowhash.source_port(inner_src, inner_dst)
    return gnv.encap(
        inner,
        vni=vni,
        src_host=src_host,
        src_mac=src_mac,
        dst_host=dst_host,
        dst_mac=dst_mac,
        options=opts,
        ttl=ttl,
        sport=sport,
    )


def send_frames(frames: list[bytes], itf: str, netns: str | None) -> None:
    """Send raw frames out of ``itf`` (in ``netns``) with an AF_PACKET socket in a helper."""
    code = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n"
        f"s.bind(({itf!r},0))\n"
        "for h in sys.stdin.read().split():\n"
        "    s.send(bytes.fromhex(h))\n"
    )
    cp = subprocess.run(
        [*_ns_prefix(netns), sys.executable, "-c", code],
        input=" ".join(f.hex() for f in frames),
        capture_output=True,
        text=True,
        timeout=20,
    )
    if cp.returncode != 0:
        raise PacketError(
            f"send on {itf}: {cp.stderr.strip().splitlines()[-1:] if cp.stderr else cp.returncode}"
        )


def craft_and_send(
    *,
    netns: str | None,
    itf: str,
    vni: int,
    inner_src: str,
    inner_dst: str,
    dst_host: str,
    dst_mac: str | None = None,
    src_host: str | None = None,
    kind: str = "icmp",
    options: list[Any] | None = None,
    ttl: int = 64,
    count: int = 1,
    sniff_itf: str | None = None,
    sniff_netns: str | None = None,
    wait: float = 2.0,
) -> dict[str, Any]:
    """Send ``count`` crafted packets and return {"sent": [decoded], "received": [decoded]}."""
    src_mac = _mac_of(itf, netns)
    src_host = src_host or _ip_of(itf, netns)
    dst_mac = dst_mac or _neighbor_mac(dst_host, itf, netns)
    pkt = build(
        vni=vni,
        inner_src=inner_src,
        inner_dst=inner_dst,
        src_host=src_host,
        src_mac=src_mac,
        dst_host=dst_host,
        dst_mac=dst_mac,
        kind=kind,
        options=options,
        ttl=ttl,
    )
    frame = bytes(pkt)
    sniff_on = sniff_itf or itf
    sniff_ns = sniff_netns if sniff_itf else netns
    got = capture(
        sniff_on,
        netns=sniff_ns,
        count=count * 4,
        seconds=wait,
        bpf_filter=f"udp port {gnv.GENEVE_PORT} and src host {dst_host}",
        on_start=lambda: send_frames([frame] * count, itf, netns),
    )
    return {"sent": [gnv.decode(frame)] * count, "received": got}


# ---- trace -----------------------------------------------------------------------------------


def discover_hosts(run_dir: str | Path = "/run/centaurus/transitd") -> dict[str, TransitClient]:
    """Every transit daemon with a socket in ``run_dir`` (name = socket stem)."""
    d = Path(run_dir)
    return {p.stem: TransitClient(str(p), timeout=10) for p in sorted(d.glob("*.sock"))} if d.is_dir() else {}


def _lpm(nets: list[dict[str, Any]], vni: int, ip: str) -> dict[str, Any] | None:
    best = None
    for n in nets:
        net = ipaddress.IPv4Network(n["cidr"])
        if n["vni"] == vni and ipaddress.IPv4Address(ip) in net:
            if best is None or net.prefixlen > ipaddress.IPv4Network(best["cidr"]).prefixlen:
                best = n
    return best


def predict(
    hosts: dict[str, TransitClient], vni: int, src: str, dst: str, max_hops: int = 8
) -> list[dict[str, Any]]:
    """The hops (host, role, action) a packet src -> dst of ``vni`` takes, per the maps now."""
    dumps = {}
    for name, c in hosts.items():
        try:
            dumps[name] = c.dump()
        except TransitError as e:
            raise PacketError(f"{name}: {e}") from e
    by_ip = {d["config"]["ip"]: n for n, d in dumps.items()}
    src_host = next(
        (
            n
            for n, d in dumps.items()
            for e in d["endpoints"]
            if e["vni"] == vni and e["ip"] == src and e.get("local")
        ),
        None,
    )
    if src_host is None:
        raise PacketError(f"no host has endpoint {vni}/{src} as a local endpoint")
    hops: list[dict[str, Any]] = []
    d = dumps[src_host]
    me = d["config"]["ip"]

    def ep_of(dd: dict[str, Any]) -> dict[str, Any] | None:
        return next((e for e in dd["endpoints"] if e["vni"] == vni and e["ip"] == dst), None)

    ep = ep_of(d)
    learned = next(
        (
            x
            for x in d["ep_cache"]
            if x["vni"] == vni and x["ip"] == dst and x["age_s"] < d["config"]["learn_ttl_s"]
        ),
        None,
    )
    if ep and ep.get("local"):
        return [{"host": src_host, "role": "agent", "action": f"same host: redirect to {ep.get('veth')}"}]
    if ep and ep.get("host"):
        nxt, why = ep["host"], "programmed endpoint: direct to its host"
    elif learned:
        nxt, why = learned["host"], "learned path: direct to the endpoint's host"
    else:
        net = _lpm(d["nets"], vni, src)
        if not net:
            return [
                {"host": src_host, "role": "agent", "action": "drop: no subnet for the source (no_route)"}
            ]
        nxt, why = flowhash.pick(src, dst, net["bouncers"]), f"to bouncer of {net['cidr']} (hash of src,dst)"
        if nxt == me:
            vpc = next((v for v in d["vpcs"] if v["vni"] == vni), None)
            if not vpc or not vpc["dividers"]:
                return [
                    {"host": src_host, "role": "agent", "action": "drop: bouncer here, no divider (no_route)"}
                ]
            nxt, why = flowhash.pick(src, dst, vpc["dividers"]), "this host bounces the subnet: to a divider"
    hops.append({"host": src_host, "role": "agent", "action": f"encapsulate, {why} -> {by_ip.get(nxt, nxt)}"})
    cur: str = nxt
    for _ in range(max_hops):
        name = by_ip.get(cur)  # type: ignore[assignment]
        if name is None:
            hops.append(
                {"host": cur, "role": "?", "action": "no transit daemon known for this substrate address"}
            )
            break
        dd = dumps[name]
        ep = ep_of(dd)
        net = _lpm(dd["nets"], vni, dst)
        vpc = next((v for v in dd["vpcs"] if v["vni"] == vni), None)
        if ep and ep.get("local"):
            hops.append(
                {"host": name, "role": "host", "action": f"decapsulate, redirect to {ep.get('veth')}"}
            )
            break
        if ep and ep.get("host"):
            hops.append(
                {"host": name, "role": "bouncer", "action": f"bounce -> {by_ip.get(ep['host'], ep['host'])}"}
            )
            cur = ep["host"]
            continue
        if net and net.get("bouncer"):
            hops.append({"host": name, "role": "bouncer", "action": "drop: unknown endpoint in its subnet"})
            break
        if vpc and vpc.get("divider"):
            if not net:
                hops.append(
                    {"host": name, "role": "divider", "action": "drop: no subnet for the destination"}
                )
                break
            b = flowhash.pick(src, dst, net["bouncers"])
            hops.append(
                {"host": name, "role": "divider", "action": f"LPM {net['cidr']} -> bouncer {by_ip.get(b, b)}"}
            )
            cur = b
            continue
        if vpc and vpc["dividers"]:
            dv = flowhash.pick(src, dst, vpc["dividers"])
            hops.append(
                {
                    "host": name,
                    "role": "bouncer",
                    "action": f"not in its subnet -> divider {by_ip.get(dv, dv)}",
                }
            )
            cur = dv
            continue
        hops.append({"host": name, "role": "?", "action": "drop: no route"})
        break
    return hops


def counter_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for host, progs in after.items():
        for prog, cs in progs.items():
            for k, v in cs.items():
                dv = v - before.get(host, {}).get(prog, {}).get(k, 0)
                if dv:
                    out.setdefault(host, {})[f"{prog}.{k}"] = dv
    return out


def observe(hosts: dict[str, TransitClient], action: Callable[[], Any]) -> dict[str, dict[str, int]]:
    """Counter increments on every host while ``action`` runs."""
    before = {n: c.counters() for n, c in hosts.items()}
    action()
    return counter_delta(before, {n: c.counters() for n, c in hosts.items()})


def run_in_ns(netns: str, *cmd: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", netns, *cmd], capture_output=True, text=True, timeout=timeout
    )


def is_root() -> bool:
    return os.geteuid() == 0
