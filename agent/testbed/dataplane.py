"""``Testbed``: several hosts with transit daemons on one machine, and endpoints on them.

    with Testbed() as tb:
        h1, h2, h3 = tb.add_hosts(["h1", "h2", "h3"])       # netns + substrate veth + transitd (loaded)
        tb.add_vpc(100, "10.0.0.0/16", dividers=[h3])
        tb.add_subnet(100, "10.0.1.0/24", bouncers=[h2])
        a = tb.add_endpoint("a", h1, 100, "10.0.1.5")       # netns + veth into h1, programmed
        b = tb.add_endpoint("b", h3, 100, "10.0.1.6")
        tb.sh(a, "ping", "-c1", "-W1", b.ip)
        h2.client.counters()                                 # ctl.transit.client.TransitClient

Layout: a Linux bridge ``<prefix>br`` in the root namespace is the substrate (192.168.222.0/24
by default). Host ``hN`` is namespace ``<prefix>-hN`` whose ``sub0`` veth is enslaved to the
bridge; its transit daemon runs as ``centaurusctl serve transitd --netns <ns>`` and listens on
``<run_dir>/<host>.sock``. An endpoint is namespace ``<prefix>-<name>`` with ``eth0`` (MTU 1400
by default, leaving room for the 66 bytes of Geneve) whose peer ``v<name>`` sits in its host.
GRO is switched on at the far ends of every veth that XDP redirects into, so native mode
delivers, and TX checksum offload is off on endpoint veths, because XDP forwards raw bytes and
cannot finish an offloaded checksum (see docs/dataplane.md).

Programming mirrors what the network management plane does, and only where needed: a subnet's
net entry, gateway ARP entry and VPC entry go to its bouncers (and to the VPC's dividers); an
endpoint goes to its own host (local endpoint + agent metadata + its subnet's net entry) and to
its subnet's bouncers. Substrate entries are given to every host.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.testbed import netns
from agent.testbed.hosts import plumb_host
from ctl.transit.client import TransitClient, TransitError

PIN_ROOT = Path("/sys/fs/bpf/centaurus")


def mac_for(ip: str) -> str:
    """Deterministic locally administered MAC for an endpoint IP (0a:58:a.b.c.d)."""
    return "0a:58:" + ":".join(f"{int(x):02x}" for x in ip.split("."))


def transitd_command() -> list[str]:
    ctl = Path(sys.executable).parent / "centaurusctl"
    if ctl.exists():
        return [str(ctl), "serve", "transitd"]
    return [sys.executable, "-m", "agent.transit.daemon"]


@dataclass
class Host:
    name: str
    ns: str
    ip: str
    mac: str
    bridge_port: str
    socket: Path
    log: Path
    pin_name: str
    tb: Testbed
    proc: subprocess.Popen[bytes] | None = None
    client: TransitClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = TransitClient(str(self.socket), timeout=30)

    def start_transitd(self) -> None:
        cmd = [
            *transitd_command(),
            "--host", self.pin_name,
            "--itf", "sub0",
            "--netns", self.ns,
            "--socket", str(self.socket),
            "--state-dir", str(self.tb.run_dir / self.name),
            "--learn-ttl", str(self.tb.learn_ttl),
            "--load", self.tb.mode,
            "--agent-hook", self.tb.agent_hook,
        ]  # fmt: skip
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise netns.NetnsError(
                    f"transitd {self.name} exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}"
                )
            if self.socket.exists() and self.client.healthy():
                return
            time.sleep(0.1)
        raise netns.NetnsError(
            f"transitd {self.name} not ready after {timeout}s: {self.log.read_text()[-2000:]}"
        )

    def stop_transitd(self, timeout: float = 10.0) -> None:
        """SIGTERM the daemon (programs stay attached) and wait for it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def restart_transitd(self) -> None:
        self.stop_transitd()
        self.start_transitd()
        self.wait_ready()


@dataclass
class Subnet:
    vni: int
    cidr: str
    bouncers: list[Host]

    @property
    def gateway(self) -> str:
        return str(next(ipaddress.IPv4Network(self.cidr).hosts()))


@dataclass
class Endpoint:
    name: str
    ns: str
    host: Host
    vni: int
    ip: str
    mac: str
    veth: str
    subnet: Subnet


class Testbed:
    """Builds and tears down a multi-host data plane on one machine (root required)."""

    def __init__(
        self,
        substrate: str = "192.168.222.0/24",
        mode: str = "auto",
        endpoint_mtu: int = 1400,
        substrate_mtu: int = 1500,
        learn_ttl: float = 30.0,
        prefix: str | None = None,
        agent_hook: str = "xdp",
    ) -> None:
        if os.geteuid() != 0:
            raise netns.NetnsError("the test bed needs root")
        self.prefix = prefix or "c" + secrets.token_hex(2)
        self.mode = mode
        self.agent_hook = agent_hook
        self.endpoint_mtu = endpoint_mtu
        self.substrate_mtu = substrate_mtu
        self.learn_ttl = learn_ttl
        self.substrate = ipaddress.IPv4Network(substrate)
        self._addrs = self.substrate.hosts()
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"centaurus-tb-{self.prefix}-"))
        self.bridge = netns.ifname_ok(f"{self.prefix}br")
        self.hosts: dict[str, Host] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.vpcs: dict[int, dict[str, Any]] = {}
        self.subnets: list[Subnet] = []
        self._namespaces: list[str] = []
        self._closed = False
        atexit.register(self.close)
        netns.ip("link", "add", self.bridge, "type", "bridge")
        netns.ip("link", "set", self.bridge, "up")

    def __enter__(self) -> Testbed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- hosts --------------------------------------------------------------------------------

    def add_hosts(self, names: Sequence[str]) -> list[Host]:
        """Create hosts and start their daemons in parallel; returns once all are ready."""
        hosts = [self._make_host(n) for n in names]
        for h in hosts:
            h.start_transitd()
        for h in hosts:
            h.wait_ready()
        self._program_substrates()
        return hosts

    def add_host(self, name: str) -> Host:
        return self.add_hosts([name])[0]

    def _make_host(self, name: str) -> Host:
        if name in self.hosts:
            raise ValueError(f"host {name} exists")
        ns = f"{self.prefix}-{name}"
        self._namespaces.append(ns)
        # Frames the TC agent sends may carry offloaded checksums; native XDP on the next
        # host cannot finish them, so the bridge port does (on real NICs the wire does).
        # Generic XDP keeps the skb and its checksum state, and GSO packets must stay whole.
        made = plumb_host(
            self.prefix,
            name,
            self.bridge,
            str(next(self._addrs)),
            self.substrate.prefixlen,
            self.substrate_mtu,
            port_csum_off=self.agent_hook == "tc" and self.mode != "generic",
        )
        h = Host(
            name=name,
            ns=ns,
            ip=made["ip"],
            mac=made["mac"],
            bridge_port=made["port"],
            socket=self.run_dir / f"{name}.sock",
            log=self.run_dir / f"{name}.log",
            pin_name=f"{self.prefix}-{name}",
            tb=self,
        )
        self.hosts[name] = h
        return h

    def _program_substrates(self) -> None:
        entries = [{"ip": h.ip, "mac": h.mac} for h in self.hosts.values()]
        for h in self.hosts.values():
            h.client.put("substrates", [e for e in entries if e["ip"] != h.ip] or entries)

    # ---- network objects (what the management plane will do) ----------------------------------

    def add_vpc(self, vni: int, cidr: str, dividers: Sequence[Host]) -> None:
        self.vpcs[vni] = {"vni": vni, "cidr": cidr, "dividers": list(dividers)}
        for d in dividers:
            d.client.put("vpcs", self._vpc_obj(vni))

    def _vpc_obj(self, vni: int) -> dict[str, Any]:
        return {"vni": vni, "dividers": [d.ip for d in self.vpcs[vni]["dividers"]]}

    def _net_obj(self, s: Subnet) -> dict[str, Any]:
        return {"vni": s.vni, "cidr": s.cidr, "bouncers": [b.ip for b in s.bouncers]}

    def add_subnet(self, vni: int, cidr: str, bouncers: Sequence[Host]) -> Subnet:
        if vni not in self.vpcs:
            raise ValueError(f"add_vpc({vni}) first")
        s = Subnet(vni, str(ipaddress.IPv4Network(cidr)), list(bouncers))
        self.subnets.append(s)
        for b in s.bouncers:
            b.client.put("vpcs", self._vpc_obj(vni))
            b.client.put("nets", self._net_obj(s))
            b.client.put(
                "endpoints", {"vni": vni, "ip": s.gateway, "mac": mac_for(s.gateway), "gateway": True}
            )
        for d in self.vpcs[vni]["dividers"]:
            d.client.put("nets", self._net_obj(s))
        return s

    def subnet_of(self, vni: int, ip: str) -> Subnet:
        best = None
        for s in self.subnets:
            n = ipaddress.IPv4Network(s.cidr)
            if (
                s.vni == vni
                and ipaddress.IPv4Address(ip) in n
                and (best is None or n.prefixlen > ipaddress.IPv4Network(best.cidr).prefixlen)
            ):
                best = s
        if best is None:
            raise ValueError(f"no subnet of VNI {vni} holds {ip}")
        return best

    def add_endpoint(self, name: str, host: Host, vni: int, ip: str, mac: str | None = None) -> Endpoint:
        s = self.subnet_of(vni, ip)
        ns = f"{self.prefix}-{name}"
        veth = netns.ifname_ok(f"v{self.prefix}{name}"[:15])
        mac = mac or mac_for(ip)
        netns.add_netns(ns)
        self._namespaces.append(ns)
        netns.add_veth("eth0", veth, a_ns=ns, b_ns=host.ns, mtu=self.endpoint_mtu)
        plen = ipaddress.IPv4Network(s.cidr).prefixlen
        netns.ip("link", "set", "eth0", "address", mac, ns=ns)
        netns.ip("addr", "add", f"{ip}/{plen}", "dev", "eth0", ns=ns)
        netns.ip("link", "set", "eth0", "up", ns=ns)
        netns.ip("route", "add", "default", "via", s.gateway, "dev", "eth0", ns=ns)
        netns.gro_on("eth0", ns)
        if self.agent_hook == "xdp":  # the TC agent keeps the skb, and with it TSO and checksum offload
            netns.tx_csum_off("eth0", ns)
        netns.ip("link", "set", veth, "up", ns=host.ns)
        ep = Endpoint(name, ns, host, vni, ip, mac, veth, s)
        self.endpoints[name] = ep
        self.program_endpoint(ep)
        return ep

    def program_endpoint(self, ep: Endpoint) -> None:
        h = ep.host
        h.client.put("nets", self._net_obj(ep.subnet))
        h.client.put("endpoints", {"vni": ep.vni, "ip": ep.ip, "mac": ep.mac, "veth": ep.veth})
        h.client.put("agents", {"veth": ep.veth, "vni": ep.vni, "ip": ep.ip, "mac": ep.mac})
        for b in ep.subnet.bouncers:
            if b is not h:
                b.client.put("endpoints", {"vni": ep.vni, "ip": ep.ip, "mac": ep.mac, "host": h.ip})

    def unprogram_endpoint(self, ep: Endpoint) -> None:
        key = f"{ep.vni}/{ep.ip}"
        for h in {ep.host.name: ep.host, **{b.name: b for b in ep.subnet.bouncers}}.values():
            try:
                h.client.delete("endpoints", key)
            except TransitError as e:
                if e.code != 404:
                    raise
        try:
            ep.host.client.delete("agents", ep.veth)
        except TransitError as e:
            if e.code != 404:
                raise

    def delete_endpoint(self, ep: Endpoint) -> None:
        self.unprogram_endpoint(ep)
        netns.del_netns(ep.ns)
        self.endpoints.pop(ep.name, None)

    # ---- running things -----------------------------------------------------------------------

    def sh(
        self, where: Endpoint | Host, *cmd: str, timeout: float = 30.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return netns.run(list(cmd), ns=where.ns, timeout=timeout, check=check)

    def popen(self, where: Endpoint | Host, *cmd: str, **kw: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(["ip", "netns", "exec", where.ns, *cmd], text=True, **kw)

    def ping(self, src: Endpoint, dst: str, count: int = 1, wait: float = 2.0) -> bool:
        cp = self.sh(
            src,
            "ping",
            "-n",
            "-q",
            "-c",
            str(count),
            "-W",
            str(wait),
            dst,
            check=False,
            timeout=count * wait + 10,
        )
        return cp.returncode == 0

    # ---- teardown -----------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for h in self.hosts.values():
            try:
                h.stop_transitd(timeout=5)
            except Exception:
                pass
        for ns in reversed(self._namespaces):
            netns.del_netns(ns)
        netns.ip("link", "del", self.bridge, check=False)
        for h in self.hosts.values():
            shutil.rmtree(PIN_ROOT / h.pin_name, ignore_errors=True)
        if os.environ.get("CENTAURUS_KEEP_TESTBED_LOGS"):
            return
        shutil.rmtree(self.run_dir, ignore_errors=True)
