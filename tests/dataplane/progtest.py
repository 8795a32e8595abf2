"""What the per-program BPF_PROG_TEST_RUN tests share: the cast, packet builders, map set-ups.

The tests in ``test_prog_*.py`` run one program path each on scapy-built packets: the maps are
programmed through the same TransitMaps code the daemon uses (the ``maps`` fixture of
conftest.py), a packet is crafted here, the real program runs once in the kernel, and the test
checks the verdict, the bytes that come out (decoded with ctl.transit.geneve, checksums
included) and the counter for that path. The unit-test host is 192.168.10.1; the other "hosts"
exist only as map entries.
"""

from __future__ import annotations

from typing import Any

from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether

from ctl.transit import geneve as gnv
from tests.dataplane.conftest import UT_HOST_IP, UT_HOST_MAC

H2, H2_MAC = "192.168.10.2", "02:00:00:00:0a:02"
H3, H3_MAC = "192.168.10.3", "02:00:00:00:0a:03"
H4, H4_MAC = "192.168.10.4", "02:00:00:00:0a:04"
VNI = 100
EP1, EP1_MAC = "10.0.1.5", "0a:00:00:01:00:05"  # on this host, behind "lo" (ifindex 1)
EP2, EP2_MAC = "10.0.1.7", "0a:00:00:01:00:07"  # on H3
EP3, EP3_MAC = "10.0.2.9", "0a:00:00:02:00:09"  # other subnet

TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT = 0, 2, 7


def run(progs: Any, fd_name: str, pkt: Any, ifindex: int = 1) -> Any:
    """Run an XDP program (``xdp_fd``, ``agent_fd``) once, arriving on ``ifindex``."""
    from agent.transit.loader import test_run

    return test_run(getattr(progs, fd_name), bytes(pkt), ingress_ifindex=ifindex)


def run_tc(progs: Any, fd_name: str, pkt: Any, gso_segs: int = 0) -> tuple[int, bytes]:
    """Run a TC program (``agent_tc_fd``, ``decap_tc_fd``) once: (TC_ACT_* code, bytes out).

    In a test run skb->ifindex is loopback (1); ``gso_segs`` marks the skb as a GSO packet.
    """
    from agent.transit.loader import test_run

    r = test_run(getattr(progs, fd_name), bytes(pkt), gso_segs=gso_segs)
    return r.retval, r.data


def counters(maps: Any, prog: str) -> dict[str, int]:
    """The non-zero counters of ``prog`` (transit_xdp or transit_agent)."""
    return {k: v for k, v in maps.counters()[prog].items() if v}


def substrates(maps: Any, *hosts: tuple[str, str]) -> None:
    for ip, mac in hosts:
        maps.put("substrates", {"ip": ip, "mac": mac})


def agent_setup(maps: Any, bouncers: list[str]) -> None:
    """EP1's agent on "lo", its subnet 10.0.1.0/24 bounced by ``bouncers``, H2-H4 known."""
    substrates(maps, (H2, H2_MAC), (H3, H3_MAC), (H4, H4_MAC))
    maps.put("agents", {"veth": "lo", "ifindex": 1, "vni": VNI, "ip": EP1, "mac": EP1_MAC})
    maps.put("nets", {"vni": VNI, "cidr": "10.0.1.0/24", "bouncers": bouncers})


def put_local_endpoint(maps: Any, ip: str = EP1, mac: str = EP1_MAC) -> None:
    """An endpoint on this host, behind "lo" (ifindex 1)."""
    maps.put(
        "endpoints",
        {
            "vni": VNI,
            "ip": ip,
            "mac": mac,
            "host": UT_HOST_IP,
            "host_mac": UT_HOST_MAC,
            "ifindex": 1,
            "gateway": False,
        },
    )


def put_remote_endpoint(
    maps: Any, ip: str = EP2, mac: str = EP2_MAC, host: str = H3, host_mac: str = H3_MAC
) -> None:
    """An endpoint programmed with its (other) host."""
    maps.put(
        "endpoints", {"vni": VNI, "ip": ip, "mac": mac, "host": host, "host_mac": host_mac, "gateway": False}
    )


def icmp(src: str = EP1, dst: str = EP2, smac: str = EP1_MAC, dmac: str = EP2_MAC) -> Any:
    return Ether(src=smac, dst=dmac) / IP(src=src, dst=dst, ttl=64) / ICMP(id=7, seq=1) / (b"x" * 32)


def arp_request(dst: str, src: str = EP1, smac: str = EP1_MAC) -> Any:
    return Ether(src=smac, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=smac, psrc=src, pdst=dst)


def geneve_in(inner: Any, *, src=H2, src_mac=H2_MAC, dst=UT_HOST_IP, dst_mac=UT_HOST_MAC, **kw: Any) -> Any:
    """``inner`` encapsulated by host ``src`` to this host (source-host option naming ``src``)."""
    return gnv.encap(
        inner, vni=kw.pop("vni", VNI), src_host=src, src_mac=src_mac, dst_host=dst, dst_mac=dst_mac, **kw
    )
