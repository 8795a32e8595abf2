"""``centaurusctl init --hosts 3 --demo`` and ``down``, as a user runs them.

The real CLI in a fresh data dir: three namespace hosts on one substrate bridge, each with its
supervised transit daemon and node agent; the demo puts pods of two tenants on every host. The
test pings and TCP-connects between the demo's pods across hosts (from their namespaces), then
``down`` must leave nothing: no host or pod namespace, no bridge, no BPF pin, no process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster import ROOT
from tests.podnet.harness import BUSYBOX, need_podnet

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.bpf]


def _ctl(*args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "ctl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


def _in(ns: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nsenter", f"--net=/run/netns/{ns}", *cmd], capture_output=True, text=True, timeout=20
    )


def test_init_hosts_demo_and_down(tmp_path: Path) -> None:
    need_podnet()
    d = tmp_path / "cluster"
    r = _ctl("init", "--data-dir", str(d), "--hosts", "3", "--port", "0", "--detach", "--demo")
    try:
        out = r.stdout + r.stderr
        assert r.returncode == 0, out
        rec = json.loads((d / "hosts.json").read_text())
        hosts = [h["ns"] for h in rec["hosts"]]
        assert len(hosts) == 3
        rows = [ln.split() for ln in out.splitlines() if ln.strip().startswith("tenant ")]
        pods = {(f[1], f[3]): (f[5], f[7]) for f in rows}  # (tenant, pod) -> (host, podIP)
        assert len(pods) == 6 and all(ip != "-" for _, ip in pods.values()), out
        assert {h for h, _ in pods.values()} == set(hosts)
        # the printed commands work: across hosts within a tenant
        ping = next(ln.split() for ln in out.splitlines() if "nsenter" in ln and "ping" in ln)
        ns = ping[2].split("/")[-1]
        assert _in(ns, "ping", "-c", "1", "-W", "2", ping[-1]).returncode == 0, out
        blue = {p: v for (t, p), v in pods.items() if t == "blue"}
        owner = next(p for p, (_, ip) in blue.items() if ip == ping[-1])
        assert _in(ns, BUSYBOX, "nc", "-w", "2", ping[-1], "8080").stdout.strip() == f"hello from {owner}"
        nodes = _ctl("get", "nodes", "--kubeconfig", str(d / "kubeconfig"), timeout=30)
        ready = {ln.split()[0] for ln in nodes.stdout.splitlines()[1:] if ln.split()[1:2] == ["Ready"]}
        assert ready == set(hosts), nodes.stdout + nodes.stderr
    finally:
        down = _ctl("down", "--data-dir", str(d), timeout=200)
    assert down.returncode == 0, down.stdout + down.stderr
    sup_log = (d / "logs" / "supervisor.log").read_text()  # the supervisor removed them as it stopped
    assert "3 host(s) removed (6 pod(s)" in sup_log, sup_log[-3000:]
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(h in left for h in hosts) and ns not in left, left
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert rec["bridge"] not in links
    assert not any((Path("/sys/fs/bpf/centaurus") / h).exists() for h in hosts)
    assert not (d / "hosts.json").exists()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(d) not in ps, [ln for ln in ps.splitlines() if str(d) in ln]
