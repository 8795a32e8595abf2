"""transit_xdp (XDP on the substrate interface), one path per test, by BPF_PROG_TEST_RUN.

Parse: non-Geneve traffic passes to the kernel, malformed or misaddressed Geneve is dropped and
counted by reason. Decide and act: ARP for known endpoints is answered back to the asker,
packets for local endpoints are decapsulated (learning the sender's host), bouncers bounce,
dividers divide. See tests/dataplane/progtest.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether

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
    H4_MAC,
    VNI,
    arp_request,
    counters,
    geneve_in,
    icmp,
    put_local_endpoint,
    put_remote_endpoint,
    run,
    substrates,
)

# ---- parse: what is not ours, and Geneve we refuse ----------------------------------------------


@pytest.mark.parametrize(
    "pkt",
    [
        Ether() / IP(src=H2, dst=UT_HOST_IP) / TCP(dport=22),
        Ether() / IP(src=H2, dst=UT_HOST_IP) / UDP(dport=53),
        Ether() / ARP(pdst=UT_HOST_IP),
    ],
    ids=["tcp", "udp-53", "arp"],
)
def test_xdp_passes_non_geneve(progs: Any, maps: Any, pkt: Any) -> None:
    r = run(progs, "xdp_fd", pkt)
    assert r.verdict == "PASS" and r.data == bytes(pkt)
    assert counters(maps, "transit_xdp") == {"pass_non_geneve": 1}


def test_xdp_drops_geneve_not_for_this_host(progs: Any, maps: Any) -> None:
    r = run(progs, "xdp_fd", geneve_in(icmp(), dst=H3))
    assert r.verdict == "DROP"
    assert counters(maps, "transit_xdp") == {"drop_not_for_host": 1}


def test_xdp_drops_ttl_zero(progs: Any, maps: Any) -> None:
    r = run(progs, "xdp_fd", geneve_in(icmp(), ttl=0))
    assert r.verdict == "DROP"
    assert counters(maps, "transit_xdp") == {"drop_ttl": 1}


def test_xdp_drops_unknown_critical_option(progs: Any, maps: Any) -> None:
    put_local_endpoint(maps)
    pkt = icmp(src=EP2, dst=EP1)
    crit = geneve_in(
        pkt, options=[gnv.raw_option(0x0123, 0x80 | 5, b"abcd"), gnv.src_host_option(H2, H2_MAC)]
    )
    assert run(progs, "xdp_fd", crit).verdict == "DROP"
    assert counters(maps, "transit_xdp") == {"drop_critical_opt": 1}


def test_xdp_skips_unknown_plain_option(progs: Any, maps: Any) -> None:
    put_local_endpoint(maps)
    pkt = icmp(src=EP2, dst=EP1)
    plain = geneve_in(pkt, options=[gnv.raw_option(0x0123, 5, b"abcd"), gnv.src_host_option(H2, H2_MAC)])
    r = run(progs, "xdp_fd", plain)
    assert r.verdict == "REDIRECT" and bytes(Ether(r.data)[IP]) == bytes(pkt[IP])
    assert counters(maps, "transit_xdp") == {"redirect_decap": 1, "info_learn": 1}
    assert [(e["ip"], e["host"]) for e in maps.learned()] == [(EP2, H2)]  # the option after the unknown one


@pytest.mark.parametrize(
    "field,value", [("version", 1), ("proto", 0x0800)], ids=["version-1", "not-ethernet"]
)
def test_xdp_drops_bad_geneve_header(progs: Any, maps: Any, field: str, value: int) -> None:
    pkt = geneve_in(icmp())
    setattr(pkt[gnv.GENEVE], field, value)
    assert run(progs, "xdp_fd", pkt).verdict == "DROP"
    assert counters(maps, "transit_xdp") == {"drop_bad_geneve": 1}


def test_xdp_drops_truncated_options(progs: Any, maps: Any) -> None:
    raw = bytearray(bytes(geneve_in(icmp())))
    raw[14 + 20 + 8] = 0x3F  # claims 252 bytes of options
    r = run(progs, "xdp_fd", bytes(raw))
    assert r.verdict == "DROP"
    assert counters(maps, "transit_xdp") == {"drop_malformed": 1}


# ---- decide and act --------------------------------------------------------------------------


def test_xdp_decapsulates_to_local_endpoint(progs: Any, maps: Any) -> None:
    put_local_endpoint(maps)
    inner = icmp(
        src=EP3, dst=EP1, smac="0a:00:00:02:00:01", dmac="0a:00:00:01:00:01"
    )  # routed: dst MAC was a gateway's
    r = run(progs, "xdp_fd", geneve_in(inner))
    assert r.verdict == "REDIRECT"
    out = Ether(r.data)
    assert out.dst == EP1_MAC and out.src == "0a:00:00:02:00:01"
    assert bytes(out[IP]) == bytes(inner[IP])
    assert counters(maps, "transit_xdp") == {"redirect_decap": 1, "info_learn": 1}


def test_xdp_bounces_to_endpoint_host(progs: Any, maps: Any) -> None:
    substrates(maps, (H3, H3_MAC))
    maps.put("nets", {"vni": VNI, "cidr": "10.0.1.0/24", "bouncers": [UT_HOST_IP]})
    put_remote_endpoint(maps)
    inner = icmp()
    r = run(
        progs,
        "xdp_fd",
        geneve_in(
            inner,
            ttl=9,
            src="192.168.10.6",
            src_mac="02:00:00:00:0a:06",
            options=[gnv.src_host_option("192.168.10.6", "02:00:00:00:0a:06")],
        ),
    )
    assert r.verdict == "REDIRECT"
    d = gnv.decode(r.data)
    assert d["outer"]["ip"] == {"src": UT_HOST_IP, "dst": H3, "ttl": 8, "chksum_ok": True}
    assert d["outer"]["eth"] == {"src": UT_HOST_MAC, "dst": H3_MAC}
    assert d["options"][0]["host_ip"] == "192.168.10.6"  # the sender's host travels on
    assert r.data[gnv.ENCAP_LEN :] == bytes(inner)
    assert gnv.Ether(r.data)[gnv.UDP].chksum == 0
    assert counters(maps, "transit_xdp") == {"tx_bounce": 1}


def test_xdp_answers_arp_for_known_endpoint(progs: Any, maps: Any) -> None:
    substrates(maps, (H3, H3_MAC))
    put_remote_endpoint(maps)
    r = run(progs, "xdp_fd", geneve_in(arp_request(EP2)))
    assert r.verdict == "REDIRECT"
    d = gnv.decode(r.data)
    assert d["outer"]["ip"] == {"src": UT_HOST_IP, "dst": H2, "ttl": 64, "chksum_ok": True}
    assert d["outer"]["eth"]["dst"] == H2_MAC
    assert d["inner"]["arp"] == {"op": "reply", "sha": EP2_MAC, "spa": EP2, "tha": EP1_MAC, "tpa": EP1}
    assert d["inner"]["eth"]["dst"] == EP1_MAC
    assert d["options"][0]["host_ip"] == H3  # the asker learns EP2's host from the answer
    assert counters(maps, "transit_xdp") == {"tx_arp_reply": 1}


def test_xdp_divider_forwards_to_bouncer_of_target_subnet(progs: Any, maps: Any) -> None:
    substrates(maps, (H3, H3_MAC), (H4, H4_MAC))
    maps.put("vpcs", {"vni": VNI, "dividers": [UT_HOST_IP]})
    maps.put("nets", {"vni": VNI, "cidr": "10.0.0.0/16", "bouncers": [H3]})
    maps.put("nets", {"vni": VNI, "cidr": "10.0.2.0/24", "bouncers": [H4]})  # longer prefix wins
    r = run(progs, "xdp_fd", geneve_in(icmp(dst=EP3)))
    assert r.verdict == "REDIRECT"
    d = gnv.decode(r.data)
    assert d["outer"]["ip"]["dst"] == H4 and d["outer"]["ip"]["ttl"] == 63 and d["outer"]["ip"]["chksum_ok"]
    assert counters(maps, "transit_xdp") == {"tx_divide": 1}


def test_xdp_bouncer_sends_foreign_destination_to_divider(progs: Any, maps: Any) -> None:
    substrates(maps, (H4, H4_MAC))
    maps.put("vpcs", {"vni": VNI, "dividers": [H4]})
    maps.put("nets", {"vni": VNI, "cidr": "10.0.1.0/24", "bouncers": [UT_HOST_IP]})
    r = run(progs, "xdp_fd", geneve_in(icmp(dst=EP3)))
    assert r.verdict == "REDIRECT"
    assert gnv.decode(r.data)["outer"]["ip"]["dst"] == H4
    assert counters(maps, "transit_xdp") == {"tx_to_divider": 1}


def test_xdp_drops_unknown_endpoint_of_own_subnet(progs: Any, maps: Any) -> None:
    maps.put("vpcs", {"vni": VNI, "dividers": [H4]})
    maps.put("nets", {"vni": VNI, "cidr": "10.0.1.0/24", "bouncers": [UT_HOST_IP]})
    r = run(progs, "xdp_fd", geneve_in(icmp(dst="10.0.1.200")))
    assert r.verdict == "DROP"
    assert counters(maps, "transit_xdp") == {"drop_unknown_ep": 1}


def test_xdp_drops_instead_of_forwarding_with_ttl_one(progs: Any, maps: Any) -> None:
    substrates(maps, (H3, H3_MAC))
    put_remote_endpoint(maps)
    r = run(progs, "xdp_fd", geneve_in(icmp(), ttl=1))
    assert r.verdict == "DROP"
    assert counters(maps, "transit_xdp") == {"drop_ttl": 1}


def test_xdp_drops_without_route(progs: Any, maps: Any) -> None:
    r = run(progs, "xdp_fd", geneve_in(icmp(dst=EP3)))
    assert r.verdict == "DROP"
    assert counters(maps, "transit_xdp") == {"drop_no_route": 1}


def test_xdp_drops_arp_for_unknown_address(progs: Any, maps: Any) -> None:
    r = run(progs, "xdp_fd", geneve_in(arp_request("10.0.1.77")))
    assert r.verdict == "DROP"
    assert counters(maps, "transit_xdp") == {"drop_arp_unknown": 1}


def test_xdp_answers_arp_for_gateway_naming_this_host(progs: Any, maps: Any) -> None:
    gw, gw_mac = "10.0.1.1", "0a:00:00:01:00:01"
    maps.put("endpoints", {"vni": VNI, "ip": gw, "mac": gw_mac, "host": None, "gateway": True})
    r = run(progs, "xdp_fd", geneve_in(arp_request(gw)))
    assert r.verdict == "REDIRECT"
    d = gnv.decode(r.data)
    assert d["inner"]["arp"] == {"op": "reply", "sha": gw_mac, "spa": gw, "tha": EP1_MAC, "tpa": EP1}
    assert d["options"][0]["host_ip"] == UT_HOST_IP and d["options"][0]["host_mac"] == UT_HOST_MAC
    assert counters(maps, "transit_xdp") == {"tx_arp_reply": 1}


def test_xdp_answers_arp_without_option_back_to_outer_source(progs: Any, maps: Any) -> None:
    put_remote_endpoint(maps)
    r = run(progs, "xdp_fd", geneve_in(arp_request(EP2), src=H4, src_mac=H4_MAC, options=[]))
    assert r.verdict == "REDIRECT"
    d = gnv.decode(r.data)
    assert d["outer"]["ip"]["dst"] == H4 and d["outer"]["eth"]["dst"] == H4_MAC
    assert d["options"] == [] and d["inner"]["arp"]["op"] == "reply"
    assert counters(maps, "transit_xdp") == {"tx_arp_reply": 1}


def test_xdp_delivers_arp_reply_to_local_endpoint(progs: Any, maps: Any) -> None:
    put_local_endpoint(maps)
    reply = Ether(src=EP2_MAC, dst=EP1_MAC) / ARP(op=2, hwsrc=EP2_MAC, psrc=EP2, hwdst=EP1_MAC, pdst=EP1)
    r = run(progs, "xdp_fd", geneve_in(reply, options=[gnv.src_host_option(H3, H3_MAC)]))
    assert r.verdict == "REDIRECT" and r.data == bytes(reply)
    assert counters(maps, "transit_xdp") == {"redirect_decap": 1, "info_learn": 1}


def test_xdp_drops_when_next_host_has_no_substrate_entry(progs: Any, maps: Any) -> None:
    maps.put("vpcs", {"vni": VNI, "dividers": [UT_HOST_IP]})
    maps.put("nets", {"vni": VNI, "cidr": "10.0.2.0/24", "bouncers": [H4]})
    r = run(progs, "xdp_fd", geneve_in(icmp(dst=EP3)))
    assert r.verdict == "DROP"
    assert counters(maps, "transit_xdp") == {"drop_no_substrate": 1}
