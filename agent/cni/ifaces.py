"""Interface facts and offload switches through ioctls, in the calling thread's network namespace.

The VPC pod network (:mod:`agent.cni.vpc`) and the Droplet registration
(:mod:`agent.node.droplet`) need a few things ``ip``/``ethtool`` would tell or set: the
interface of the default route, an interface's IPv4 address and MAC, and the GRO / TX
checksum offload switches of a pod's ``eth0``. Running those tools per pod would cost
processes; sysfs would answer for the wrong namespace (``/sys`` shows the namespace that
mounted it, and agents run under ``nsenter --net`` in a simulated host). So everything here
goes through a socket made in the calling thread, which the kernel answers for that thread's
network namespace (``/proc/net/route`` likewise shows the reading process's namespace).
"""

from __future__ import annotations

import array
import fcntl
import socket
import struct
from pathlib import Path

SIOCGIFADDR = 0x8915
SIOCGIFHWADDR = 0x8927
SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x17  # legacy one-feature commands, still mapped onto netdev features
ETHTOOL_SGRO = 0x2C


def _ifreq(name: str) -> bytes:
    return struct.pack("16s16x", name.encode()[:15])


def ipv4_of(name: str) -> str:
    """The (primary) IPv4 address of interface ``name``; OSError when it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        r = fcntl.ioctl(s.fileno(), SIOCGIFADDR, _ifreq(name))
    return socket.inet_ntoa(r[20:24])


def mac_of(name: str) -> str:
    """The hardware address of interface ``name`` (``aa:bb:cc:dd:ee:ff``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        r = fcntl.ioctl(s.fileno(), SIOCGIFHWADDR, _ifreq(name))
    return ":".join(f"{b:02x}" for b in r[18:24])


def default_route_interface(route_table: Path = Path("/proc/net/route")) -> str | None:
    """The interface of the IPv4 default route of the process's namespace (None without one)."""
    try:
        lines = route_table.read_text().splitlines()[1:]
    except OSError:
        return None
    best: tuple[int, str] | None = None
    for line in lines:
        f = line.split()
        if len(f) >= 8 and f[1] == "00000000" and f[7] == "00000000":
            metric = int(f[6])
            if best is None or metric < best[0]:
                best = (metric, f[0])
    return best[1] if best else None


def set_feature(name: str, cmd: int, on: bool) -> None:
    """One ``ethtool -K NAME gro|tx on|off`` through SIOCETHTOOL; OSError if the driver refuses."""
    buf = array.array("I", [cmd, 1 if on else 0])
    addr, _ = buf.buffer_info()
    req = struct.pack("16sP", name.encode()[:15], addr) + b"\0" * 16
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), SIOCETHTOOL, req)


def gro_on(name: str) -> None:
    """GRO on: a native-XDP redirect into the peer of a veth is only delivered with it (DESIGN §10)."""
    set_feature(name, ETHTOOL_SGRO, True)


def tx_csum_off(name: str) -> None:
    """Software checksums: an XDP agent forwards raw bytes and cannot finish an offloaded checksum."""
    set_feature(name, ETHTOOL_STXCSUM, False)
