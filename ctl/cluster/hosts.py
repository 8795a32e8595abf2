"""``init --hosts N``: N simulated hosts, each with its own transit daemon and node agent.

The hosts are network namespaces on one substrate bridge (DESIGN §8), made and removed by
``python -m agent.testbed.hosts`` (run as a process: ``ctl`` never imports ``agent``) and
recorded in ``DATA/hosts.json``. :func:`host_components` turns the record into supervised
processes, per host in this order: ``serve transitd --netns HOST --itf sub0`` (programs loaded,
RPC on ``DATA/run/transitd-HOST.sock``) and ``serve agent --netns HOST --transitd SOCKET
--substrate-itf sub0`` (VPC pod networking; its Droplet and Node are named after the host). The
control plane is reached over the API server's Unix socket, so nothing is routed between the
hosts and the machine. :func:`remove_hosts` first removes the hosts' pods (``serve
agent-cleanup`` in each namespace), then the namespaces, the bridge and the BPF pins.

:func:`demo` (``init --demo --hosts N``) creates tenants ``blue`` and ``red`` (their ``default``
Networks share 10.0.0.0/16), one busybox pod per tenant on every host, and prints where each
runs and the commands that show pods of one tenant reaching each other across hosts and never
the other tenant's.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from ctl.cluster.bootstrap import transitd_healthy
from ctl.cluster.supervisor import Component

HOSTS_MODULE = [sys.executable, "-m", "agent.testbed.hosts"]
DEMO_TENANTS = ("blue", "red")


class HostsError(Exception):
    pass


def record_path(data_dir: Path) -> Path:
    return data_dir / "hosts.json"


def ensure_hosts(data_dir: Path, n: int) -> list[dict[str, str]]:
    """Create the N host namespaces (or reuse those the record names); returns the hosts."""
    rec = record_path(data_dir)
    prefix = "c" + secrets.token_hex(2)
    if rec.exists():
        try:
            prefix = json.loads(rec.read_text())["prefix"]
        except (OSError, ValueError, KeyError):
            pass
    r = subprocess.run(
        [*HOSTS_MODULE, "up", "--hosts", str(n), "--prefix", prefix, "--record", str(rec)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if r.returncode != 0:
        raise HostsError((r.stderr.strip().splitlines() or ["cannot create the hosts"])[-1])
    hosts: list[dict[str, str]] = json.loads(rec.read_text())["hosts"]
    return hosts


def transitd_socket(data_dir: Path, ns: str) -> Path:
    return data_dir / "run" / f"transitd-{ns}.sock"


def host_components(
    data_dir: Path, hosts: list[dict[str, str]], ctl: list[str], agent_kubeconfig: Path, agent_args: list[str]
) -> list[Component]:
    comps: list[Component] = []
    for h in hosts:
        ns = h["ns"]
        sock = transitd_socket(data_dir, ns)
        comps.append(
            Component(
                f"transitd-{h['name']}",
                [*ctl, "serve", "transitd", "--host", ns, "--itf", "sub0", "--netns", ns,
                 "--socket", str(sock), "--state-dir", str(data_dir / "transitd" / ns), "--load", "auto"],
                health=lambda sock=sock: transitd_healthy(sock),  # type: ignore[misc]
                start_timeout=120.0,
                description=f"transit daemon of host {ns} ({h['ip']} on sub0)",
            )
        )  # fmt: skip
        comps.append(
            Component(
                f"agent-{h['name']}",
                [*ctl, "serve", "agent", "--kubeconfig", str(agent_kubeconfig), "--netns", ns,
                 "--node-name", ns, "--runtime", "runc", "--data-dir", str(data_dir),
                 "--state-dir", str(data_dir / "agent" / h["name"]), "--transitd", str(sock),
                 "--substrate-itf", "sub0", "--endpoint-port", "-1",
                 "--endpoint-socket", str(data_dir / f"agent-{h['name']}.sock"), *agent_args],
                settle=2.0,
                description=f"node agent {ns} (runc, VPC pods via its transitd)",
            )
        )  # fmt: skip
    return comps


def remove_hosts(data_dir: Path, ctl: list[str]) -> str:
    """Remove the hosts' pods, namespaces, bridge and pins; '' when there were none."""
    rec = record_path(data_dir)
    if not rec.exists():
        return ""
    try:
        hosts = json.loads(rec.read_text()).get("hosts", [])
    except (OSError, ValueError):
        hosts = []
    pods = 0
    for h in hosts:
        r = subprocess.run(
            [*ctl, "serve", "agent-cleanup", "--data-dir", str(data_dir), "--node-name", h["ns"],
             "--state-dir", str(data_dir / "agent" / h["name"]), "--vpc", "--netns", h["ns"], "--grace", "1"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if r.returncode == 0 and r.stdout.strip():
            pods += int((r.stdout.strip().splitlines()[-1].split() or ["0"])[0] or 0)
    r = subprocess.run(
        [*HOSTS_MODULE, "down", "--record", str(rec), "--state-root", str(data_dir / "agent")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if r.returncode != 0:
        raise HostsError((r.stderr.strip().splitlines() or ["cannot remove the hosts"])[-1])
    return f"{len(hosts)} host(s) removed ({pods} pod(s), {r.stdout.strip()})"


# ---------------------------------------------------------------------------------- demo


def demo_pod(name: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "vpc-demo"}},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {"name": "c", "image": "busybox:latest",
                 "command": ["nc", "-ll", "-p", "8080", "-e", "echo", f"hello from {name}"]}
            ],
        },
    }  # fmt: skip


async def demo(kubeconfig: Path, hosts: list[dict[str, str]], out: Any, timeout: float = 180.0) -> bool:
    """Pods of two tenants on every host; prints them and how to ping between them. True when all run."""
    from ctl.client import ApiError, Client
    from ctl.client.kubeconfig import load

    client = Client(load(kubeconfig))
    want = {(t, f"{t}-{h['name']}"): h["ns"] for t in DEMO_TENANTS for h in hosts}
    try:
        for t in DEMO_TENANTS:
            try:
                await client.create({"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": t}})
            except ApiError as e:
                if e.code != 409:
                    raise
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for (t, name), node in want.items():
            while True:  # the tenant controller provisions namespace default and Network default
                try:
                    await client.create(demo_pod(name, node), tenant=t)
                    break
                except ApiError as e:
                    if e.code == 409:
                        break
                    if loop.time() > deadline:
                        raise
                    await asyncio.sleep(0.5)
        pods: dict[tuple[str, str], dict[str, Any]] = {}
        while loop.time() < deadline and len(pods) < len(want):
            for t, name in want:
                try:
                    p = await client.get("pods", name, "default", t)
                except ApiError:
                    continue
                if (p.get("status") or {}).get("phase") == "Running" and p["status"].get("podIP"):
                    pods[(t, name)] = p
            await asyncio.sleep(0.5)
    finally:
        await client.close()
    out.print("[bold]pods of two tenants on VPC endpoints (both default Networks are 10.0.0.0/16)[/bold]")
    for (t, name), node in want.items():
        got = pods.get((t, name))
        ip = got["status"]["podIP"] if got else "-"
        out.print(f"  tenant {t:5} pod {name:10} host {node:12} podIP {ip}")
    blue = [pods[k] for k in pods if k[0] == "blue"]
    red = [pods[k] for k in pods if k[0] == "red"]
    if len(blue) >= 2:
        a, b = blue[0], blue[1]
        ns = "cpod-" + a["metadata"]["uid"].replace("-", "")[:12]
        out.print("  within a tenant, across hosts (answers):")
        out.print(f"    sudo nsenter --net=/run/netns/{ns} ping -c 2 {b['status']['podIP']}")
        out.print(f"    sudo nsenter --net=/run/netns/{ns} busybox nc -w 2 {b['status']['podIP']} 8080")
        if red:
            out.print("  the same address in the other tenant is a different pod: blue never reaches red:")
            out.print(f"    (red's {red[-1]['metadata']['name']} also has {red[-1]['status']['podIP']}; "
                      f"from blue, that address is blue's own pod or nothing)")  # fmt: skip
        out.print("  endpoints: centaurusctl get endpoints.mizar.centaurus.io -A --tenant blue; "
                  "droplets: centaurusctl get droplets")  # fmt: skip
    return len(pods) == len(want)
