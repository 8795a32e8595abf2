"""Typed access to the pinned maps: normalised objects in, map entries out, and back.

``TransitMaps`` turns the objects of ``agent.transit.model`` into the key/value structs of
``bpf/lib/maps.h`` (bcc gives us their ctypes classes, so no layout is restated here) and reads
them back into the same JSON shapes for get/list/dump. It knows this host's own substrate
address (the ``config`` map), which decides the role flags: a net lists this host among its
bouncers -> ``CEN_NET_F_BOUNCER``; a VPC among its dividers -> ``CEN_VPC_F_DIVIDER``; an
endpoint whose host is this host (or that names a veth) -> ``CEN_EP_F_LOCAL``.
"""

from __future__ import annotations

import builtins
import ipaddress
import socket
import sys
import time
from typing import Any

from agent.transit.loader import Programs, counter_names, ifnames
from agent.transit.model import Conflict, Invalid, NotFound

EP_F_LOCAL = 0x1
EP_F_GATEWAY = 0x2
NET_F_BOUNCER = 0x1
VPC_F_DIVIDER = 0x1


def ip2u(ip: str) -> int:
    """IPv4 text -> the __be32 as the C side sees it (network bytes in a native u32)."""
    return int.from_bytes(socket.inet_aton(ip), sys.byteorder)


def u2ip(v: int) -> str:
    return socket.inet_ntoa(int(v).to_bytes(4, sys.byteorder))


def mac2b(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def b2mac(b: Any) -> str:
    return ":".join(f"{x:02x}" for x in bytes(b)[:6])


def _set_mac(arr: Any, mac: str) -> None:
    for i, x in enumerate(mac2b(mac)):
        arr[i] = x


class TransitMaps:
    """The pinned maps of one host, seen through model objects."""

    def __init__(self, progs: Programs) -> None:
        self.p = progs
        self.t = {
            n: progs.table(n)
            for n in (
                "config",
                "endpoints",
                "nets",
                "vpcs",
                "substrate",
                "agent_md",
                "ep_cache",
                "xdp_counters",
                "agent_counters",
            )
        }
        self.xdp_counter_names = counter_names("XDP_C_")
        self.agent_counter_names = counter_names("AGENT_C_")

    # ---- config -----------------------------------------------------------------------------

    def set_config(self, ip: str, mac: str, ifindex: int, learn_ttl_s: float, mtu: int = 0) -> None:
        t = self.t["config"]
        v = t.Leaf()
        v.host_ip = ip2u(ip)
        _set_mac(v.host_mac, mac)
        v.substrate_ifindex = ifindex
        v.learn_ttl_ns = int(learn_ttl_s * 1e9)
        v.mtu = mtu
        t[t.Key(0)] = v
        # Role flags depend on our address: recompute them for what is already stored.
        for o in self.list("nets"):
            self._put_net(o)
        for o in self.list("vpcs"):
            self._put_vpc(o)

    def config(self) -> dict[str, Any]:
        v = self.t["config"][self.t["config"].Key(0)]
        return {
            "ip": u2ip(v.host_ip) if v.host_ip else None,
            "mac": b2mac(v.host_mac),
            "substrate_ifindex": v.substrate_ifindex,
            "learn_ttl_s": v.learn_ttl_ns / 1e9,
            "mtu": v.mtu,
        }

    @property
    def host_ip(self) -> str | None:
        return self.config()["ip"]

    # ---- put ----------------------------------------------------------------------------------

    def check(
        self, kind: str, o: dict[str, Any], ifindex_of: Any, batch: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Semantic checks against current state (and the rest of the batch); returns o with
        resolved fields (ifindex, host mac). Raises Invalid; writes nothing."""
        o = dict(o)
        me = self.host_ip
        if kind == "endpoints" and not o["gateway"]:
            if o["veth"] and o["host"] and o["host"] != me:
                raise Invalid(f"endpoint {o['ip']}: veth given but host {o['host']} is not this host ({me})")
            local = bool(o["veth"]) or o["host"] == me
            if local and not o["veth"]:
                raise Invalid(f"endpoint {o['ip']}: lives on this host, so its veth is required")
            if local:
                o["host"] = me
                o["ifindex"] = ifindex_of(o["veth"])
                o["host_mac"] = self.config()["mac"]
            else:
                sub = self._substrate_mac(o["host"], batch)
                if sub is None:
                    raise Invalid(
                        f"endpoint {o['ip']}: host {o['host']} has no substrate entry; add it first"
                    )
                o["host_mac"] = sub
        if kind == "agents":
            o["ifindex"] = ifindex_of(o["veth"])
        return o

    def _substrate_mac(self, ip: str, batch: list[dict[str, Any]]) -> str | None:
        for b in batch:
            if b.get("_kind") == "substrates" and b["ip"] == ip:
                return b["mac"]
        t = self.t["substrate"]
        v = t.get(t.Key(ip2u(ip)))
        return b2mac(v.mac) if v is not None else None

    def put(self, kind: str, o: dict[str, Any]) -> None:
        getattr(self, f"_put_{kind.rstrip('s')}")(o)

    def _put_substrate(self, o: dict[str, Any]) -> None:
        t = self.t["substrate"]
        v = t.Leaf()
        _set_mac(v.mac, o["mac"])
        t[t.Key(ip2u(o["ip"]))] = v
        # Endpoints carry their host's MAC: keep them in step.
        ep = self.t["endpoints"]
        for k, e in list(ep.items()):
            if e.host_ip == ip2u(o["ip"]) and not (e.flags & EP_F_LOCAL) and b2mac(e.host_mac) != o["mac"]:
                _set_mac(e.host_mac, o["mac"])
                ep[k] = e

    def _put_vpc(self, o: dict[str, Any]) -> None:
        t = self.t["vpcs"]
        v = t.Leaf()
        v.ndividers = len(o["dividers"])
        for i, d in enumerate(o["dividers"]):
            v.dividers[i] = ip2u(d)
        v.flags = VPC_F_DIVIDER if self.host_ip in o["dividers"] else 0
        t[t.Key(o["vni"])] = v

    def _net_key(self, vni: int, cidr: str) -> Any:
        n = ipaddress.IPv4Network(cidr)
        t = self.t["nets"]
        k = t.Key()
        k.prefixlen = 32 + n.prefixlen
        k.vni = vni
        k.ip = ip2u(str(n.network_address))
        return k

    def _put_net(self, o: dict[str, Any]) -> None:
        t = self.t["nets"]
        n = ipaddress.IPv4Network(o["cidr"])
        v = t.Leaf()
        v.cidr_ip = ip2u(str(n.network_address))
        v.cidr_len = n.prefixlen
        v.nbouncers = len(o["bouncers"])
        for i, b in enumerate(o["bouncers"]):
            v.bouncers[i] = ip2u(b)
        v.flags = NET_F_BOUNCER if self.host_ip in o["bouncers"] else 0
        t[self._net_key(o["vni"], o["cidr"])] = v

    def _ep_key(self, vni: int, ip: str) -> Any:
        k = self.t["endpoints"].Key()
        k.vni = vni
        k.ip = ip2u(ip)
        return k

    def _put_endpoint(self, o: dict[str, Any]) -> None:
        t = self.t["endpoints"]
        v = t.Leaf()
        _set_mac(v.mac, o["mac"])
        if o["gateway"]:
            v.flags = EP_F_GATEWAY
        else:
            v.host_ip = ip2u(o["host"])
            _set_mac(v.host_mac, o["host_mac"])
            if o.get("ifindex"):
                v.ifindex = o["ifindex"]
                v.flags = EP_F_LOCAL
        t[self._ep_key(o["vni"], o["ip"])] = v

    def _put_agent(self, o: dict[str, Any]) -> None:
        t = self.t["agent_md"]
        v = t.Leaf()
        v.vni = o["vni"]
        v.ip = ip2u(o["ip"])
        _set_mac(v.mac, o["mac"])
        t[t.Key(o["ifindex"])] = v

    # ---- read ---------------------------------------------------------------------------------

    def list(self, kind: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if kind == "substrates":
            out = [{"ip": u2ip(k.value), "mac": b2mac(v.mac)} for k, v in self.t["substrate"].items()]
        elif kind == "vpcs":
            out = [
                {
                    "vni": k.value,
                    "dividers": [u2ip(v.dividers[i]) for i in range(v.ndividers)],
                    "divider": bool(v.flags & VPC_F_DIVIDER),
                }
                for k, v in self.t["vpcs"].items()
            ]
        elif kind == "nets":
            for k, v in self.t["nets"].items():
                out.append(
                    {
                        "vni": k.vni,
                        "cidr": f"{u2ip(v.cidr_ip)}/{v.cidr_len}",
                        "bouncers": [u2ip(v.bouncers[i]) for i in range(v.nbouncers)],
                        "bouncer": bool(v.flags & NET_F_BOUNCER),
                    }
                )
        elif kind == "endpoints":
            names = ifnames()
            for k, v in self.t["endpoints"].items():
                e: dict[str, Any] = {"vni": k.vni, "ip": u2ip(k.ip), "mac": b2mac(v.mac)}
                if v.flags & EP_F_GATEWAY:
                    e.update(gateway=True, host=None)
                else:
                    e.update(gateway=False, host=u2ip(v.host_ip), host_mac=b2mac(v.host_mac))
                if v.flags & EP_F_LOCAL:
                    e.update(local=True, ifindex=v.ifindex, veth=names.get(v.ifindex))
                else:
                    e["local"] = False
                out.append(e)
        elif kind == "agents":
            names = ifnames()
            for k, v in self.t["agent_md"].items():
                out.append(
                    {
                        "veth": names.get(k.value),
                        "ifindex": k.value,
                        "vni": v.vni,
                        "ip": u2ip(v.ip),
                        "mac": b2mac(v.mac),
                    }
                )
        else:
            raise Invalid(f"unknown kind {kind!r}")
        return sorted(out, key=lambda o: str([o.get(f) for f in ("vni", "cidr", "ip", "veth")]))

    def get(self, kind: str, key: Any) -> dict[str, Any]:
        for o in self.list(kind):
            if self._matches(kind, o, key):
                return o
        raise NotFound(f"{kind.rstrip('s')} {self._key_text(key)} not found")

    @staticmethod
    def _key_text(key: Any) -> str:
        return "/".join(str(x) for x in key) if isinstance(key, tuple) else str(key)

    @staticmethod
    def _matches(kind: str, o: dict[str, Any], key: Any) -> bool:
        if kind == "substrates":
            return bool(o["ip"] == key)
        if kind == "vpcs":
            return bool(o["vni"] == key)
        if kind == "nets":
            return bool((o["vni"], o["cidr"]) == key)
        if kind == "endpoints":
            return bool((o["vni"], o["ip"]) == key)
        return bool(o["veth"] == key)

    # ---- delete -------------------------------------------------------------------------------

    def delete(self, kind: str, key: Any) -> dict[str, Any]:
        o = self.get(kind, key)
        if kind == "substrates":
            users = [e["ip"] for e in self.list("endpoints") if e.get("host") == key and not e.get("local")]
            if users:
                raise Conflict(
                    f"substrate {key} is the host of {len(users)} endpoint(s) (e.g. {users[0]}); delete them first"
                )
            del self.t["substrate"][self.t["substrate"].Key(ip2u(key))]
        elif kind == "vpcs":
            del self.t["vpcs"][self.t["vpcs"].Key(key)]
        elif kind == "nets":
            del self.t["nets"][self._net_key(*key)]
        elif kind == "endpoints":
            k = self._ep_key(*key)
            del self.t["endpoints"][k]
            self.forget(*key)
        elif kind == "agents":
            del self.t["agent_md"][self.t["agent_md"].Key(o["ifindex"])]
        return o

    def forget(self, vni: int, ip: str) -> None:
        """Drop a learned direct path."""
        c = self.t["ep_cache"]
        k = c.Key()
        k.vni = vni
        k.ip = ip2u(ip)
        try:
            del c[k]
        except KeyError:
            pass

    def learned(self) -> builtins.list[dict[str, Any]]:
        now = time.monotonic_ns()
        return sorted(
            (
                {
                    "vni": k.vni,
                    "ip": u2ip(k.ip),
                    "host": u2ip(v.host_ip),
                    "host_mac": b2mac(v.host_mac),
                    "age_s": round((now - v.ts_ns) / 1e9, 3),
                }
                for k, v in self.t["ep_cache"].items()
            ),
            key=lambda o: (o["vni"], o["ip"]),
        )

    def flush_learned(self) -> int:
        c = self.t["ep_cache"]
        keys = list(c.keys())
        for k in keys:
            try:
                del c[k]
            except KeyError:
                pass
        return len(keys)

    # ---- counters -----------------------------------------------------------------------------

    def counters(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for prog, table, names in (
            ("transit_xdp", "xdp_counters", self.xdp_counter_names),
            ("transit_agent", "agent_counters", self.agent_counter_names),
        ):
            t = self.t[table]
            out[prog] = {n: int(t.sum(t.Key(i)).value) for i, n in enumerate(names)}
        return out

    def reset_counters(self) -> None:
        for table in ("xdp_counters", "agent_counters"):
            t = self.t[table]
            for i in range(len(t)):
                t[t.Key(i)] = t.Leaf(*([0] * t.total_cpu))

    def clear_all(self) -> None:
        """Empty every map but config (tests, and `unload --purge`)."""
        for name in ("endpoints", "nets", "vpcs", "substrate", "agent_md", "ep_cache"):
            t = self.t[name]
            for k in list(t.keys()):
                try:
                    del t[k]
                except KeyError:
                    pass
        self.reset_counters()

    def dump(self) -> dict[str, Any]:
        return {
            "config": self.config(),
            "substrate": self.list("substrates"),
            "vpcs": self.list("vpcs"),
            "nets": self.list("nets"),
            "endpoints": self.list("endpoints"),
            "agent_md": self.list("agents"),
            "ep_cache": self.learned(),
            "counters": self.counters(),
        }
