"""The network kinds as the operator reads them: kinds, field accessors, derived values.

Everything the operator decides is written to ``status`` (never ``spec``): a VPC's ``vni`` and
``dividers`` (droplet names), a Subnet's ``vni``, ``gateway``, ``prefixLength`` and ``bouncers``,
an Endpoint's ``ip``, ``mac``, ``vni``, ``gateway``, ``host`` and ``programmed`` (the droplets
that hold it), each with ``phase`` (Init -> Provisioned, or Failed with ``reason``) and
``observedGeneration``. ``spec`` holds what the user or the node agent asks for (a hand-set
VNI, IP or MAC is a request the allocators check).

MACs are derived, not stored in a separate allocator: ``0a:58`` followed by the four bytes of
the IP (locally administered, unicast), unique inside a VPC because the IP is; a hand-set
``spec.mac`` wins.
"""

from __future__ import annotations

from typing import Any

from ctl.types import kinds
from ctl.types.kinds import Kind
from ctl.types.network_validation import (  # noqa: F401 (re-exported: the operator's vocabulary)
    ALLOC_LABEL,
    ALLOC_NAMESPACE,
    ALLOC_TENANT,
    gateway_of,
    reserved,
)

Obj = dict[str, Any]
MIZAR = "mizar.centaurus.io/v1"
ARKTOS = "arktos.centaurus.io/v1"


def _kind(api_version: str, name: str) -> Kind:
    k = kinds.by_kind(api_version, name)
    assert k is not None, name
    return k


NETWORK = _kind(ARKTOS, "Network")
VPC = _kind(MIZAR, "VPC")
SUBNET = _kind(MIZAR, "Subnet")
ENDPOINT = _kind(MIZAR, "Endpoint")
DROPLET = _kind(MIZAR, "Droplet")
BOUNCER = _kind(MIZAR, "Bouncer")
DIVIDER = _kind(MIZAR, "Divider")
NODE = _kind("v1", "Node")

INIT, PROVISIONED, FAILED = "Init", "Provisioned", "Failed"
PENDING, READY = "Pending", "Ready"
DEFAULT_CIDR = "10.0.0.0/16"


def md(o: Obj) -> Obj:
    m = o.get("metadata")
    return m if isinstance(m, dict) else {}


def spec(o: Obj) -> Obj:
    s = o.get("spec")
    return s if isinstance(s, dict) else {}


def status(o: Obj) -> Obj:
    s = o.get("status")
    return s if isinstance(s, dict) else {}


def name(o: Obj) -> str:
    return str(md(o).get("name") or "")


def tenant(o: Obj) -> str:
    return str(md(o).get("tenant") or "")


def uid(o: Obj) -> str:
    return str(md(o).get("uid") or "")


def generation(o: Obj) -> int:
    g = md(o).get("generation")
    return g if isinstance(g, int) else 0


def tkey(t: str, n: str) -> str:
    """The informer key of a tenant-scoped object."""
    return f"{t}//{n}"


def mac_for(ip: str) -> str:
    return "0a:58:" + ":".join(f"{int(x):02x}" for x in ip.split("."))


def owner_ref(o: Obj, kind: Kind) -> Obj:
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "name": name(o),
        "uid": uid(o),
        "controller": True,
        "blockOwnerDeletion": False,
    }


def status_differs(o: Obj, want: Obj) -> bool:
    have = status(o)
    return any(have.get(k) != v for k, v in want.items()) or any(k not in want for k in have)
