"""transit_decap_tc (TC on the substrate interface), one path per test, by BPF_PROG_TEST_RUN.

The program takes over Geneve GSO packets that generic-mode XDP passes on (longer than the
MTU): a packet of transit_agent's layout for a local endpoint is decapsulated whole (the 66
bytes after the outer Ethernet header removed, the inner Ethernet header put in front with the
endpoint's MAC) and redirected to its veth, learning the sender's host as transit_xdp does
(lib/learn.h). Non-GSO skbs and Geneve for other hosts are the kernel's; a GSO packet of
another layout or for a non-local endpoint is dropped and counted. The GSO state comes from the
test run's ``__sk_buff`` context (``gso_segs``).
"""

from __future__ import annotations

from typing import Any

from scapy.layers.inet import IP
from scapy.layers.l2 import Ether

from ctl.transit import geneve as gnv
from tests.dataplane.conftest import UT_HOST_IP, UT_HOST_MAC
from tests.dataplane.progtest import (
    EP1,
    EP1_MAC,
    EP2,
    EP2_MAC,
    H3,
    H3_MAC,
    TC_ACT_OK,
    TC_ACT_REDIRECT,
    TC_ACT_SHOT,
    VNI,
    arp_request,
    counters,
    geneve_in,
    icmp,
    put_local_endpoint,
    put_remote_endpoint,
    run_tc,
)

GSO_SEGS = 4


def from_ep2(**kw: Any) -> Any:
    """EP2 (on H3) to EP1 (here), encapsulated by H3 as transit_agent_tc does."""
    inner = icmp(src=EP2, dst=EP1, smac=EP2_MAC, dmac="0a:00:00:01:00:01")  # to the gateway MAC
    return inner, geneve_in(inner, src=H3, src_mac=H3_MAC, **kw)


def test_decap_tc_decapsulates_gso_packet_to_local_endpoint(progs: Any, maps: Any) -> None:
    put_local_endpoint(maps)
    inner, pkt = from_ep2()
    rc, out = run_tc(progs, "decap_tc_fd", pkt, gso_segs=GSO_SEGS)
    assert rc == TC_ACT_REDIRECT
    assert len(out) == len(bytes(pkt)) - gnv.ENCAP_LEN
    e = Ether(out)
    assert (e.dst, e.src, e.type) == (EP1_MAC, EP2_MAC, 0x0800)
    assert bytes(e[IP]) == bytes(inner[IP])
    assert counters(maps, "transit_xdp") == {"redirect_decap_gso": 1, "info_learn": 1}
    assert [(x["vni"], x["ip"], x["host"], x["host_mac"]) for x in maps.learned()] == [(VNI, EP2, H3, H3_MAC)]


def test_decap_tc_learns_once_then_only_refreshes_after_a_quarter_ttl(progs: Any, maps: Any) -> None:
    put_local_endpoint(maps)
    _, pkt = from_ep2()
    for _ in range(3):
        assert run_tc(progs, "decap_tc_fd", pkt, gso_segs=GSO_SEGS)[0] == TC_ACT_REDIRECT
    assert counters(maps, "transit_xdp") == {"redirect_decap_gso": 3, "info_learn": 1}


def test_decap_tc_does_not_learn_this_host(progs: Any, maps: Any) -> None:
    put_local_endpoint(maps)
    inner, _ = from_ep2()
    pkt = geneve_in(inner, src=H3, src_mac=H3_MAC, options=[gnv.src_host_option(UT_HOST_IP, UT_HOST_MAC)])
    rc, _ = run_tc(progs, "decap_tc_fd", pkt, gso_segs=GSO_SEGS)
    assert rc == TC_ACT_REDIRECT
    assert counters(maps, "transit_xdp") == {"redirect_decap_gso": 1}
    assert maps.learned() == []


def test_decap_tc_leaves_non_gso_packet_to_the_kernel(progs: Any, maps: Any) -> None:
    put_local_endpoint(maps)
    _, pkt = from_ep2()
    rc, out = run_tc(progs, "decap_tc_fd", pkt)
    assert rc == TC_ACT_OK and out == bytes(pkt)
    assert counters(maps, "transit_xdp") == {}


def test_decap_tc_leaves_geneve_for_another_host_to_the_kernel(progs: Any, maps: Any) -> None:
    put_local_endpoint(maps)
    _, pkt = from_ep2(dst=H3)
    rc, out = run_tc(progs, "decap_tc_fd", pkt, gso_segs=GSO_SEGS)
    assert rc == TC_ACT_OK and out == bytes(pkt)
    assert counters(maps, "transit_xdp") == {}


def test_decap_tc_drops_gso_packet_for_non_local_endpoint(progs: Any, maps: Any) -> None:
    put_remote_endpoint(maps, EP1, EP1_MAC)
    _, pkt = from_ep2()
    rc, _ = run_tc(progs, "decap_tc_fd", pkt, gso_segs=GSO_SEGS)
    assert rc == TC_ACT_SHOT
    assert counters(maps, "transit_xdp") == {"drop_gso_not_local": 1}


def test_decap_tc_drops_gso_packet_of_another_layout(progs: Any, maps: Any) -> None:
    """Only transit_agent's layout travels as GSO: one source-host option, IPv4 inside."""
    put_local_endpoint(maps)
    inner, _ = from_ep2()
    pkt = geneve_in(inner, src=H3, src_mac=H3_MAC, options=[gnv.raw_option(0x0123, 5, b"abcdefghijkl")])
    rc, _ = run_tc(progs, "decap_tc_fd", pkt, gso_segs=GSO_SEGS)
    assert rc == TC_ACT_SHOT
    assert counters(maps, "transit_xdp") == {"drop_bad_geneve": 1}


def test_decap_tc_drops_gso_arp(progs: Any, maps: Any) -> None:
    put_local_endpoint(maps)
    pkt = geneve_in(arp_request(EP1, src=EP2, smac=EP2_MAC), src=H3, src_mac=H3_MAC)
    rc, _ = run_tc(progs, "decap_tc_fd", pkt, gso_segs=GSO_SEGS)
    assert rc == TC_ACT_SHOT
    assert counters(maps, "transit_xdp") == {"drop_bad_geneve": 1}
