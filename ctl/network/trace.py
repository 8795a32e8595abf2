"""The path a packet takes between two endpoints, worked out from the programmed state.

``centaurusctl network trace POD_A POD_B`` (:mod:`ctl.cli.network_cmd`) gathers the Endpoint
objects, the Droplets and each concerned host's transit daemon state (``/v1/dump``: the
endpoints, nets, VPCs, agent metadata, learned direct paths and counters - or, from a daemon
without ``dump``, the same lists one by one) and hands them to :func:`trace`, which follows the
decisions the XDP/TC programs make (``bpf/lib/agent_path.h`` for the sender's transit agent,
``bpf/transit_xdp.c`` on each host's substrate ingress) on those maps:

1. at the source host (transit_agent on the endpoint's veth): the agent metadata of the veth
   (without it the frame passes unencapsulated); then the destination's endpoint entry (local:
   straight to its veth; remote with its host: direct), then a learned direct path younger than
   the learning TTL, else one of the source subnet's bouncers (``nets`` entry);
2. at a bouncer: the destination endpoint's entry (its host), or - outside the subnet - one of
   the VPC's dividers, which send it to a bouncer of the destination subnet;
3. at the destination host: the local endpoint entry, decapsulated onto its veth.

Every hop names the host, what decided it and the counters that count it there. The result is
a list of :class:`Hop` plus a verdict; a missing entry ends the trace with what is missing
(that is the bug to look for). Bouncer choice is a flow hash: every bouncer is listed and the
first is followed. Pure functions over plain dicts: no I/O here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
MAX_HOPS = 6


@dataclass
class HostState:
    """One host's transit daemon state, as its dump gives it."""

    name: str
    ip: str
    endpoints: dict[tuple[int, str], Obj] = field(default_factory=dict)
    nets: list[Obj] = field(default_factory=list)
    vpcs: dict[int, Obj] = field(default_factory=dict)
    agents: dict[str, Obj] = field(default_factory=dict)
    learned: dict[tuple[int, str], Obj] = field(default_factory=dict)
    counters: dict[str, dict[str, int]] = field(default_factory=dict)
    learn_ttl: float | None = None
    error: str = ""

    @classmethod
    def from_dump(cls, name: str, ip: str, dump: Obj) -> HostState:
        h = cls(name, ip)
        for e in dump.get("endpoints") or []:
            h.endpoints[(int(e["vni"]), str(e["ip"]))] = e
        h.nets = list(dump.get("nets") or [])
        h.vpcs = {int(v["vni"]): v for v in dump.get("vpcs") or []}
        h.agents = {str(a.get("veth")): a for a in dump.get("agent_md") or dump.get("agents") or []}
        h.learned = {(int(c["vni"]), str(c["ip"])): c for c in dump.get("ep_cache") or []}
        h.counters = dump.get("counters") or {}
        h.learn_ttl = (dump.get("config") or {}).get("learn_ttl_s")
        return h

    def net_of(self, vni: int, ip: str) -> Obj | None:
        a = ipaddress.IPv4Address(ip)
        best = None
        for n in self.nets:
            if int(n["vni"]) == vni and a in ipaddress.IPv4Network(n["cidr"]):
                if (
                    best is None
                    or ipaddress.IPv4Network(n["cidr"]).prefixlen
                    > ipaddress.IPv4Network(best["cidr"]).prefixlen
                ):
                    best = n
        return best

    def count(self, prog: str, *names: str) -> dict[str, int]:
        c = self.counters.get(prog) or {}
        return {n: int(c.get(n, 0)) for n in names}


@dataclass
class Hop:
    host: str
    where: str  # transit_agent | transit_xdp
    action: str  # local | direct | learned | bouncer | divider | decap | bounce | drop | pass
    detail: str
    counters: dict[str, int] = field(default_factory=dict)


@dataclass
class Trace:
    src: Obj  # {"name", "ip", "vni", "droplet", "veth"}
    dst: Obj
    hops: list[Hop]
    verdict: str
    delivered: bool
    learned: bool  # the source host holds a live learned direct path to the destination


def _agent_drops(h: HostState) -> dict[str, int]:
    return {k: v for k, v in (h.counters.get("transit_agent") or {}).items() if k.startswith("drop_") and v}


def _xdp_drops(h: HostState) -> dict[str, int]:
    return {k: v for k, v in (h.counters.get("transit_xdp") or {}).items() if k.startswith("drop_") and v}


def trace(src: Obj, dst: Obj, hosts: dict[str, HostState]) -> Trace:
    """Follow a frame from endpoint ``src`` to ``dst`` (dicts: name, ip, vni, droplet, veth)."""
    by_ip = {h.ip: h for h in hosts.values()}
    hops: list[Hop] = []
    vni, dip = int(src["vni"]), str(dst["ip"])
    h = hosts.get(str(src["droplet"]))

    def done(verdict: str, delivered: bool = False, learned: bool = False) -> Trace:
        return Trace(src, dst, hops, verdict, delivered, learned)

    if h is None:
        return done(f"the source host {src['droplet']} is not a known droplet")
    if h.error:
        return done(f"the source host {h.name}'s transit daemon: {h.error}")
    md = h.agents.get(str(src.get("veth")))
    if md is None:
        hops.append(Hop(h.name, "transit_agent", "pass", f"no agent metadata on {src.get('veth')}"))
        return done(f"transit_agent is not programmed on {src.get('veth')} (frames pass unencapsulated)")
    if int(md["vni"]) != vni or str(md["ip"]) != str(src["ip"]):
        hops.append(
            Hop(h.name, "transit_agent", "drop", f"agent metadata says {md['ip']} in VNI {md['vni']}")
        )
        return done("the veth's agent metadata does not match the endpoint (drop_spoof)")
    if int(dst["vni"]) != vni:
        hops.append(
            Hop(
                h.name,
                "transit_agent",
                "note",
                f"destination is in VNI {dst['vni']}, the source in VNI {vni}",
            )
        )
    learned = h.learned.get((vni, dip))
    live_learned = learned is not None and (
        h.learn_ttl is None or float(learned.get("age_s", 0)) < h.learn_ttl
    )
    agent_c = (
        "redirect_local",
        "redirect_direct",
        "redirect_learned",
        "redirect_bouncer",
        "redirect_divider",
    )
    ep = h.endpoints.get((vni, dip))
    nxt: HostState | None
    if ep is not None and (ep.get("local") or ep.get("veth")):
        hops.append(
            Hop(
                h.name,
                "transit_agent",
                "local",
                f"{dip} is local: to {ep.get('veth')}",
                h.count("transit_agent", agent_c[0]),
            )
        )
        return _arrived(done, dst, h, ep, live_learned)
    if ep is not None and ep.get("host"):
        nxt = by_ip.get(str(ep["host"]))
        hops.append(
            Hop(
                h.name,
                "transit_agent",
                "direct",
                f"programmed entry: to host {ep['host']}",
                h.count("transit_agent", agent_c[1]),
            )
        )
    elif live_learned and learned is not None:
        nxt = by_ip.get(str(learned["host"]))
        hops.append(
            Hop(
                h.name,
                "transit_agent",
                "learned",
                f"learned direct path: to host {learned['host']} (age {learned.get('age_s')}s)",
                h.count("transit_agent", agent_c[2]),
            )
        )
    else:
        net = h.net_of(vni, str(src["ip"]))
        if net is None or not net.get("bouncers"):
            hops.append(
                Hop(
                    h.name,
                    "transit_agent",
                    "drop",
                    f"no nets entry for {src['ip']} in VNI {vni}",
                    _agent_drops(h),
                )
            )
            return done("no route at the source host: its subnet's nets entry is missing (drop_no_route)")
        bouncers = [str(b) for b in net["bouncers"]]
        if bouncers[0] == h.ip:
            return _on_bouncer(done, hops, h, vni, dip, dst, by_ip, live_learned)
        nxt = by_ip.get(bouncers[0])
        hops.append(
            Hop(
                h.name,
                "transit_agent",
                "bouncer",
                f"{dip} not known here: to the subnet's bouncer {', '.join(bouncers)}",
                h.count("transit_agent", agent_c[3]),
            )
        )
        if nxt is not None:
            return _on_bouncer(done, hops, nxt, vni, dip, dst, by_ip, live_learned)
    if nxt is None:
        return done("the next host is not a known droplet")
    return _at_host(done, hops, nxt, vni, dip, dst, live_learned)


def _arrived(done: Any, dst: Obj, h: HostState, ep: Obj, learned: bool) -> Trace:
    if str(h.name) != str(dst["droplet"]) or (
        dst.get("veth") and ep.get("veth") and ep["veth"] != dst["veth"]
    ):
        return done(
            f"delivered to {ep.get('veth')} on {h.name}, which is not the destination endpoint",
            False,
            learned,
        )
    return done(f"delivered to {dst['name']} ({dst['ip']}) on {h.name}", True, learned)


def _at_host(done: Any, hops: list[Hop], h: HostState, vni: int, dip: str, dst: Obj, learned: bool) -> Trace:
    if h.error:
        hops.append(Hop(h.name, "transit_xdp", "unknown", f"transit daemon: {h.error}"))
        return done(f"cannot see {h.name}'s transit daemon", False, learned)
    ep = h.endpoints.get((vni, dip))
    if ep is not None and (ep.get("local") or ep.get("veth")):
        hops.append(
            Hop(
                h.name,
                "transit_xdp",
                "decap",
                f"decapsulated to {ep.get('veth')}",
                h.count("transit_xdp", "redirect_decap", "redirect_decap_gso", "info_learn"),
            )
        )
        return _arrived(done, dst, h, ep, learned)
    hops.append(Hop(h.name, "transit_xdp", "drop", f"{dip} is not local here", _xdp_drops(h)))
    return done(f"{h.name} does not hold {dip} as a local endpoint", False, learned)


def _on_bouncer(
    done: Any,
    hops: list[Hop],
    h: HostState,
    vni: int,
    dip: str,
    dst: Obj,
    by_ip: dict[str, HostState],
    learned: bool,
    depth: int = 0,
) -> Trace:
    if h.error:
        hops.append(Hop(h.name, "transit_xdp", "unknown", f"transit daemon: {h.error}"))
        return done(f"cannot see the bouncer {h.name}'s transit daemon", False, learned)
    ep = h.endpoints.get((vni, dip))
    if ep is not None and (ep.get("local") or ep.get("veth")):
        return _at_host(done, hops, h, vni, dip, dst, learned)
    if ep is not None and ep.get("host"):
        hops.append(
            Hop(
                h.name,
                "transit_xdp",
                "bounce",
                f"bouncer: to host {ep['host']}",
                h.count("transit_xdp", "tx_bounce"),
            )
        )
        nxt = by_ip.get(str(ep["host"]))
        if nxt is None:
            return done(f"the endpoint's host {ep['host']} is not a known droplet", False, learned)
        return _at_host(done, hops, nxt, vni, dip, dst, learned)
    own = h.net_of(vni, dip)
    if own is not None and h.ip in [str(b) for b in own.get("bouncers") or []]:
        hops.append(
            Hop(h.name, "transit_xdp", "drop", f"bouncer of {own['cidr']} without {dip}", _xdp_drops(h))
        )
        return done(f"{dip} is not an endpoint of VNI {vni} (drop_unknown_ep at the bouncer)", False, learned)
    vpc = h.vpcs.get(vni)
    if vpc is None or not vpc.get("dividers") or depth >= MAX_HOPS:
        hops.append(Hop(h.name, "transit_xdp", "drop", f"no route to {dip} in VNI {vni}", _xdp_drops(h)))
        return done(f"no route to {dip} in VNI {vni} (drop_no_route)", False, learned)
    divs = [str(d) for d in vpc["dividers"]]
    hops.append(
        Hop(
            h.name,
            "transit_xdp",
            "divider",
            f"outside the subnet: to divider {', '.join(divs)}",
            h.count("transit_xdp", "tx_to_divider"),
        )
    )
    d = by_ip.get(divs[0])
    if d is None:
        return done("the divider is not a known droplet", False, learned)
    net = d.net_of(vni, dip)
    if net is None or not net.get("bouncers"):
        hops.append(Hop(d.name, "transit_xdp", "drop", f"divider: no subnet holds {dip}", _xdp_drops(d)))
        return done(f"no subnet of VNI {vni} holds {dip} (drop_no_route at the divider)", False, learned)
    b = [str(x) for x in net["bouncers"]]
    hops.append(
        Hop(
            d.name,
            "transit_xdp",
            "divide",
            f"divider: to bouncer {', '.join(b)}",
            d.count("transit_xdp", "tx_divide"),
        )
    )
    nb = by_ip.get(b[0])
    if nb is None:
        return done("the destination subnet's bouncer is not a known droplet", False, learned)
    return _on_bouncer(done, hops, nb, vni, dip, dst, by_ip, learned, depth + 1)
