"""Validation of the transit daemon's objects (no kernel access here).

The RPC API speaks five kinds of JSON objects. Each ``parse_*`` function checks one request
object completely and returns it normalised, or raises ``Invalid`` with a one-line message;
the daemon validates every object of a request before it writes anything, so a bad request
is never half-applied.

    substrate  {"ip": "192.168.10.2", "mac": "02:00:00:00:0a:02"}           key: ip
    vpc        {"vni": 100, "dividers": ["192.168.10.3"]}                    key: vni
    net        {"vni": 100, "cidr": "10.0.1.0/24", "bouncers": ["..."]}      key: vni/cidr
    endpoint   {"vni": 100, "ip": "10.0.1.5", "mac": "..", "host": "192.168.10.2",
                "veth": "veth-ep1" (only on the endpoint's own host), "gateway": false}
                                                                              key: vni/ip
    agent      {"veth": "veth-ep1", "vni": 100, "ip": "10.0.1.5", "mac": ".."} key: veth
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

MAX_BOUNCERS = 8  # CEN_MAX_BOUNCERS in bpf/lib/maps.h
MAX_DIVIDERS = 8  # CEN_MAX_DIVIDERS
KINDS = ("substrates", "vpcs", "nets", "endpoints", "agents")
KIND_ALIASES = {
    "substrate": "substrates",
    "vpc": "vpcs",
    "net": "nets",
    "subnet": "nets",
    "ep": "endpoints",
    "endpoint": "endpoints",
    "agent": "agents",
    "agent-md": "agents",
    "agents-md": "agents",
}

_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_IFNAME = re.compile(r"^[^/\s]{1,15}$")


class Invalid(ValueError):
    """A request object is malformed; the message says which field and why."""


def kind_name(kind: str) -> str:
    k = KIND_ALIASES.get(kind, kind)
    if k not in KINDS:
        raise Invalid(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
    return k


def _obj(o: Any, kind: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(o, dict):
        raise Invalid(f"{kind}: expected a JSON object, got {type(o).__name__}")
    unknown = set(o) - allowed
    if unknown:
        raise Invalid(f"{kind}: unknown field(s) {', '.join(sorted(unknown))}")
    missing = required - set(o)
    if missing:
        raise Invalid(f"{kind}: missing field(s) {', '.join(sorted(missing))}")
    return o


def ipv4(v: Any, what: str) -> str:
    try:
        ip = ipaddress.IPv4Address(v)
    except (ValueError, TypeError) as e:
        raise Invalid(f"{what}: {v!r} is not an IPv4 address") from e
    if ip.is_unspecified or ip.is_multicast or int(ip) == 0xFFFFFFFF:
        raise Invalid(f"{what}: {v} is not a unicast address")
    return str(ip)


def mac(v: Any, what: str) -> str:
    if not isinstance(v, str) or not _MAC.match(v):
        raise Invalid(f"{what}: {v!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    if int(v.split(":")[0], 16) & 1:
        raise Invalid(f"{what}: {v} is a multicast MAC")
    return v.lower()


def vni(v: Any, what: str = "vni") -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 0xFFFFFF:
        raise Invalid(f"{what}: {v!r} is not a VNI (an integer 1..16777215)")
    return v


def cidr(v: Any, what: str = "cidr") -> str:
    try:
        net = ipaddress.IPv4Network(v, strict=True)
    except (ValueError, TypeError) as e:
        raise Invalid(f"{what}: {v!r} is not an IPv4 network (e.g. 10.0.1.0/24, host bits zero)") from e
    return str(net)


def ifname(v: Any, what: str = "veth") -> str:
    if not isinstance(v, str) or not _IFNAME.match(v):
        raise Invalid(f"{what}: {v!r} is not an interface name")
    return v


def _ip_list(v: Any, what: str, lo: int, hi: int) -> list[str]:
    if not isinstance(v, list) or not lo <= len(v) <= hi:
        raise Invalid(f"{what}: expected a list of {lo}..{hi} IPv4 addresses")
    out = [ipv4(x, what) for x in v]
    if len(set(out)) != len(out):
        raise Invalid(f"{what}: duplicate addresses")
    return out


def parse_substrate(o: Any) -> dict[str, Any]:
    o = _obj(o, "substrate", {"ip", "mac", "name"}, {"ip", "mac"})
    return {"ip": ipv4(o["ip"], "substrate.ip"), "mac": mac(o["mac"], "substrate.mac")}


def parse_vpc(o: Any) -> dict[str, Any]:
    o = _obj(o, "vpc", {"vni", "dividers", "cidr", "name"}, {"vni"})
    out: dict[str, Any] = {
        "vni": vni(o["vni"], "vpc.vni"),
        "dividers": _ip_list(o.get("dividers", []), "vpc.dividers", 0, MAX_DIVIDERS),
    }
    return out


def parse_net(o: Any) -> dict[str, Any]:
    o = _obj(o, "net", {"vni", "cidr", "bouncers", "name"}, {"vni", "cidr", "bouncers"})
    return {
        "vni": vni(o["vni"], "net.vni"),
        "cidr": cidr(o["cidr"], "net.cidr"),
        "bouncers": _ip_list(o["bouncers"], "net.bouncers", 1, MAX_BOUNCERS),
    }


def parse_endpoint(o: Any) -> dict[str, Any]:
    o = _obj(o, "endpoint", {"vni", "ip", "mac", "host", "veth", "gateway", "name"}, {"vni", "ip", "mac"})
    gateway = o.get("gateway", False)
    if not isinstance(gateway, bool):
        raise Invalid("endpoint.gateway: expected true or false")
    host = o.get("host")
    veth = o.get("veth")
    if gateway and (host or veth):
        raise Invalid("endpoint: a gateway entry has no host and no veth")
    if not gateway and host is None and veth is None:
        raise Invalid("endpoint: give its host (substrate IP) or, on its own host, its veth")
    return {
        "vni": vni(o["vni"], "endpoint.vni"),
        "ip": ipv4(o["ip"], "endpoint.ip"),
        "mac": mac(o["mac"], "endpoint.mac"),
        "host": ipv4(host, "endpoint.host") if host is not None else None,
        "veth": ifname(veth, "endpoint.veth") if veth is not None else None,
        "gateway": gateway,
    }


def parse_agent(o: Any) -> dict[str, Any]:
    o = _obj(o, "agent", {"veth", "vni", "ip", "mac", "name"}, {"veth", "vni", "ip", "mac"})
    return {
        "veth": ifname(o["veth"], "agent.veth"),
        "vni": vni(o["vni"], "agent.vni"),
        "ip": ipv4(o["ip"], "agent.ip"),
        "mac": mac(o["mac"], "agent.mac"),
    }


PARSERS = {
    "substrates": parse_substrate,
    "vpcs": parse_vpc,
    "nets": parse_net,
    "endpoints": parse_endpoint,
    "agents": parse_agent,
}


def parse_key(kind: str, key: str) -> Any:
    """Parse the key of an object as it appears in a URL path (see module docstring)."""
    kind = kind_name(kind)
    if kind == "substrates":
        return ipv4(key, "substrate key")
    if kind == "vpcs":
        try:
            return vni(int(key), "vpc key")
        except ValueError as e:
            raise Invalid(f"vpc key: {key!r} is not a VNI") from e
    if kind == "agents":
        return ifname(key, "agent key")
    parts = key.split("/", 1)
    if len(parts) != 2:
        raise Invalid(f"{kind} key: expected VNI/{'CIDR' if kind == 'nets' else 'IP'}, got {key!r}")
    try:
        v = vni(int(parts[0]), f"{kind} key")
    except ValueError as e:
        raise Invalid(f"{kind} key: {parts[0]!r} is not a VNI") from e
    if kind == "nets":
        return (v, cidr(parts[1], "net key"))
    return (v, ipv4(parts[1], "endpoint key"))


def object_key(kind: str, o: dict[str, Any]) -> str:
    """The URL key of a normalised object."""
    if kind == "substrates":
        return o["ip"]
    if kind == "vpcs":
        return str(o["vni"])
    if kind == "nets":
        return f"{o['vni']}/{o['cidr']}"
    if kind == "endpoints":
        return f"{o['vni']}/{o['ip']}"
    return o["veth"]


class NotFound(LookupError):
    """The addressed object does not exist."""


class Conflict(RuntimeError):
    """The request contradicts current state (e.g. deleting a substrate host still in use)."""
