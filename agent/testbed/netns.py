"""Namespace and link plumbing for the test bed, through the ``ip``/``ethtool`` tools.

Every helper raises ``NetnsError`` with the failing command and its stderr; ``run`` is bounded
by a timeout. Names are checked against the kernel's 15-character interface limit up front.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence


class NetnsError(RuntimeError):
    pass


def run(
    cmd: Sequence[str], *, timeout: float = 30.0, check: bool = True, ns: str | None = None
) -> subprocess.CompletedProcess[str]:
    full = ["ip", "netns", "exec", ns, *cmd] if ns else list(cmd)
    try:
        cp = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise NetnsError(f"timed out after {timeout}s: {' '.join(full)}") from e
    if check and cp.returncode != 0:
        raise NetnsError(f"{' '.join(full)}: {cp.stderr.strip() or cp.stdout.strip() or cp.returncode}")
    return cp


def ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    return run(["ip", *(["-n", ns] if ns else []), *args], check=check).stdout


def ifname_ok(name: str) -> str:
    if not 1 <= len(name) <= 15:
        raise NetnsError(f"interface name {name!r} is longer than 15 characters")
    return name


def add_netns(name: str) -> None:
    ip("netns", "add", name)
    ip("link", "set", "lo", "up", ns=name)


def del_netns(name: str) -> None:
    ip("netns", "del", name, check=False)


def list_netns() -> list[str]:
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def add_veth(
    a: str, b: str, *, a_ns: str | None = None, b_ns: str | None = None, mtu: int | None = None
) -> None:
    """A veth pair a <-> b, each end moved to its namespace (None = root)."""
    ifname_ok(a)
    ifname_ok(b)
    args = ["link", "add", a]
    if a_ns:
        args += ["netns", a_ns]
    args += ["type", "veth", "peer", "name", b]
    if b_ns:
        args += ["netns", b_ns]
    ip(*args)
    if mtu:
        ip("link", "set", a, "mtu", str(mtu), ns=a_ns)
        ip("link", "set", b, "mtu", str(mtu), ns=b_ns)


def gro_on(dev: str, ns: str | None = None) -> None:
    """Enable GRO: lets native-XDP veth peers receive redirected/XDP_TX frames."""
    run(["ethtool", "-K", dev, "gro", "on"], ns=ns, check=False)


def tx_csum_off(dev: str, ns: str | None = None) -> None:
    """Compute checksums in software on an endpoint's veth: XDP moves frames as raw bytes, so a
    CHECKSUM_PARTIAL skb (offloaded checksum) would leave the host with its checksum unfinished."""
    run(["ethtool", "-K", dev, "tx", "off"], ns=ns, check=False)


def link_mac(dev: str, ns: str | None = None) -> str:
    for tok in ip("-o", "link", "show", dev, ns=ns).split("link/ether", 1)[1].split()[:1]:
        return tok
    raise NetnsError(f"no MAC on {dev}")
