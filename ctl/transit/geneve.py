"""Build and decode Centaurus Geneve packets (scapy), per the layout in bpf/README.md.

Outer Ethernet/IPv4/UDP(6081)/Geneve(VNI, protocol 0x6558) followed by options in network
byte order; the Centaurus option class is ``OPT_CLASS`` (0xFFF1) and option type
``OPT_SRC_HOST`` (1) carries the substrate IPv4 and MAC of the host of the inner source
endpoint (12 bytes: ip, mac, 2 reserved). ``decode`` names every option it knows and shows
the others raw, so the packet tools and tests read captures the same way tshark does.
"""

from __future__ import annotations

import socket
from typing import Any

from scapy.contrib.geneve import GENEVE, GeneveOptions  # type: ignore[import-untyped]
from scapy.layers.inet import ICMP, IP, TCP, UDP  # type: ignore[import-untyped]
from scapy.layers.l2 import ARP, Ether  # type: ignore[import-untyped]
from scapy.packet import Packet, bind_layers  # type: ignore[import-untyped]

GENEVE_PORT = 6081
PROTO_ETH = 0x6558
OPT_CLASS = 0xFFF1
OPT_SRC_HOST = 0x01
OPT_CRITICAL = 0x80
OPTION_NAMES = {(OPT_CLASS, OPT_SRC_HOST): "centaurus.src_host"}
ENCAP_LEN = 66  # outer eth 14 + ip 20 + udp 8 + geneve 8 + src_host option 16

bind_layers(UDP, GENEVE, dport=GENEVE_PORT)


def mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def src_host_option(host_ip: str, host_mac: str) -> Any:
    """The Centaurus source-host option."""
    data = socket.inet_aton(host_ip) + mac_bytes(host_mac) + b"\x00\x00"
    return GeneveOptions(classid=OPT_CLASS, type=OPT_SRC_HOST, length=3, data=data)


def raw_option(classid: int, type_: int, data: bytes = b"") -> Any:
    """Any option (data padded to 4 bytes), e.g. an unknown critical one for tests."""
    data = data + b"\x00" * (-len(data) % 4)
    return GeneveOptions(classid=classid, type=type_, length=len(data) // 4, data=data)


def encap(
    inner: Packet,
    *,
    vni: int,
    src_host: str,
    src_mac: str,
    dst_host: str,
    dst_mac: str,
    options: list[Any] | None = None,
    ttl: int = 64,
    sport: int = 49152,
) -> Packet:
    """Wrap ``inner`` (an Ether frame) in outer Ethernet/IPv4/UDP/Geneve."""
    opts = [src_host_option(src_host, src_mac)] if options is None else options
    return (
        Ether(src=src_mac, dst=dst_mac)
        / IP(src=src_host, dst=dst_host, ttl=ttl, flags="DF")
        / UDP(sport=sport, dport=GENEVE_PORT, chksum=0)
        / GENEVE(vni=vni, proto=PROTO_ETH, options=opts)
        / inner
    )


def _inner(p: Packet) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if Ether in p:
        d["eth"] = {"src": p[Ether].src, "dst": p[Ether].dst, "type": hex(p[Ether].type)}
    if ARP in p:
        a = p[ARP]
        d["arp"] = {
            "op": {1: "request", 2: "reply"}.get(a.op, a.op),
            "sha": a.hwsrc,
            "spa": a.psrc,
            "tha": a.hwdst,
            "tpa": a.pdst,
        }
    if IP in p:
        ip = p[IP]
        d["ip"] = {"src": ip.src, "dst": ip.dst, "ttl": ip.ttl, "proto": ip.proto}
        if ICMP in p:
            d["icmp"] = {"type": p[ICMP].type, "code": p[ICMP].code, "id": p[ICMP].id, "seq": p[ICMP].seq}
        elif TCP in p:
            d["tcp"] = {"sport": p[TCP].sport, "dport": p[TCP].dport, "flags": str(p[TCP].flags)}
        elif UDP in p:
            d["udp"] = {"sport": p[UDP].sport, "dport": p[UDP].dport}
    return d


def decode_option(o: Any) -> dict[str, Any]:
    name = OPTION_NAMES.get((o.classid, o.type & 0x7F))
    d: dict[str, Any] = {
        "class": f"0x{o.classid:04x}",
        "type": f"0x{o.type:02x}",
        "critical": bool(o.type & OPT_CRITICAL),
        "name": name or "unknown",
    }
    data = bytes(o.data)
    if name == "centaurus.src_host" and len(data) >= 10:
        d["host_ip"] = socket.inet_ntoa(data[:4])
        d["host_mac"] = ":".join(f"{x:02x}" for x in data[4:10])
    else:
        d["data"] = data.hex()
    return d


def decode(frame: bytes | Packet) -> dict[str, Any]:
    """Decode one Ethernet frame into outer headers, Geneve header/options and inner headers."""
    p = Ether(frame) if isinstance(frame, bytes) else frame
    if not (IP in p and UDP in p and p[UDP].dport == GENEVE_PORT and GENEVE in p):
        return {"geneve": False, "frame": _inner(p)}
    g = p[GENEVE]
    out = {
        "geneve": True,
        "outer": {
            "eth": {"src": p[Ether].src, "dst": p[Ether].dst},
            "ip": {"src": p[IP].src, "dst": p[IP].dst, "ttl": p[IP].ttl, "chksum_ok": _ip_csum_ok(p)},
            "udp": {"sport": p[UDP].sport, "dport": p[UDP].dport},
        },
        "vni": g.vni,
        "proto": hex(g.proto),
        "version": g.version,
        "oam": bool(g.oam),
        "options": [decode_option(o) for o in g.options],
        "inner": _inner(g.payload) if g.payload else {},
    }
    return out


def _ip_csum_ok(p: Packet) -> bool:
    raw = bytes(p[IP])[: p[IP].ihl * 4]
    s = sum(int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


def summary(d: dict[str, Any]) -> str:
    """One line for a decoded frame."""
    if not d.get("geneve"):
        f = d.get("frame", {})
        if "arp" in f:
            a = f["arp"]
            return f"ARP {a['op']} {a['spa']} -> {a['tpa']}"
        if "ip" in f:
            return f"IP {f['ip']['src']} -> {f['ip']['dst']} proto {f['ip']['proto']}"
        return "non-IP frame"
    o = d["outer"]
    opts = ",".join(x["name"] + (f"={x['host_ip']}" if "host_ip" in x else "") for x in d["options"]) or "-"
    inner = d["inner"]
    if "arp" in inner:
        what = f"ARP {inner['arp']['op']} {inner['arp']['spa']} -> {inner['arp']['tpa']}"
    elif "ip" in inner:
        proto = (
            "ICMP"
            if "icmp" in inner
            else "TCP"
            if "tcp" in inner
            else "UDP"
            if "udp" in inner
            else str(inner["ip"]["proto"])
        )
        what = f"{proto} {inner['ip']['src']} -> {inner['ip']['dst']}"
    else:
        what = "?"
    return f"Geneve {o['ip']['src']} -> {o['ip']['dst']} ttl {o['ip']['ttl']} vni {d['vni']} opts [{opts}] | {what}"
