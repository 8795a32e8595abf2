"""transit_agent_tc (TC on an endpoint veth), one path per test, by BPF_PROG_TEST_RUN.

The same decisions as transit_agent (lib/agent_path.h), but the encapsulation is done on the
skb (bpf_skb_adjust_room, ARP by bpf_skb_change_head) so that GSO survives; the bytes that come
out are the same 66-byte Geneve header in front of the endpoint's frame.
"""

from __future__ import annotations

from typing import Any

from ctl.transit import geneve as gnv
from tests.dataplane.conftest import UT_HOST_IP, UT_HOST_MAC
from tests.dataplane.progtest import (
    EP2,
    H2,
    H2_MAC,
    TC_ACT_REDIRECT,
    TC_ACT_SHOT,
    VNI,
    agent_setup,
    arp_request,
    counters,
    icmp,
    run_tc,
)


def test_tc_agent_encapsulates_ipv4_to_bouncer(progs: Any, maps: Any) -> None:
    agent_setup(maps, [H2])
    inner = icmp()
    rc, out = run_tc(progs, "agent_tc_fd", inner)
    assert rc == TC_ACT_REDIRECT
    d = gnv.decode(out)
    assert d["geneve"] and d["vni"] == VNI
    assert d["outer"]["ip"] == {"src": UT_HOST_IP, "dst": H2, "ttl": 64, "chksum_ok": True}
    assert d["outer"]["eth"] == {"src": UT_HOST_MAC, "dst": H2_MAC}
    assert d["options"][0]["host_ip"] == UT_HOST_IP
    assert out[gnv.ENCAP_LEN :] == bytes(inner)
    assert counters(maps, "transit_agent") == {"redirect_bouncer": 1}


def test_tc_agent_encapsulates_arp(progs: Any, maps: Any) -> None:
    agent_setup(maps, [H2])
    arp = arp_request(EP2)
    rc, out = run_tc(progs, "agent_tc_fd", arp)
    assert rc == TC_ACT_REDIRECT
    d = gnv.decode(out)
    assert d["outer"]["ip"]["dst"] == H2 and d["inner"]["arp"]["tpa"] == EP2
    assert out[gnv.ENCAP_LEN :] == bytes(arp)


def test_tc_agent_drops_spoofed_source(progs: Any, maps: Any) -> None:
    agent_setup(maps, [H2])
    rc, _ = run_tc(progs, "agent_tc_fd", icmp(src="10.0.1.99"))
    assert rc == TC_ACT_SHOT
    assert counters(maps, "transit_agent") == {"drop_spoof": 1}
