"""How a node agent networks its pods: VPC endpoints on the host's transit daemon, or the cbr0 bridge.

``--pod-network auto`` (the default) means VPC networking when ``--transitd`` names the host's
transit daemon and the flat node bridge otherwise; ``vpc`` and ``bridge`` force one. With VPC
networking the agent

* finds the substrate (``--substrate-itf`` or the default route's interface; :mod:`agent.node.droplet`)
  and registers the host's Droplet under ``--droplet-name`` (default: the node name) before the Node,
  retrying while the API server is unreachable;
* asks the transit daemon which agent program it attaches (``agent_hook``): under the XDP agent pod
  veths compute TX checksums in software, under the TC agent they keep the offloads (and TSO);
* gives the runc runtime a :class:`~agent.cni.vpc.VpcPlumbing` instead of the bridge, and the node
  agent a :class:`~agent.node.podnet.PodNetworking` for the network step.

``--netns NAME`` makes the whole agent run in a network namespace (a simulated host of
``init --hosts``; only the network namespace is joined, so runc still sees the machine's cgroups).
It is entered on the main thread before anything else starts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from agent.cni import netlink
from agent.cni.vpc import DEFAULT_MTU, VpcPlumbing
from agent.node.droplet import DropletError, Substrate, detect_substrate, register_droplet
from ctl.client import ApiError, Client

log = logging.getLogger("centaurus.agent")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--pod-network",
        choices=["auto", "vpc", "bridge"],
        default="auto",
        help="pod networking: VPC endpoints (needs --transitd), the flat node bridge, or auto (vpc with --transitd)",
    )
    p.add_argument("--transitd", default="", help="this host's transit daemon: Unix socket path or HOST:PORT")
    p.add_argument("--substrate-itf", default="", help="substrate interface (default: the default route's)")
    p.add_argument("--droplet-name", default="", help="name of this host's Droplet (default: the node name)")
    p.add_argument("--pod-mtu", type=int, default=DEFAULT_MTU, help="MTU of VPC pod interfaces")
    p.add_argument("--netns", default="", help="run in this network namespace (a /run/netns name or a path)")


def mode(args: argparse.Namespace) -> str:
    if args.pod_network == "auto":
        return "vpc" if args.transitd else "bridge"
    return str(args.pod_network)


def validate(args: argparse.Namespace) -> str | None:
    """A one-line problem with the network flags, or None."""
    if args.pod_network == "vpc" and not args.transitd:
        return "--pod-network vpc needs --transitd (the host's transit daemon)"
    if mode(args) == "vpc" and (args.hollow_nodes > 0 or args.runtime == "hollow"):
        return "VPC pod networking needs the runc runtime"
    if not 576 <= args.pod_mtu <= 9000:
        return "--pod-mtu must be between 576 and 9000"
    return None


def enter_netns(name: str) -> None:
    """Join network namespace ``name`` on the calling (main) thread; OSError if it cannot."""
    netlink.enter_netns_here(Path(name if "/" in name else f"/run/netns/{name}"))


@dataclass
class VpcNode:
    """What VPC networking needs on one node."""

    droplet: str
    substrate: Substrate
    transitd: str
    plumbing: VpcPlumbing


def _agent_hook(transitd: str) -> str:
    from ctl.transit.client import TransitClient

    c = TransitClient(tcp=transitd, timeout=5) if "/" not in transitd else TransitClient(transitd, timeout=5)
    return str(c.status().get("agent_hook") or "xdp")


async def vpc_node(args: argparse.Namespace, node: str, state_dir: Path) -> VpcNode:
    """Detect the substrate and the daemon's agent hook; raises DropletError with one line."""
    sub = detect_substrate(args.substrate_itf)
    try:
        hook = await asyncio.to_thread(_agent_hook, args.transitd)
    except Exception as e:  # noqa: BLE001 - any failure: assume the XDP agent (software checksums are safe)
        log.warning("transitd %s: %s; assuming the XDP agent", args.transitd, e)
        hook = "xdp"
    plumbing = VpcPlumbing(state_dir, mtu=args.pod_mtu, csum_off=hook != "tc")
    log.info("VPC pod networking: substrate %s (%s %s), transitd %s (%s agent)", sub.itf, sub.ip, sub.mac,
             args.transitd, hook)  # fmt: skip
    return VpcNode(args.droplet_name or node, sub, args.transitd, plumbing)


async def register_droplets(clients: list[Client], vn: VpcNode) -> None:
    """Register the Droplet in every partition, retrying while the API server cannot be reached."""
    delay = 0.2
    for c in {id(c): c for c in clients}.values():
        while True:
            try:
                await register_droplet(c, vn.droplet, vn.substrate, vn.transitd)
                break
            except ApiError as e:
                if e.code < 500 and e.code != 429:
                    raise DropletError(f"droplet {vn.droplet}: {e}") from None
                log.warning("droplet %s: %s; retrying", vn.droplet, e)
            except (ConnectionError, OSError) as e:
                log.warning("droplet %s: API server unreachable (%s); retrying", vn.droplet, e)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
