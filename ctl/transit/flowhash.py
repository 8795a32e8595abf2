"""The data plane's stable flow hash, mirrored from bpf/lib/helpers.h (cen_flow_hash).

Both programs pick a bouncer (or divider) as ``list[hash(src, dst) % len(list)]`` with the
addresses as the C side reads them (network bytes in a little-endian u32); the hash is
symmetric so both directions of a flow use the same bouncer. The trace tool uses this to name
the bouncer a flow goes through, and tests check it against what the programs do.
"""

from __future__ import annotations

import socket
import sys

_M = 0xFFFFFFFF


def _u(ip: str) -> int:
    return int.from_bytes(socket.inet_aton(ip), sys.byteorder)


def flow_hash(src: str, dst: str) -> int:
    a, b = _u(src), _u(dst)
    lo, hi = min(a, b), max(a, b)
    h = (lo * 0x9E3779B1) & _M
    h ^= hi
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M
    h ^= h >> 16
    return h


def pick(src: str, dst: str, hosts: list[str]) -> str:
    """The bouncer/divider of ``hosts`` that the data plane uses for (src, dst)."""
    return hosts[flow_hash(src, dst) % len(hosts)]


def source_port(src: str, dst: str) -> int:
    """The outer UDP source port transit_agent uses for (src, dst): 49152..65535."""
    return 49152 + (flow_hash(src, dst) & 0x3FFF)
