"""transit_agent (XDP on an endpoint veth), one path per test, by BPF_PROG_TEST_RUN.

The agent resolves every frame the endpoint sends by its destination: same-host endpoints,
programmed and learned remote ones go straight there, everything else to a bouncer of the
source subnet (or, on the bouncer itself, to a divider); ARP for known addresses is answered on
the spot, spoofed sources and other ethertypes are dropped. See tests/dataplane/progtest.py.
"""

from __future__ import annotations

from typing import Any

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether

from ctl.transit import flowhash
from ctl.transit import geneve as gnv
from tests.dataplane.conftest import UT_HOST_IP, UT_HOST_MAC
from tests.dataplane.progtest import (
    EP1,
    EP1_MAC,
    EP2,
    EP2_MAC,
    EP3,
    H2,
    H2_MAC,
    H3,
    H3_MAC,
    H4,
    VNI,
    agent_setup,
    arp_request,
    counters,
    geneve_in,
    icmp,
    put_local_endpoint,
    put_remote_endpoint,
    run,
)


def test_agent_encapsulates_to_bouncer(progs: Any, maps: Any) -> None:
    agent_setup(maps, [H2])
    inner = icmp()
    r = run(progs, "agent_fd", inner)
    assert r.verdict == "REDIRECT"
    d = gnv.decode(r.data)
    assert d["geneve"] and d["vni"] == VNI and d["proto"] == "0x6558"
    assert d["outer"]["ip"] == {"src": UT_HOST_IP, "dst": H2, "ttl": 64, "chksum_ok": True}
    assert d["outer"]["eth"] == {"src": UT_HOST_MAC, "dst": H2_MAC}
    assert d["outer"]["udp"] == {"sport": flowhash.source_port(EP1, EP2), "dport": 6081}
    assert d["options"] == [
        {
            "class": "0xfff1",
            "type": "0x01",
            "critical": False,
            "name": "centaurus.src_host",
            "host_ip": UT_HOST_IP,
            "host_mac": UT_HOST_MAC,
        }
    ]
    assert r.data[gnv.ENCAP_LEN :] == bytes(inner)
    assert len(r.data) == len(bytes(inner)) + gnv.ENCAP_LEN
    assert counters(maps, "transit_agent") == {"redirect_bouncer": 1}


def test_agent_encapsulates_arp_to_bouncer(progs: Any, maps: Any) -> None:
    agent_setup(maps, [H2])
    r = run(progs, "agent_fd", arp_request(EP2))
    assert r.verdict == "REDIRECT"
    d = gnv.decode(r.data)
    assert d["outer"]["ip"]["dst"] == H2
    assert d["inner"]["arp"]["op"] == "request" and d["inner"]["arp"]["tpa"] == EP2


def test_agent_spreads_flows_over_bouncers_by_stable_hash(progs: Any, maps: Any) -> None:
    bouncers = [H2, H3, H4]
    agent_setup(maps, bouncers)
    seen = set()
    for i in range(2, 40):
        dst = f"10.0.1.{i + 10}"
        r = run(progs, "agent_fd", icmp(dst=dst))
        got = gnv.decode(r.data)["outer"]["ip"]["dst"]
        assert got == flowhash.pick(EP1, dst, bouncers)
        seen.add(got)
    assert seen == set(bouncers)


def test_agent_uses_programmed_remote_endpoint_directly(progs: Any, maps: Any) -> None:
    agent_setup(maps, [H2])
    put_remote_endpoint(maps)
    r = run(progs, "agent_fd", icmp())
    assert r.verdict == "REDIRECT"
    assert gnv.decode(r.data)["outer"]["ip"]["dst"] == H3
    assert counters(maps, "transit_agent") == {"redirect_direct": 1}


def test_agent_goes_direct_once_learned_from_option(progs: Any, maps: Any) -> None:
    """transit_xdp learns EP2's host from a decapsulated packet; transit_agent then uses it."""
    agent_setup(maps, [H2])
    put_local_endpoint(maps)
    reply = icmp(src=EP2, dst=EP1, smac=EP2_MAC, dmac=EP1_MAC)
    # Came via the bouncer H2, but the option names EP2's host H3.
    r = run(progs, "xdp_fd", geneve_in(reply, options=[gnv.src_host_option(H3, H3_MAC)]))
    assert r.verdict == "REDIRECT"
    assert maps.learned()[0] | {"age_s": 0} == {
        "vni": VNI,
        "ip": EP2,
        "host": H3,
        "host_mac": H3_MAC,
        "age_s": 0,
    }
    r = run(progs, "agent_fd", icmp())
    assert gnv.decode(r.data)["outer"]["ip"]["dst"] == H3
    assert gnv.decode(r.data)["outer"]["eth"]["dst"] == H3_MAC
    assert counters(maps, "transit_agent") == {"redirect_learned": 1}
    assert counters(maps, "transit_xdp") == {"redirect_decap": 1, "info_learn": 1}


def test_agent_delivers_same_host_endpoint_locally(progs: Any, maps: Any) -> None:
    agent_setup(maps, [H2])
    put_local_endpoint(maps, EP2, EP2_MAC)
    pkt = icmp(dmac="0a:aa:aa:aa:aa:aa")  # e.g. addressed to the gateway MAC
    r = run(progs, "agent_fd", pkt)
    assert r.verdict == "REDIRECT"
    assert Ether(r.data).dst == EP2_MAC and bytes(Ether(r.data)[IP]) == bytes(pkt[IP])
    assert counters(maps, "transit_agent") == {"redirect_local": 1}


def test_agent_answers_arp_for_known_endpoint(progs: Any, maps: Any) -> None:
    agent_setup(maps, [H2])
    maps.put(
        "endpoints", {"vni": VNI, "ip": "10.0.1.1", "mac": "0a:00:00:01:00:01", "host": None, "gateway": True}
    )
    r = run(progs, "agent_fd", arp_request("10.0.1.1"))
    assert r.verdict == "REDIRECT"
    a = Ether(r.data)[ARP]
    assert (a.op, a.psrc, a.hwsrc, a.pdst, a.hwdst) == (2, "10.0.1.1", "0a:00:00:01:00:01", EP1, EP1_MAC)
    assert Ether(r.data).dst == EP1_MAC


def test_agent_drops_spoofed_source(progs: Any, maps: Any) -> None:
    agent_setup(maps, [H2])
    r = run(progs, "agent_fd", icmp(src="10.0.1.99"))
    assert r.verdict == "DROP"
    assert counters(maps, "transit_agent") == {"drop_spoof": 1}


def test_agent_drops_unsupported_ethertype(progs: Any, maps: Any) -> None:
    agent_setup(maps, [H2])
    r = run(progs, "agent_fd", Ether(src=EP1_MAC) / IPv6() / UDP())
    assert r.verdict == "DROP"
    assert counters(maps, "transit_agent") == {"drop_unsupported": 1}


def test_agent_passes_veth_without_metadata(progs: Any, maps: Any) -> None:
    r = run(progs, "agent_fd", icmp())
    assert r.verdict == "PASS" and r.data == bytes(icmp())
    assert counters(maps, "transit_agent") == {"pass_no_md": 1}


def test_agent_drops_without_route(progs: Any, maps: Any) -> None:
    maps.put("agents", {"veth": "lo", "ifindex": 1, "vni": VNI, "ip": EP1, "mac": EP1_MAC})
    r = run(progs, "agent_fd", icmp())
    assert r.verdict == "DROP"
    assert counters(maps, "transit_agent") == {"drop_no_route": 1}


def test_agent_on_bouncer_host_sends_foreign_subnet_to_divider(progs: Any, maps: Any) -> None:
    agent_setup(maps, [UT_HOST_IP])
    maps.put("vpcs", {"vni": VNI, "dividers": [H4]})
    r = run(progs, "agent_fd", icmp(dst=EP3))
    assert r.verdict == "REDIRECT"
    assert gnv.decode(r.data)["outer"]["ip"]["dst"] == H4
    assert counters(maps, "transit_agent") == {"redirect_divider": 1}
