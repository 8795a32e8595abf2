"""Schemas of the network kinds: Arktos' Network and Mizar's VPC, Subnet, Endpoint, Droplet,
Bouncer and Divider (DESIGN.md §7).

The fields the design names are typed (cidr, vni, counts, ip, mac, placement); specs and
statuses keep other fields as written (``x-kubernetes-preserve-unknown-fields``) while the
network operators that will own them are being built. Status is ``phase`` (Init, Provisioned)
and never lives in spec.
"""

from __future__ import annotations

from ctl.types.schema.build import Schema, integer, obj, resource, string

MIZAR = "mizar.centaurus.io/v1"
PHASE = obj(
    {
        "phase": string("Init, Provisioned or Failed (Network: Pending or Ready)."),
        "message": string(),
        "reason": string("Why the phase is Failed, in one CamelCase word."),
        "observedGeneration": integer("The spec generation the status describes.", fmt="int64"),
    },
    preserve=True,
)


def _kind(api_version: str, kind: str, spec: dict[str, Schema], description: str) -> None:
    prefix = "io.centaurus." + api_version.split(".")[0] + ".v1."
    resource(
        prefix + kind, api_version, kind, {"spec": obj(spec, preserve=True), "status": PHASE}, description
    )


_kind(
    "arktos.centaurus.io/v1",
    "Network",
    {
        "type": string("Network provider (mizar)."),
        "vpcID": string("The VPC backing this network."),
        "cidr": string("Address range of the network's VPC and subnet (default 10.0.0.0/16)."),
    },
    "A tenant's network (Arktos).",
)
_kind(
    MIZAR,
    "VPC",
    {
        "cidr": string("Address range of the VPC."),
        "vni": integer("Geneve virtual network identifier (24 bits)."),
        "dividers": integer("How many dividers serve the VPC."),
    },
    "A virtual private cloud (Mizar).",
)
_kind(
    MIZAR,
    "Subnet",
    {
        "vpc": string("The VPC the subnet is in."),
        "cidr": string(),
        "vni": integer(),
        "bouncers": integer("How many bouncers serve the subnet."),
    },
    "A subnet of a VPC (Mizar).",
)
_kind(
    MIZAR,
    "Endpoint",
    {
        "ip": string(),
        "mac": string(),
        "subnet": string(),
        "vpc": string(),
        "vni": integer(),
        "host": string("Host IP of the droplet the endpoint lives on."),
        "droplet": string(),
        "veth": string(),
        "pod": string("The pod the endpoint belongs to."),
        "type": string("simple, gateway or host."),
        "netns": string("The network namespace of the pod side."),
    },
    "A network endpoint of a pod (Mizar; not core v1 Endpoints).",
)
_kind(
    MIZAR,
    "Droplet",
    {
        "ip": string(),
        "mac": string(),
        "itf": string(),
        "transitd": string("The host's transit daemon: a Unix socket path or host:port."),
    },
    "A host's substrate interface.",
)
_kind(
    MIZAR,
    "Bouncer",
    {"subnet": string(), "vpc": string(), "droplet": string(), "ip": string(), "mac": string()},
    "A subnet's bouncer placed on a droplet.",
)
_kind(
    MIZAR,
    "Divider",
    {"vpc": string(), "droplet": string(), "ip": string(), "mac": string()},
    "A VPC's divider placed on a droplet.",
)
