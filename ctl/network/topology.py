"""What every droplet's transit daemon must hold, computed entry by entry.

The operator keeps the provisioned network objects here (droplets, VPCs with their VNI and
dividers, subnets with their bouncers, endpoints with their IP/MAC and host) with the
indexes that make one question cheap: *which object, if any, should droplet D hold under
key K?* (:meth:`Topology.entry`). The per-droplet programmer asks exactly that for the keys
a change touched and diffs the answer against what it knows the daemon holds, so one code
path programs, re-programs after a placement change, deletes, and resyncs a daemon that
restarted empty.

What goes where (DESIGN.md §7) - never every host for an endpoint:

* droplet D, for each endpoint E on D: E's subnet's ``nets`` entry (with its bouncers), E's
  local ``endpoints`` entry (its veth) and its ``agents`` entry (transit_agent on the veth);
* for each subnet S with a bouncer on D: the VPC's ``vpcs`` entry (its dividers), S's
  ``nets`` entry, S's gateway entry and every endpoint of S (as remote: its host's IP);
* for each VPC V with a divider on D: V's ``vpcs`` entry and every subnet's ``nets`` entry;
* every other droplet's ``substrates`` entry (written when a droplet joins, not per endpoint).

Keys are the transit daemon's own (``vpcs/VNI``, ``nets/VNI/CIDR``, ``endpoints/VNI/IP``,
``agents/VETH``, ``substrates/IP``) and entries are in the shape its RPC takes, which is also
the shape :func:`normalise` gives to what it lists.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ctl.network.objects import mac_for

Entry = dict[str, Any]
Key = tuple[str, str]  # (kind, transit key)
KIND_ORDER = ("substrates", "vpcs", "nets", "endpoints", "agents")


@dataclass
class DropletInfo:
    name: str
    ip: str
    mac: str
    address: str  # transitd: a Unix socket path or host:port


@dataclass
class VpcInfo:
    key: str  # tenant//name
    vni: int
    cidr: str
    dividers: list[str] = field(default_factory=list)


@dataclass
class SubnetInfo:
    key: str
    vpc: str  # VPC key
    vni: int
    cidr: str
    gateway: str
    bouncers: list[str] = field(default_factory=list)


@dataclass
class EndpointInfo:
    key: str  # tenant/namespace/name
    subnet: str  # subnet key
    vni: int
    ip: str
    mac: str
    droplet: str
    veth: str


def normalise(kind: str, o: dict[str, Any]) -> tuple[Key, Entry]:
    """A transit daemon's listed object as (key, entry in the shape the operator writes)."""
    if kind == "substrates":
        return (kind, o["ip"]), {"ip": o["ip"], "mac": o["mac"]}
    if kind == "vpcs":
        return (kind, str(o["vni"])), {"vni": o["vni"], "dividers": list(o.get("dividers") or [])}
    if kind == "nets":
        return (kind, f"{o['vni']}/{o['cidr']}"), {
            "vni": o["vni"],
            "cidr": o["cidr"],
            "bouncers": list(o.get("bouncers") or []),
        }
    if kind == "endpoints":
        k = (kind, f"{o['vni']}/{o['ip']}")
        if o.get("gateway"):
            return k, {"vni": o["vni"], "ip": o["ip"], "mac": o["mac"], "gateway": True}
        if o.get("local") or o.get("veth"):
            return k, {"vni": o["vni"], "ip": o["ip"], "mac": o["mac"], "veth": o.get("veth")}
        return k, {"vni": o["vni"], "ip": o["ip"], "mac": o["mac"], "host": o.get("host")}
    return (kind, str(o["veth"])), {"veth": o["veth"], "vni": o["vni"], "ip": o["ip"], "mac": o["mac"]}


class Topology:
    def __init__(self) -> None:
        self.droplets: dict[str, DropletInfo] = {}
        self.vpcs: dict[str, VpcInfo] = {}
        self.subnets: dict[str, SubnetInfo] = {}
        self.endpoints: dict[str, EndpointInfo] = {}
        self._drop_by_ip: dict[str, str] = {}
        self._vpc_by_vni: dict[int, str] = {}
        self._subnets_by_vpc: dict[str, set[str]] = defaultdict(set)
        self._subnet_by_net: dict[tuple[int, str], str] = {}
        self._gw: dict[tuple[int, str], str] = {}  # (vni, gateway ip) -> subnet key
        self._eps_by_subnet: dict[str, set[str]] = defaultdict(set)
        self._eps_by_droplet: dict[str, set[str]] = defaultdict(set)
        self._ep_by_addr: dict[tuple[int, str], str] = {}
        self._ep_by_veth: dict[tuple[str, str], str] = {}
        self._hosted: dict[tuple[str, str], int] = defaultdict(int)  # (droplet, subnet) -> endpoints

    # ---- updates (each returns the (droplet, key) pairs whose entry may have changed) ----------

    def set_droplet(self, d: DropletInfo | None, name: str) -> dict[str, set[Key]]:
        old = self.droplets.pop(name, None)
        if old is not None:
            self._drop_by_ip.pop(old.ip, None)
        if d is not None:
            self.droplets[name] = d
            self._drop_by_ip[d.ip] = name
        touched: dict[str, set[Key]] = defaultdict(set)
        for ip in {x.ip for x in (old, d) if x is not None}:
            for other in self.droplets:
                if other != name:
                    touched[other].add(("substrates", ip))
        return touched

    def set_vpc(self, key: str, v: VpcInfo | None) -> set[str]:
        """Returns the droplets to re-converge in full (dividers, bouncers of its subnets)."""
        old = self.vpcs.pop(key, None)
        if old is not None:
            self._vpc_by_vni.pop(old.vni, None)
        if v is not None:
            self.vpcs[key] = v
            self._vpc_by_vni[v.vni] = key
        out = set()
        for x in (old, v):
            if x is not None:
                out |= set(x.dividers)
        for s in self._subnets_by_vpc.get(key, ()):
            out |= set(self.subnets[s].bouncers)
        return out

    def set_subnet(self, key: str, s: SubnetInfo | None) -> set[str]:
        """Returns the droplets to re-converge in full (old and new bouncers, dividers, hosts)."""
        old = self.subnets.pop(key, None)
        if old is not None:
            self._subnets_by_vpc[old.vpc].discard(key)
            self._subnet_by_net.pop((old.vni, old.cidr), None)
            self._gw.pop((old.vni, old.gateway), None)
        if s is not None:
            self.subnets[key] = s
            self._subnets_by_vpc[s.vpc].add(key)
            self._subnet_by_net[(s.vni, s.cidr)] = key
            self._gw[(s.vni, s.gateway)] = key
        out: set[str] = set()
        for x in (old, s):
            if x is not None:
                out |= set(x.bouncers)
                v = self.vpcs.get(x.vpc)
                if v is not None:
                    out |= set(v.dividers)
        out |= {self.endpoints[e].droplet for e in self._eps_by_subnet.get(key, ())}
        return out

    def set_endpoint(self, key: str, e: EndpointInfo | None) -> dict[str, set[Key]]:
        old = self.endpoints.pop(key, None)
        if old is not None:
            self._eps_by_subnet[old.subnet].discard(key)
            self._eps_by_droplet[old.droplet].discard(key)
            if self._ep_by_addr.get((old.vni, old.ip)) == key:
                del self._ep_by_addr[(old.vni, old.ip)]
            if self._ep_by_veth.get((old.droplet, old.veth)) == key:
                del self._ep_by_veth[(old.droplet, old.veth)]
            self._hosted[(old.droplet, old.subnet)] -= 1
        if e is not None:
            self.endpoints[key] = e
            self._eps_by_subnet[e.subnet].add(key)
            self._eps_by_droplet[e.droplet].add(key)
            self._ep_by_addr[(e.vni, e.ip)] = key
            self._ep_by_veth[(e.droplet, e.veth)] = key
            self._hosted[(e.droplet, e.subnet)] += 1
        touched: dict[str, set[Key]] = defaultdict(set)
        for x in (old, e):
            if x is None:
                continue
            s = self.subnets.get(x.subnet)
            cidr = s.cidr if s is not None else ""
            touched[x.droplet] |= {("endpoints", f"{x.vni}/{x.ip}"), ("agents", x.veth)}
            if cidr:
                touched[x.droplet].add(("nets", f"{x.vni}/{cidr}"))
            for b in s.bouncers if s is not None else ():
                touched[b].add(("endpoints", f"{x.vni}/{x.ip}"))
        return touched

    # ---- questions --------------------------------------------------------------------------

    def bouncer_ips(self, s: SubnetInfo) -> list[str]:
        return [self.droplets[b].ip for b in s.bouncers if b in self.droplets]

    def divider_ips(self, v: VpcInfo) -> list[str]:
        return [self.droplets[d].ip for d in v.dividers if d in self.droplets]

    def endpoint_targets(self, key: str) -> list[str]:
        """The droplets that hold an endpoint: its host and its subnet's bouncers."""
        e = self.endpoints.get(key)
        if e is None:
            return []
        s = self.subnets.get(e.subnet)
        return sorted({e.droplet, *(s.bouncers if s is not None else ())})

    def _serves_vpc(self, d: str, vkey: str) -> bool:
        v = self.vpcs.get(vkey)
        if v is not None and d in v.dividers:
            return True
        return any(d in self.subnets[s].bouncers for s in self._subnets_by_vpc.get(vkey, ()))

    def entry(self, d: str, key: Key) -> Entry | None:
        """What droplet ``d`` should hold under ``key`` (None: nothing)."""
        kind, k = key
        if kind == "substrates":
            other = self._drop_by_ip.get(k)
            if other is None or other == d:
                return None
            o = self.droplets[other]
            return {"ip": o.ip, "mac": o.mac}
        if kind == "vpcs":
            vkey = self._vpc_by_vni.get(int(k))
            if vkey is None or not self._serves_vpc(d, vkey):
                return None
            v = self.vpcs[vkey]
            return {"vni": v.vni, "dividers": self.divider_ips(v)}
        if kind == "nets":
            vni_n, cidr = k.split("/", 1)
            nkey = self._subnet_by_net.get((int(vni_n), cidr))
            if nkey is None:
                return None
            sn = self.subnets[nkey]
            vp = self.vpcs.get(sn.vpc)
            wanted = (
                d in sn.bouncers
                or (vp is not None and d in vp.dividers)
                or self._hosted.get((d, nkey), 0) > 0
            )
            if not wanted or not sn.bouncers:
                return None
            return {"vni": sn.vni, "cidr": sn.cidr, "bouncers": self.bouncer_ips(sn)}
        if kind == "endpoints":
            vni_s, ip = k.split("/", 1)
            vni = int(vni_s)
            ekey = self._ep_by_addr.get((vni, ip))
            if ekey is not None:
                e = self.endpoints[ekey]
                s = self.subnets.get(e.subnet)
                if e.droplet == d:
                    return {"vni": vni, "ip": ip, "mac": e.mac, "veth": e.veth}
                if s is not None and d in s.bouncers and e.droplet in self.droplets:
                    return {"vni": vni, "ip": ip, "mac": e.mac, "host": self.droplets[e.droplet].ip}
                return None
            skey = self._gw.get((vni, ip))
            if skey is not None and d in self.subnets[skey].bouncers:
                return {"vni": vni, "ip": ip, "mac": mac_for(ip), "gateway": True}
            return None
        if kind == "agents":
            ekey = self._ep_by_veth.get((d, k))
            if ekey is None:
                return None
            e = self.endpoints[ekey]
            return {"veth": e.veth, "vni": e.vni, "ip": e.ip, "mac": e.mac}
        return None

    def keys_for(self, d: str) -> set[Key]:
        """Every key droplet ``d`` should hold something under (for a full converge)."""
        keys: set[Key] = {("substrates", o.ip) for n, o in self.droplets.items() if n != d}
        for ekey in self._eps_by_droplet.get(d, ()):
            e = self.endpoints[ekey]
            keys |= {("endpoints", f"{e.vni}/{e.ip}"), ("agents", e.veth)}
            s = self.subnets.get(e.subnet)
            if s is not None:
                keys.add(("nets", f"{s.vni}/{s.cidr}"))
        for skey, s in self.subnets.items():
            v = self.vpcs.get(s.vpc)
            bouncer = d in s.bouncers
            divider = v is not None and d in v.dividers
            if bouncer or divider:
                keys |= {("nets", f"{s.vni}/{s.cidr}"), ("vpcs", str(s.vni))}
            if bouncer:
                keys.add(("endpoints", f"{s.vni}/{s.gateway}"))
                for ekey in self._eps_by_subnet.get(skey, ()):
                    e = self.endpoints[ekey]
                    keys.add(("endpoints", f"{e.vni}/{e.ip}"))
        for v in self.vpcs.values():
            if d in v.dividers:
                keys.add(("vpcs", str(v.vni)))
        return keys

    def load(self) -> dict[str, int]:
        """Bouncers and dividers per droplet (the placement load)."""
        n: dict[str, int] = defaultdict(int)
        for s in self.subnets.values():
            for b in s.bouncers:
                n[b] += 1
        for v in self.vpcs.values():
            for d in v.dividers:
                n[d] += 1
        return n

    def subnets_of(self, vpc_key: str) -> Iterable[str]:
        return tuple(self._subnets_by_vpc.get(vpc_key, ()))
