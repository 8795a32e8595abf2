"""The VPC pod network's plumbing: a netns and a veth per pod, addressed from its Endpoint.

With VPC networking a pod is not on the node bridge. Its host-side veth is where the transit
daemon attaches ``transit_agent`` (egress: Geneve to the subnet's bouncer or straight to the
destination host) and where ``transit_xdp`` on the substrate interface delivers the pod's
traffic; nothing else connects it, so only its own VPC reaches it::

    host netns (a droplet)                         pod netns "cpod-<uid12>"
    sub0 (transit_xdp) ... vethXXXXXXXXXXX <====> eth0 (Endpoint status.ip/prefixLength, .mac)
                           (transit_agent)         default via the subnet gateway

The order is the network operator's contract (``docs/network.md``): :meth:`VpcPlumbing.plumb`
makes the namespace and the pair first (the host side's name goes into the Endpoint's
``spec.veth``), the agent's network step (:mod:`agent.node.podnet`) creates the Endpoint and
waits for ``Provisioned``, then :meth:`VpcPlumbing.configure` gives ``eth0`` the allocated MAC,
address and default route. Both steps are idempotent and run over rtnetlink in fresh threads
(:mod:`agent.cni.netlink`), like :class:`agent.cni.bridge.BridgeNetwork`, and use the same names
(derived from the pod UID). ``eth0`` gets GRO (a native-XDP redirect into a veth is only
delivered with it) and, under the XDP agent, software TX checksums (XDP moves raw bytes and
cannot finish an offloaded checksum); its MTU leaves room for the Geneve header.

To the runtime this is a :class:`~agent.cni.bridge.PodNetwork` whose ``setup`` only hands out
a network the agent has prepared: what was configured is kept in ``STATE/vpc/UID.json``, so
``lookup`` (the pod's IP) and ``teardown`` work after an agent restart too.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from agent.cni import ifaces, netlink
from agent.cni.bridge import (
    NETNS_DIR,
    NetworkError,
    PodNetworkInfo,
    enter_pod_netns_here,
    netns_name,
    netns_path,
    remove_pod_network,
    veth_name,
)
from agent.cni.netlink import Rtnl, RtnlError

DEFAULT_MTU = 1400  # 1500 on the substrate minus Geneve (66 bytes with our options) and slack


class VpcPlumbing:
    """Pod network namespaces and veths for VPC endpoints on one node."""

    def __init__(
        self, state_dir: str | os.PathLike[str], mtu: int = DEFAULT_MTU, csum_off: bool = True
    ) -> None:
        self.dir = Path(state_dir) / "vpc"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.mtu = mtu
        self.csum_off = csum_off
        self._cache: dict[str, PodNetworkInfo] = {}

    def _file(self, uid: str) -> Path:
        if not uid or "/" in uid or uid.startswith("."):
            raise NetworkError(f"invalid pod uid {uid!r}")
        return self.dir / f"{uid}.json"

    # ------------------------------------------------------------------ building

    def _plumb_sync(self, uid: str) -> None:
        path = NETNS_DIR / netns_name(uid)
        veth = veth_name(uid)
        with Rtnl() as host:  # opened in the agent's (host's) namespace, before this thread leaves it
            enter_pod_netns_here(path)
            with Rtnl() as pod:
                if pod.link_index("eth0") is None:
                    host.del_link(veth)  # a half-made pair from an interrupted setup
                    nsfd = os.open(path, os.O_RDONLY)
                    try:
                        host.add_veth(veth, "eth0", nsfd, mtu=self.mtu)
                    finally:
                        os.close(nsfd)
                    if pod.link_index("eth0") is None:
                        raise NetworkError(f"eth0 did not appear in netns {path.name}")
                else:
                    hidx = host.link_index(veth)
                    if hidx is None:
                        raise NetworkError(f"host veth {veth} is missing (netns {path.name} has an eth0)")
                    host.set_link(hidx, up=True)
                pod.set_link(1, up=True)  # lo

    async def plumb(self, uid: str) -> tuple[str, str]:
        """Create (or find) the pod's netns and veth pair; returns (netns path, host veth name)."""
        marker = self._file(uid).with_suffix(".plumbed")  # so a crash before configure leaves a trace
        marker.touch()
        try:
            await netlink.run_in_fresh_thread(lambda: self._plumb_sync(uid))
        except RtnlError as e:
            raise NetworkError(f"pod network of {uid}: {e.strerror}") from None
        return netns_path(netns_name(uid)), veth_name(uid)

    def _configure_sync(self, uid: str, ip: str, prefixlen: int, mac: str, gateway: str) -> None:
        netlink.enter_netns_here(NETNS_DIR / netns_name(uid))
        with Rtnl() as pod:
            eth0 = pod.link_index("eth0")
            if eth0 is None:
                raise NetworkError(f"netns {netns_name(uid)} has no eth0")
            if ifaces.mac_of("eth0") != mac.lower():
                pod.set_link(eth0, up=False, mac=mac)
            if self.csum_off:
                with contextlib.suppress(OSError):  # an offload the driver lacks is not fatal
                    ifaces.tx_csum_off("eth0")
            pod.add_addr(eth0, ip, prefixlen)
            pod.set_link(eth0, up=True)
            # GRO after up: switching it on while the veth runs is what gives it the NAPI context a
            # native-XDP redirect needs (asked for while down, it reads "on" and delivers nothing)
            with contextlib.suppress(OSError):
                ifaces.set_feature("eth0", ifaces.ETHTOOL_SGRO, False)
                ifaces.gro_on("eth0")
            pod.replace_default_route(gateway, eth0)

    async def configure(self, uid: str, ip: str, prefixlen: int, mac: str, gateway: str) -> PodNetworkInfo:
        """Give the pod side its Endpoint's MAC, address and default route; remember it. Idempotent."""
        try:
            await netlink.run_in_fresh_thread(lambda: self._configure_sync(uid, ip, prefixlen, mac, gateway))
        except OSError as e:
            raise NetworkError(f"pod network of {uid}: {e.strerror or e}") from None
        ns = netns_name(uid)
        info = PodNetworkInfo(ns, netns_path(ns), ip, prefixlen, gateway, veth_name(uid))
        f = self._file(uid)
        tmp = f.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(info) | {"mac": mac}))
        os.replace(tmp, f)
        self._cache[uid] = info
        return info

    # ------------------------------------------------------------------ the runtime's view

    def lookup(self, uid: str) -> PodNetworkInfo | None:
        """The configured network of ``uid`` (None before :meth:`configure`)."""
        info = self._cache.get(uid)
        if info is not None:
            return info
        try:
            raw = json.loads(self._file(uid).read_text())
        except (OSError, ValueError, NetworkError):
            return None
        raw.pop("mac", None)
        try:
            info = self._cache[uid] = PodNetworkInfo(**raw)
        except TypeError:
            return None
        return info

    def ready(self, uid: str) -> bool:
        info = self.lookup(uid)
        return info is not None and Path(info.netns_path).exists()

    async def setup(self, uid: str) -> PodNetworkInfo:
        """The prepared network; NetworkError when the agent has not configured it (yet)."""
        info = self.lookup(uid)
        if info is None or not Path(info.netns_path).exists():
            raise NetworkError("waiting for the pod's VPC endpoint")
        return info

    async def teardown(self, uid: str) -> None:
        """Remove the veth and the netns (the address stops answering at once). Idempotent."""
        await remove_pod_network(uid)
        self._cache.pop(uid, None)
        with contextlib.suppress(FileNotFoundError, NetworkError):
            self._file(uid).unlink()
        with contextlib.suppress(FileNotFoundError, NetworkError):
            self._file(uid).with_suffix(".plumbed").unlink()

    def known(self) -> list[str]:
        """UIDs this node plumbed or configured and has not torn down."""
        return sorted({p.stem for p in self.dir.iterdir() if p.suffix in (".json", ".plumbed")})
