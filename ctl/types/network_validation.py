"""Semantic validation and defaults of the network kinds (Network, VPC, Subnet, Endpoint,
Droplet, Bouncer, Divider; issue #18, DESIGN.md §7), and the address rules the API server's
admission and the network operator share.

The schema (:mod:`ctl.types.schema.network`) already checked every field's type; the rules
here are the ones a type cannot say: a CIDR is a well-formed IPv4 network written with its
network address (``10.0.1.0/24``, not ``10.0.1.7/24``), a hand-set VNI fits in 24 bits, the
``bouncers``/``dividers`` counts are at least 1 (and at most what the data plane holds),
an IP or MAC is well formed.

What needs other objects - a subnet inside its VPC and not overlapping a sibling, a
hand-set VNI or IP that another object already holds - is checked twice: first at admission
(:mod:`ctl.apiserver.network_admission`, from the API server's cache: 409 AlreadyExists for a
taken VNI/IP, 422 Invalid naming the field for a subnet outside its VPC or overlapping a
sibling, or an address the subnet reserves), then by the network operator (:mod:`ctl.network`)
against its persisted allocations, which is the only race-free place: what slips past
admission (two creates at once, a subnet created before its VPC) goes ``Failed`` with a reason
(``VNIInUse``, ``IPInUse``, ``SubnetOverlap``, ``OutsideVPC``) and an Event, and nothing is
allocated or programmed. Both read the allocation records named by :func:`vni_record` and
:func:`ip_record` and the reserved addresses of :func:`reserved`, defined here once.

The validators are registered with :func:`ctl.types.validation.validator` and
:func:`ctl.types.validation.defaulter`, so the API server runs them on every write.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ctl.types.kinds import SYSTEM_TENANT
from ctl.types.schema import Cause
from ctl.types.validation import defaulter, validator

MAX_VNI = (1 << 24) - 1
MAX_BOUNCERS = 8  # CEN_MAX_BOUNCERS in bpf/lib/maps.h
MAX_DIVIDERS = 8  # CEN_MAX_DIVIDERS
ENDPOINT_TYPES = ("simple", "gateway", "host")
NETWORK_TYPES = ("mizar",)
DEFAULT_NETWORK_CIDR = "10.0.0.0/16"
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")

# Allocation records (one ConfigMap per allocated VNI or IP) live in the system tenant's
# kube-system namespace; data: uid and owner (TENANT/NAMESPACE/NAME) of the holder, kind, value.
ALLOC_TENANT = SYSTEM_TENANT
ALLOC_NAMESPACE = "kube-system"
ALLOC_LABEL = "network.centaurus.io/allocation"


def vni_record(vni: int) -> str:
    """The allocation record's name of a VNI (cluster-wide)."""
    return f"vni-{vni}"


def ip_record(vni: int, ip: str) -> str:
    """The allocation record's name of an IP in the VPC of ``vni``."""
    return f"ip-{vni}-{ip.replace('.', '-')}"


def gateway_of(cidr: str) -> str:
    """The subnet's gateway: its first usable address."""
    return str(ipaddress.IPv4Network(cidr).network_address + 1)


def reserved(cidr: str, ip: str) -> str | None:
    """Why ``ip`` cannot be an endpoint's address in ``cidr`` (None if it can)."""
    n = ipaddress.IPv4Network(cidr)
    a = ipaddress.IPv4Address(ip)
    if a not in n:
        return f"{ip} is outside the subnet {cidr}"
    if a == n.network_address:
        return f"{ip} is the network address of {cidr}"
    if a == n.broadcast_address:
        return f"{ip} is the broadcast address of {cidr}"
    if str(a) == gateway_of(cidr):
        return f"{ip} is the gateway of {cidr}"
    return None


def cidr_error(v: Any) -> str | None:
    """Why ``v`` is not a usable IPv4 network (None if it is)."""
    if not isinstance(v, str):
        return "expected a CIDR such as 10.0.0.0/16"
    try:
        n = ipaddress.IPv4Network(v, strict=False)
    except ValueError as e:
        return f"not an IPv4 CIDR: {e}"
    if "/" not in v:
        return "give the prefix length (e.g. 10.0.0.0/16)"
    if str(n) != v:
        return f"host bits set: the network is {n}"
    if n.prefixlen > 29:
        return "prefix too long: a subnet needs room for a gateway and endpoints (at most /29)"
    return None


def ip_error(v: Any) -> str | None:
    try:
        ipaddress.IPv4Address(v)
    except ValueError:
        return "not an IPv4 address"
    return None


def mac_error(v: Any) -> str | None:
    if not isinstance(v, str) or not _MAC.match(v):
        return "not a MAC address (xx:xx:xx:xx:xx:xx)"
    if int(v[:2], 16) & 1:
        return "a multicast MAC cannot be an endpoint's address"
    return None


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    s = obj.get("spec")
    return s if isinstance(s, dict) else {}


def _count(spec: dict[str, Any], field: str, hi: int, causes: list[Cause]) -> None:
    v = spec.get(field)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        causes.append(Cause(f"spec.{field}", f"Invalid value: {v!r}: must be at least 1"))
    elif v > hi:
        causes.append(Cause(f"spec.{field}", f"Invalid value: {v}: at most {hi}"))


def _check(spec: dict[str, Any], field: str, fn: Any, causes: list[Cause], required: bool = False) -> None:
    v = spec.get(field)
    if v is None or v == "":
        if required:
            causes.append(Cause(f"spec.{field}", "Required value"))
        return
    err = fn(v)
    if err:
        causes.append(Cause(f"spec.{field}", f"Invalid value: {v!r}: {err}"))


def _name(spec: dict[str, Any], field: str, causes: list[Cause]) -> None:
    v = spec.get(field)
    if not isinstance(v, str) or not v:
        causes.append(Cause(f"spec.{field}", "Required value"))


@validator("Network")
def _network(obj: dict[str, Any], causes: list[Cause]) -> None:
    spec = _spec(obj)
    t = spec.get("type")
    if t not in NETWORK_TYPES:
        causes.append(Cause("spec.type", f"Unsupported value: {t!r}: supported values: mizar"))
    _check(spec, "cidr", cidr_error, causes)


@defaulter("Network")
def _default_network(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "mizar")


@validator("VPC")
def _vpc(obj: dict[str, Any], causes: list[Cause]) -> None:
    spec = _spec(obj)
    _check(spec, "cidr", cidr_error, causes, required=True)
    v = spec.get("vni")
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_VNI):
        causes.append(Cause("spec.vni", f"Invalid value: {v!r}: a VNI is 1..{MAX_VNI} (24 bits)"))
    _count(spec, "dividers", MAX_DIVIDERS, causes)


@defaulter("VPC")
def _default_vpc(obj: dict[str, Any]) -> None:
    obj.setdefault("spec", {}).setdefault("dividers", 1)


@validator("Subnet")
def _subnet(obj: dict[str, Any], causes: list[Cause]) -> None:
    spec = _spec(obj)
    _name(spec, "vpc", causes)
    _check(spec, "cidr", cidr_error, causes, required=True)
    _count(spec, "bouncers", MAX_BOUNCERS, causes)


@defaulter("Subnet")
def _default_subnet(obj: dict[str, Any]) -> None:
    obj.setdefault("spec", {}).setdefault("bouncers", 1)


@validator("Endpoint")
def _endpoint(obj: dict[str, Any], causes: list[Cause]) -> None:
    spec = _spec(obj)
    _name(spec, "subnet", causes)
    t = spec.get("type", "simple")
    if t not in ENDPOINT_TYPES:
        causes.append(
            Cause("spec.type", f"Unsupported value: {t!r}: supported values: {', '.join(ENDPOINT_TYPES)}")
        )
    _check(spec, "ip", ip_error, causes)
    _check(spec, "mac", mac_error, causes)
    veth = spec.get("veth")
    if isinstance(veth, str) and veth and (len(veth) > 15 or "/" in veth or " " in veth):
        causes.append(Cause("spec.veth", f"Invalid value: {veth!r}: not an interface name (1-15 characters)"))


@defaulter("Endpoint")
def _default_endpoint(obj: dict[str, Any]) -> None:
    obj.setdefault("spec", {}).setdefault("type", "simple")


@validator("Droplet")
def _droplet(obj: dict[str, Any], causes: list[Cause]) -> None:
    spec = _spec(obj)
    _check(spec, "ip", ip_error, causes, required=True)
    _check(spec, "mac", mac_error, causes, required=True)


@validator("Bouncer")
def _bouncer(obj: dict[str, Any], causes: list[Cause]) -> None:
    spec = _spec(obj)
    _name(spec, "subnet", causes)
    _name(spec, "droplet", causes)


@validator("Divider")
def _divider(obj: dict[str, Any], causes: list[Cause]) -> None:
    spec = _spec(obj)
    _name(spec, "vpc", causes)
    _name(spec, "droplet", causes)
