"""Operator tools: ``centaurusctl network trace POD_A POD_B`` and ``describe pod``'s Network
section, through the real CLI against a real API server and operator - on hollow transit
daemons (the path the programmed state gives: agent -> bouncer -> host) and on the 3-host
testbed with real transit daemons (the bouncer path first, the learned direct path after a
ping, with the counters that counted it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ctl.client import Client
from ctl.client.kubeconfig import add_context
from tests.cluster import ROOT, ApiServerProcess
from tests.network.conftest import Hollow, add_testbed_droplets, droplets, make, operator, phase

pytestmark = pytest.mark.slow


class Ctl:
    def __init__(self, api: ApiServerProcess, tmp: Path) -> None:
        cfg = tmp / "kubeconfig"
        add_context(cfg, "t", api.url, "admin", namespace="default", make_current=True)
        self.env = {**os.environ, "KUBECONFIG": str(cfg)}

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ctl", *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env=self.env,
        )

    def trace(self, a: str, b: str, *extra: str) -> dict[str, Any]:
        r = self("network", "trace", a, b, "-o", "json", *extra)
        assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr
        out: dict[str, Any] = json.loads(r.stdout)
        assert (r.returncode == 0) == out["delivered"], (r.returncode, out)
        return out

    def fails(self, *args: str, expect: str) -> None:
        r = self(*args)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 1 and len(lines) == 1 and expect in lines[0], (r.returncode, r.stderr)


async def _pod(client: Client, name: str, tenant: str | None = None) -> None:
    await client.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        },
        namespace="default",
        tenant=tenant,
    )


async def test_trace_and_describe_on_hollow_daemons(api: ApiServerProcess, tmp_path: Path) -> None:
    hollow = Hollow(tmp_path / "h", ["d1", "d2", "d3"])
    op = operator(api, tmp_path / "op.log")
    client = api.client()
    ctl = Ctl(api, tmp_path)
    try:
        await droplets(client, hollow)
        await make(client, "VPC", "v", {"cidr": "10.30.0.0/16"})
        await make(client, "Subnet", "s", {"vpc": "v", "cidr": "10.30.1.0/24"})
        (b,) = (await phase(client, "subnets", "s"))["status"]["bouncers"]
        h1, h2 = [d for d in ("d1", "d2", "d3") if d != b]
        for pod, host in (("pa", h1), ("pb", h2), ("pc", h1)):
            await _pod(client, pod)
            await make(
                client,
                "Endpoint",
                f"ep-{pod}",
                {"subnet": "s", "droplet": host, "veth": f"v{pod}", "pod": pod},
                namespace="default",
            )
        ips = {
            p: (await phase(client, "endpoints", f"ep-{p}", namespace="default"))["status"]["ip"]
            for p in ("pa", "pb", "pc")
        }
        # across hosts: agent on h1 -> the bouncer -> decapsulated on h2
        t = ctl.trace("pa", "pb")
        assert t["delivered"] and [(h["host"], h["action"]) for h in t["hops"]] == [
            (h1, "bouncer"),
            (b, "bounce"),
            (h2, "decap"),
        ], t
        assert t["dst"]["ip"] == ips["pb"] and t["hops"][2]["detail"] == "decapsulated to vpb"
        # same host: straight to the local veth
        t = ctl.trace("default/pa", "pc")
        assert [(h["host"], h["action"]) for h in t["hops"]] == [(h1, "local")], t
        r = ctl("network", "trace", "pa", "pb")
        assert (
            r.returncode == 0
            and "bouncer" in r.stdout
            and f"delivered to default/pb ({ips['pb']})" in r.stdout
        )
        # the bouncer lost the endpoint: the trace says where the path breaks (exit 1)
        hollow.client(b).delete("endpoints", f"{t['src']['vni']}/{ips['pb']}")
        t = ctl.trace("pa", "pb")
        assert not t["delivered"] and t["hops"][-1]["host"] == b and "drop_unknown_ep" in t["verdict"], t
        # describe pod: the Network section
        r = ctl("describe", "pod", "pa")
        assert r.returncode == 0, r.stderr
        net = r.stdout[r.stdout.index("Network:") :]
        assert f"IP:         {ips['pa']}/24" in net and "gateway 10.30.1.1" in net
        assert f"Host:       {h1} (" in net and f"bouncers: {b} (" in net and "Provisioned" in net
        # one-line errors
        await _pod(client, "plain")
        ctl.fails("network", "trace", "plain", "pb", expect='pod "plain" has no Endpoint')
        ctl.fails("network", "trace", "nope", "pb", expect='pod "nope" not found')
        ctl.fails("network", "trace", "pa", "pb", "-o", "xml", expect="unknown output format")
        r = ctl("describe", "pod", "plain")
        assert r.returncode == 0 and "Network:" not in r.stdout
    finally:
        await client.close()
        op.stop()
        hollow.stop()
        assert "Traceback" not in op.log(), op.log()[-4000:]


@pytest.mark.root
@pytest.mark.bpf
async def test_trace_on_testbed_bouncer_then_learned(api: ApiServerProcess, tmp_path: Path) -> None:
    from tests.dataplane.conftest import need_dataplane, need_tools

    need_dataplane()
    need_tools("ping", "ip")
    from agent.testbed.dataplane import Testbed
    from tests.network.test_e2e_testbed import _configure, _ping, _plumb

    client = api.client()
    ctl = Ctl(api, tmp_path)
    with Testbed(mode="auto") as tb:
        hosts = tb.add_hosts(["h1", "h2", "h3"])
        op = operator(api, tmp_path / "op.log")
        try:
            await add_testbed_droplets(client, tb, hosts)
            await make(client, "VPC", "v", {"cidr": "10.60.0.0/16"})
            await make(client, "Subnet", "s", {"vpc": "v", "cidr": "10.60.1.0/24"})
            (b,) = (await phase(client, "subnets", "s"))["status"]["bouncers"]
            h1, h2 = [h for h in hosts if f"{tb.prefix}-{h.name}" != b]
            for pod, host in (("pa", h1), ("pb", h2)):
                await _pod(client, pod)
                veth = _plumb(tb, pod, host)
                await make(
                    client,
                    "Endpoint",
                    pod,
                    {"subnet": "s", "droplet": f"{tb.prefix}-{host.name}", "veth": veth, "pod": pod},
                    namespace="default",
                )
            for pod in ("pa", "pb"):
                _configure(
                    tb,
                    pod,
                    (await phase(client, "endpoints", pod, namespace="default", timeout=60))["status"],
                )
            t = ctl.trace("pa", "pb")
            assert t["delivered"] and [h["action"] for h in t["hops"]] == ["bouncer", "bounce", "decap"], t
            assert t["hops"][1]["host"] == b and not t["learned"]
            assert _ping(tb, "pa", t["dst"]["ip"])
            # the reply taught pa's host pb's host: the path is direct now, and counted
            t = ctl.trace("pa", "pb")
            assert (
                t["delivered"] and t["learned"] and [h["action"] for h in t["hops"]] == ["learned", "decap"]
            ), t
            assert t["hops"][0]["detail"].startswith(f"learned direct path: to host {h2.ip}")
            assert (
                t["hops"][1]["counters"]["redirect_decap"] + t["hops"][1]["counters"]["redirect_decap_gso"]
                >= 1
            )
            r = ctl("network", "trace", "pa", "pb")
            assert r.returncode == 0 and "redirect_learned=" in r.stdout and "learned" in r.stdout, r.stdout
        finally:
            await client.close()
            op.stop()
            assert "Traceback" not in op.log(), op.log()[-4000:]
