"""The pod network: a named netns per pod, a veth into a node bridge, an address from the pod CIDR.

:class:`BridgeNetwork` is what the runc runtime calls to build and tear down a pod's sandbox network::

    host netns                              pod netns "cpod-<uid12>"
    cbr0 (gateway, e.g. 10.88.0.1/16) --- vethXXXXXXXXXXX <====> eth0 (10.88.0.N/16), lo up
                                                                 default via 10.88.0.1

It shells out to ``ip`` (iproute2), which is what a CNI bridge plugin does underneath, and every step is
idempotent so ``setup`` can be repeated after a crash halfway through. Names derive from the pod UID,
so ``teardown`` finds everything again without any in-memory state. The bridge is created on first use
in the agent's own network namespace (a test "host" namespace, or the real root namespace).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from agent.cni.ipam import HostLocalIPAM

NETNS_DIR = Path("/run/netns")


class NetworkError(Exception):
    pass


async def run_cmd(*argv: str, check: bool = True, timeout: float = 30.0) -> tuple[int, str]:
    """Run a command; return (exit code, combined output). Raises NetworkError when ``check`` fails."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise NetworkError(f"{' '.join(argv)}: timed out after {timeout}s") from None
    text = out.decode(errors="replace").strip()
    if check and proc.returncode != 0:
        raise NetworkError(
            f"{' '.join(argv)}: {text.splitlines()[-1] if text else f'exit {proc.returncode}'}"
        )
    return proc.returncode or 0, text


def netns_name(uid: str) -> str:
    return "cpod-" + uid.replace("-", "")[:12]


def veth_name(uid: str) -> str:
    return "veth" + hashlib.sha1(uid.encode()).hexdigest()[:11]


def netns_path(name: str) -> str:
    return str(NETNS_DIR / name)


@dataclass
class PodNetworkInfo:
    netns: str  # name
    netns_path: str
    ip: str
    prefixlen: int
    gateway: str
    host_veth: str


class BridgeNetwork:
    """Pod networking on one node: bridge ``bridge`` holding the gateway of ``cidr``."""

    def __init__(
        self, state_dir: str | os.PathLike[str], cidr: str = "10.88.0.0/16", bridge: str = "cbr0"
    ) -> None:
        self.ipam = HostLocalIPAM(Path(state_dir) / "ips", cidr)
        self.bridge = bridge
        self._lock = asyncio.Lock()

    @property
    def gateway(self) -> str:
        return str(self.ipam.gateway)

    async def ensure_bridge(self) -> None:
        rc, _ = await run_cmd("ip", "link", "show", "dev", self.bridge, check=False)
        if rc != 0:
            rc, out = await run_cmd("ip", "link", "add", self.bridge, "type", "bridge", check=False)
            if rc != 0 and "exists" not in out:
                raise NetworkError(f"cannot create bridge {self.bridge}: {out}")
        _, addrs = await run_cmd("ip", "-o", "-4", "addr", "show", "dev", self.bridge)
        want = f"{self.gateway}/{self.ipam.prefixlen}"
        if f" {want} " not in addrs + " ":
            rc, out = await run_cmd("ip", "addr", "add", want, "dev", self.bridge, check=False)
            if rc != 0 and "exists" not in out:
                raise NetworkError(f"cannot address bridge {self.bridge}: {out}")
        await run_cmd("ip", "link", "set", self.bridge, "up")

    async def setup(self, uid: str) -> PodNetworkInfo:
        """Create (or complete) the pod's netns, veth and address. Idempotent."""
        ns = netns_name(uid)
        veth = veth_name(uid)
        async with self._lock:
            await self.ensure_bridge()
            ip = self.ipam.allocate(uid)
        if not (NETNS_DIR / ns).exists():
            rc, out = await run_cmd("ip", "netns", "add", ns, check=False)
            if rc != 0 and "exists" not in out:
                raise NetworkError(f"cannot create netns {ns}: {out}")
        rc, _ = await run_cmd("ip", "-n", ns, "link", "show", "dev", "eth0", check=False)
        if rc != 0:
            await run_cmd("ip", "link", "del", veth, check=False)
            await run_cmd("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        await run_cmd("ip", "link", "set", veth, "master", self.bridge, "up")
        cidr = f"{ip}/{self.ipam.prefixlen}"
        _, addrs = await run_cmd("ip", "-n", ns, "-o", "-4", "addr", "show", "dev", "eth0")
        if f" {cidr} " not in addrs + " ":
            await run_cmd("ip", "-n", ns, "addr", "add", cidr, "dev", "eth0")
        await run_cmd("ip", "-n", ns, "link", "set", "lo", "up")
        await run_cmd("ip", "-n", ns, "link", "set", "eth0", "up")
        await run_cmd("ip", "-n", ns, "route", "replace", "default", "via", self.gateway, "dev", "eth0")
        return PodNetworkInfo(
            netns=ns,
            netns_path=netns_path(ns),
            ip=ip,
            prefixlen=self.ipam.prefixlen,
            gateway=self.gateway,
            host_veth=veth,
        )

    def lookup(self, uid: str) -> PodNetworkInfo | None:
        """What exists for ``uid`` (from names and the allocator; no commands run)."""
        ns = netns_name(uid)
        ip = self.ipam.lookup(uid)
        if ip is None and not (NETNS_DIR / ns).exists():
            return None
        return PodNetworkInfo(
            netns=ns,
            netns_path=netns_path(ns),
            ip=ip or "",
            prefixlen=self.ipam.prefixlen,
            gateway=self.gateway,
            host_veth=veth_name(uid),
        )

    async def teardown(self, uid: str) -> None:
        """Remove the veth, the netns and the address of ``uid``. Idempotent."""
        ns = netns_name(uid)
        await run_cmd("ip", "link", "del", veth_name(uid), check=False)
        if (NETNS_DIR / ns).exists():
            rc, out = await run_cmd("ip", "netns", "delete", ns, check=False)
            if rc != 0 and (NETNS_DIR / ns).exists():
                raise NetworkError(f"cannot delete netns {ns}: {out}")
        self.ipam.release(uid)
