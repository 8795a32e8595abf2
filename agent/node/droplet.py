"""The host's Droplet: the substrate interface a node agent's pods are carried over.

With VPC networking every node agent registers one cluster-scoped
``mizar.centaurus.io/v1 Droplet`` for its host (named after the node unless told otherwise):
``spec.itf`` (the substrate interface: ``--substrate-itf``, or the interface of the default
route), its IPv4 address and MAC, and ``spec.transitd``, the address of the host's transit daemon
(a Unix socket path or ``host:port``) that the network operator programs. Status
(``Ready``/``Unreachable``) is the operator's. Registration is idempotent: an existing Droplet
whose spec differs (the host got a new address, the daemon a new socket) is updated with
compare-and-swap, retried on conflicts.

The facts are read with ioctls in the agent's own network namespace (:mod:`agent.cni.ifaces`),
which is the simulated host's when the agent runs under ``nsenter --net``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from agent.cni import ifaces
from ctl.client import ApiError, Client

log = logging.getLogger("centaurus.agent.droplet")
DROPLET_KIND = "droplets.mizar.centaurus.io"


class DropletError(Exception):
    """The substrate cannot be determined (one line for the user)."""


@dataclass(frozen=True)
class Substrate:
    itf: str
    ip: str
    mac: str


def detect_substrate(itf: str = "") -> Substrate:
    """The substrate interface (``itf``, or the default route's) with its address and MAC."""
    name = itf or ifaces.default_route_interface()
    if not name:
        raise DropletError("no default route to take the substrate interface from: give --substrate-itf")
    try:
        ip = ifaces.ipv4_of(name)
    except OSError as e:
        raise DropletError(f"substrate interface {name}: no IPv4 address ({e.strerror or e})") from None
    try:
        mac = ifaces.mac_of(name)
    except OSError as e:
        raise DropletError(f"substrate interface {name}: {e.strerror or e}") from None
    return Substrate(name, ip, mac)


def droplet_spec(sub: Substrate, transitd: str) -> dict[str, Any]:
    return {"ip": sub.ip, "mac": sub.mac, "itf": sub.itf, "transitd": transitd}


async def register_droplet(client: Client, name: str, sub: Substrate, transitd: str) -> dict[str, Any]:
    """Create the Droplet, or bring an existing one's spec up to date; returns the stored object."""
    spec = droplet_spec(sub, transitd)
    body = {
        "apiVersion": "mizar.centaurus.io/v1",
        "kind": "Droplet",
        "metadata": {"name": name},
        "spec": spec,
    }
    for _ in range(10):
        try:
            obj: dict[str, Any] = await client.create(body, kind=DROPLET_KIND)
            log.info(
                "droplet %s registered (%s %s on %s, transitd %s)", name, sub.ip, sub.mac, sub.itf, transitd
            )
            return obj
        except ApiError as e:
            if e.code != 409:
                raise
        try:
            cur = await client.get(DROPLET_KIND, name)
        except ApiError as e:
            if e.code == 404:  # deleted in between
                continue
            raise
        if {k: (cur.get("spec") or {}).get(k) for k in spec} == spec:
            return cur
        cur["spec"] = {**(cur.get("spec") or {}), **spec}
        try:
            obj = await client.update(cur)
            log.info(
                "droplet %s updated (%s %s on %s, transitd %s)", name, sub.ip, sub.mac, sub.itf, transitd
            )
            return obj
        except ApiError as e:
            if e.code not in (404, 409):
                raise
        await asyncio.sleep(0.1)
    raise DropletError(f"droplet {name}: could not register it (conflicts)")
