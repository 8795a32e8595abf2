"""The TC variant of the agent (``--agent-hook tc``) on a three-host test bed.

Same decisions as the XDP agent (shared lib/agent_path.h), but encapsulation happens on the
skb, so endpoints keep TSO/checksum offload, and with generic-mode XDP on the substrate the
GSO packets are decapsulated whole by transit_decap_tc. These tests run with offloads on at the
endpoints (the XDP-agent test bed turns TX checksum offload off) and check ping, a bulk TCP
transfer (through the GSO decap), UDP across hosts through a bouncer, and a daemon restart.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.dataplane.conftest import need_dataplane, need_tools
from tests.dataplane.test_multihost import counters, echo, fresh, nz


@pytest.fixture(scope="module")
def tb() -> Iterator[Any]:
    need_dataplane()
    need_tools("ip", "ping", "ethtool")
    from agent.testbed.dataplane import Testbed

    bed = Testbed(agent_hook="tc", mode="generic")
    try:
        h1, h2, h3 = bed.add_hosts(["h1", "h2", "h3"])
        bed.add_vpc(100, "10.0.0.0/16", dividers=[h3])
        bed.add_subnet(100, "10.0.1.0/24", bouncers=[h2])
        bed.add_endpoint("a", h1, 100, "10.0.1.5")
        bed.add_endpoint("b", h3, 100, "10.0.1.6")
        bed.add_endpoint("c", h1, 100, "10.0.1.7")
        yield bed
    finally:
        bed.close()


def test_agents_attached_at_tc(tb: Any) -> None:
    st = tb.hosts["h1"].client.status()
    assert st["agent_hook"] == "tc"
    agents = [a for a in st["attachments"] if a["ifname"] != "sub0"]
    assert [a["mode"] for a in st["attachments"] if a["ifname"] == "sub0"] == ["xdpgeneric"]
    assert len(agents) == 2 and all(a["mode"] == "tc" and a["program"] == "transit_agent_tc" for a in agents)
    # offloads stay on at the endpoint: that is the point of the TC hook
    out = tb.sh(tb.endpoints["a"], "ethtool", "-k", "eth0").stdout
    assert "tcp-segmentation-offload: on" in out


def test_ping_tcp_udp_through_bouncer(tb: Any) -> None:
    a, b, c = tb.endpoints["a"], tb.endpoints["b"], tb.endpoints["c"]
    fresh(tb)
    assert tb.ping(a, b.ip, count=2, wait=1)
    k = counters(tb)
    assert nz(k["h2"]).get("tx_arp_reply", 0) + nz(k["h2"]).get("tx_bounce", 0) >= 1
    assert (
        nz(k["h1"], "transit_agent").get("redirect_bouncer", 0)
        + nz(k["h1"], "transit_agent").get("redirect_learned", 0)
        >= 2
    )
    assert echo(tb, a, b, "tcp", 2_000_000) == "b"
    # the bulk transfer crossed as GSO packets, decapsulated whole by transit_decap_tc
    assert nz(counters(tb)["h3"]).get("redirect_decap_gso", 0) >= 1
    assert echo(tb, b, a, "udp", 1200, port=7001) == "a"
    assert tb.ping(a, c.ip)
    assert nz(counters(tb)["h1"], "transit_agent").get("redirect_local", 0) >= 1


def test_restart_keeps_ping_alive_with_tc_agent(tb: Any) -> None:
    a, b = tb.endpoints["a"], tb.endpoints["b"]
    ping = tb.popen(a, "ping", "-n", "-i", "0.05", "-c", "60", "-W", "1", b.ip, stdout=subprocess.PIPE)
    time.sleep(0.5)
    tb.hosts["h1"].restart_transitd()
    out, _ = ping.communicate(timeout=30)
    assert " 0% packet loss" in out, out
    assert tb.hosts["h1"].client.status()["agent_hook"] == "tc"
