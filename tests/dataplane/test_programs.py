"""Each path of transit_xdp and transit_agent, run on scapy-built packets with BPF_PROG_TEST_RUN.

One scenario per test: the maps are programmed through the same TransitMaps code the daemon
uses, a packet is crafted, the real program runs once in the kernel, and the verdict, the bytes
that come out (decoded with ctl.transit.geneve, checksums included) and the counter for that
path are checked. The unit-test host is 192.168.10.1; other "hosts" exist only as map entries.
"""

from __future__ import annotations

from typing import Any

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether

from ctl.transit import flowhash
from ctl.transit import geneve as gnv
from tests.dataplane.conftest import UT_HOST_IP, UT_HOST_MAC

H2, H2_MAC = "192.168.10.2", "02:00:00:00:0a:02"
H3, H3_MAC = "192.168.10.3", "02:00:00:00:0a:03"
H4, H4_MAC = "192.168.10.4", "02:00:00:00:0a:04"
VNI = 100
EP1, EP1_MAC = "10.0.1.5", "0a:00:00:01:00:05"  # on this host, behind "lo" (ifindex 1)
EP2, EP2_MAC = "10.0.1.7", "0a:00:00:01:00:07"  # on H3
EP3, EP3_MAC = "10.0.2.9", "0a:00:00:02:00:09"  # other subnet


def run(progs: Any, fd_name: str, pkt: Any, ifindex: int = 1) -> Any:
    from agent.transit.loader import test_run

    return test_run(getattr(progs, fd_name), bytes(pkt), ingress_ifindex=ifindex)


def counters(maps: Any, prog: str) -> dict[str, int]:
    return {k: v for k, v in maps.counters()[prog].items() if v}


def substrates(maps: Any, *hosts: tuple[str, str]) -> None:
    for ip, mac in hosts:
        maps.put("substrates", {"ip": ip, "mac": mac})


def agent_setup(maps: Any, bouncers: list[str]) -> None:
    substrates(maps, (H2, H2_MAC), (H3, H3_MAC), (H4, H4_MAC))
    maps.put("agents", {"veth": "lo", "ifindex": 1, "vni": VNI, "ip": EP1, "mac": EP1_MAC})
    maps.put("nets", {"vni": VNI, "cidr": "10.0.1.0/24", "bouncers": bouncers})


def icmp(src: str = EP1, dst: str = EP2, smac: str = EP1_MAC, dmac: str = EP2_MAC) -> Any:
    return Ether(src=smac, dst=dmac) / IP(src=src, dst=dst, ttl=64) / ICMP(id=7, seq=1) / (b"x" * 32)


def geneve_in(inner: Any, *, src=H2, src_mac=H2_MAC, dst=UT_HOST_IP, dst_mac=UT_HOST_MAC, **kw: Any) -> Any:
    return gnv.encap(
        inner, vni=kw.pop("vni", VNI), src_host=src, src_mac=src_mac, dst_host=dst, dst_mac=dst_mac, **kw
    )


# ---- transit_agent -----------------------------------------------------------------------------


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
    arp = Ether(src=EP1_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=EP1_MAC, psrc=EP1, pdst=EP2)
    r = run(progs, "agent_fd", arp)
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
    maps.put(
        "endpoints", {"vni": VNI, "ip": EP2, "mac": EP2_MAC, "host": H3, "host_mac": H3_MAC, "gateway": False}
    )
    r = run(progs, "agent_fd", icmp())
    assert r.verdict == "REDIRECT"
    assert gnv.decode(r.data)["outer"]["ip"]["dst"] == H3
    assert counters(maps, "transit_agent") == {"redirect_direct": 1}


def test_agent_goes_direct_once_learned_from_option(progs: Any, maps: Any) -> None:
    """transit_xdp learns EP2's host from a decapsulated packet; transit_agent then uses it."""
    agent_setup(maps, [H2])
    maps.put(
        "endpoints",
        {
            "vni": VNI,
            "ip": EP1,
            "mac": EP1_MAC,
            "host": UT_HOST_IP,
            "host_mac": UT_HOST_MAC,
            "ifindex": 1,
            "gateway": False,
        },
    )
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
    maps.put(
        "endpoints",
        {
            "vni": VNI,
            "ip": EP2,
            "mac": EP2_MAC,
            "host": UT_HOST_IP,
            "host_mac": UT_HOST_MAC,
            "ifindex": 1,
            "gateway": False,
        },
    )
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
    arp = Ether(src=EP1_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=EP1_MAC, psrc=EP1, pdst="10.0.1.1")
    r = run(progs, "agent_fd", arp)
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


# ---- transit_xdp -------------------------------------------------------------------------------


def test_xdp_passes_non_geneve(progs: Any, maps: Any) -> None:
    for pkt in (
        Ether() / IP(src=H2, dst=UT_HOST_IP) / TCP(dport=22),
        Ether() / IP(src=H2, dst=UT_HOST_IP) / UDP(dport=53),
        Ether() / ARP(pdst=UT_HOST_IP),
    ):
        r = run(progs, "xdp_fd", pkt)
        assert r.verdict == "PASS" and r.data == bytes(pkt)
    assert counters(maps, "transit_xdp") == {"pass_non_geneve": 3}


def test_xdp_decapsulates_to_local_endpoint(progs: Any, maps: Any) -> None:
    maps.put(
        "endpoints",
        {
            "vni": VNI,
            "ip": EP1,
            "mac": EP1_MAC,
            "host": UT_HOST_IP,
            "host_mac": UT_HOST_MAC,
            "ifindex": 1,
            "gateway": False,
        },
    )
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
    maps.put(
        "endpoints", {"vni": VNI, "ip": EP2, "mac": EP2_MAC, "host": H3, "host_mac": H3_MAC, "gateway": False}
    )
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
    maps.put(
        "endpoints", {"vni": VNI, "ip": EP2, "mac": EP2_MAC, "host": H3, "host_mac": H3_MAC, "gateway": False}
    )
    arp = Ether(src=EP1_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=EP1_MAC, psrc=EP1, pdst=EP2)
    r = run(progs, "xdp_fd", geneve_in(arp))
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


def test_xdp_drops_geneve_not_for_this_host(progs: Any, maps: Any) -> None:
    r = run(progs, "xdp_fd", geneve_in(icmp(), dst=H3))
    assert r.verdict == "DROP"
    assert counters(maps, "transit_xdp") == {"drop_not_for_host": 1}


def test_xdp_drops_ttl_zero(progs: Any, maps: Any) -> None:
    r = run(progs, "xdp_fd", geneve_in(icmp(), ttl=0))
    assert r.verdict == "DROP"
    assert counters(maps, "transit_xdp") == {"drop_ttl": 1}


def test_xdp_drops_instead_of_forwarding_with_ttl_one(progs: Any, maps: Any) -> None:
    substrates(maps, (H3, H3_MAC))
    maps.put(
        "endpoints", {"vni": VNI, "ip": EP2, "mac": EP2_MAC, "host": H3, "host_mac": H3_MAC, "gateway": False}
    )
    r = run(progs, "xdp_fd", geneve_in(icmp(), ttl=1))
    assert r.verdict == "DROP"
    assert counters(maps, "transit_xdp") == {"drop_ttl": 1}


def test_xdp_drops_unknown_critical_option_but_skips_unknown_plain_one(progs: Any, maps: Any) -> None:
    maps.put(
        "endpoints",
        {
            "vni": VNI,
            "ip": EP1,
            "mac": EP1_MAC,
            "host": UT_HOST_IP,
            "host_mac": UT_HOST_MAC,
            "ifindex": 1,
            "gateway": False,
        },
    )
    pkt = icmp(src=EP2, dst=EP1)
    crit = geneve_in(
        pkt, options=[gnv.raw_option(0x0123, 0x80 | 5, b"abcd"), gnv.src_host_option(H2, H2_MAC)]
    )
    assert run(progs, "xdp_fd", crit).verdict == "DROP"
    plain = geneve_in(pkt, options=[gnv.raw_option(0x0123, 5, b"abcd"), gnv.src_host_option(H2, H2_MAC)])
    r = run(progs, "xdp_fd", plain)
    assert r.verdict == "REDIRECT" and bytes(Ether(r.data)[IP]) == bytes(pkt[IP])
    assert counters(maps, "transit_xdp") == {"drop_critical_opt": 1, "redirect_decap": 1, "info_learn": 1}


def test_xdp_drops_bad_geneve_header(progs: Any, maps: Any) -> None:
    pkt = geneve_in(icmp())
    pkt[gnv.GENEVE].version = 1
    assert run(progs, "xdp_fd", pkt).verdict == "DROP"
    pkt = geneve_in(icmp())
    pkt[gnv.GENEVE].proto = 0x0800
    assert run(progs, "xdp_fd", pkt).verdict == "DROP"
    assert counters(maps, "transit_xdp") == {"drop_bad_geneve": 2}


def test_xdp_drops_truncated_options(progs: Any, maps: Any) -> None:
    raw = bytearray(bytes(geneve_in(icmp())))
    raw[14 + 20 + 8] = 0x3F  # claims 252 bytes of options
    r = run(progs, "xdp_fd", bytes(raw))
    assert r.verdict == "DROP"
    assert counters(maps, "transit_xdp") == {"drop_malformed": 1}


def test_xdp_drops_without_route(progs: Any, maps: Any) -> None:
    r = run(progs, "xdp_fd", geneve_in(icmp(dst=EP3)))
    assert r.verdict == "DROP"
    assert counters(maps, "transit_xdp") == {"drop_no_route": 1}


def test_xdp_drops_arp_for_unknown_address(progs: Any, maps: Any) -> None:
    arp = Ether(src=EP1_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=EP1_MAC, psrc=EP1, pdst="10.0.1.77")
    r = run(progs, "xdp_fd", geneve_in(arp))
    assert r.verdict == "DROP"
    assert counters(maps, "transit_xdp") == {"drop_arp_unknown": 1}


# ---- transit_agent_tc (same decisions, skb encapsulation that keeps GSO) ------------------------


def run_tc(progs: Any, pkt: Any) -> tuple[int, bytes]:
    from agent.transit.loader import test_run

    r = test_run(progs.agent_tc_fd, bytes(pkt))  # skb->ifindex is loopback (1) in a test run
    return r.retval, r.data


TC_ACT_SHOT, TC_ACT_REDIRECT = 2, 7


def test_tc_agent_encapsulates_ipv4_to_bouncer(progs: Any, maps: Any) -> None:
    agent_setup(maps, [H2])
    inner = icmp()
    rc, out = run_tc(progs, inner)
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
    arp = Ether(src=EP1_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=EP1_MAC, psrc=EP1, pdst=EP2)
    rc, out = run_tc(progs, arp)
    assert rc == TC_ACT_REDIRECT
    d = gnv.decode(out)
    assert d["outer"]["ip"]["dst"] == H2 and d["inner"]["arp"]["tpa"] == EP2
    assert out[gnv.ENCAP_LEN :] == bytes(arp)


def test_tc_agent_drops_spoofed_source(progs: Any, maps: Any) -> None:
    agent_setup(maps, [H2])
    rc, _ = run_tc(progs, icmp(src="10.0.1.99"))
    assert rc == TC_ACT_SHOT
    assert counters(maps, "transit_agent") == {"drop_spoof": 1}
