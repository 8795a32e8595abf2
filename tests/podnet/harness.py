"""A VPC cluster on one machine for the pod-network tests and the pod startup benchmark.

:class:`PodnetCluster` is DESIGN §8's topology with the whole stack on it: a real API server
(embedded store, reached by the hosts over its Unix socket), the network operator
(``serve netoperator``), and N namespace hosts of :class:`agent.testbed.dataplane.Testbed`, each
with its real transit daemon (XDP/TC programs loaded) and its own node agent
(``serve agent --runtime runc --transitd SOCKET --substrate-itf sub0`` under ``nsenter --net``),
so every pod gets its VPC Endpoint. Tenants and their ``default`` Network are created through
the API; pods are created through the API with ``spec.nodeName``.

Everything it started is stopped and every namespace, link and pin removed on ``close``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent.cni.bridge import netns_name
from ctl.client import ApiError
from tests.agent.conftest import AgentProcess
from tests.cluster import ApiServerProcess, RoleProcess
from tests.helpers import eventually

RUNC = "/usr/sbin/runc"
BUSYBOX = "/bin/busybox"
ARKTOS = "arktos.centaurus.io/v1"


def need_podnet() -> None:
    """Skip unless root, bcc/bpffs/headers (the data plane), runc and busybox-static are here."""
    from tests.dataplane.conftest import need_dataplane, need_tools

    need_dataplane()
    need_tools("ip", "ping", "nsenter")
    if not Path(RUNC).exists():
        pytest.skip(f"runc is not installed at {RUNC}")
    if not Path(BUSYBOX).exists():
        pytest.skip("busybox-static is not installed")


def pod_netns(pod: dict[str, Any]) -> str:
    return f"/run/netns/{netns_name(pod['metadata']['uid'])}"


def in_pod(pod: dict[str, Any], *cmd: str, timeout: float = 15.0) -> subprocess.CompletedProcess[str]:
    """Run a host binary (busybox applets: ``busybox nc``) inside the pod's network namespace."""
    return subprocess.run(
        ["nsenter", f"--net={pod_netns(pod)}", *cmd], capture_output=True, text=True, timeout=timeout
    )


def ping(pod: dict[str, Any], ip: str) -> bool:
    return in_pod(pod, "ping", "-n", "-q", "-c", "1", "-W", "2", ip).returncode == 0


def tcp(pod: dict[str, Any], ip: str, port: int = 8080) -> str:
    """What a TCP connection from ``pod`` to ip:port answers (busybox nc; '' when nothing does)."""
    cp = in_pod(pod, BUSYBOX, "nc", "-w", "2", ip, str(port), timeout=10)
    return cp.stdout.strip()


def server_pod(name: str, node: str, network: str | None = None) -> dict[str, Any]:
    """A busybox pod answering every TCP connection on 8080 with ``hello-NAME``."""
    md: dict[str, Any] = {"name": name, "namespace": "default"}
    if network:
        md["labels"] = {"arktos.centaurus.io/network": network}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": md,
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "c",
                    "image": "busybox:latest",
                    "command": ["nc", "-ll", "-p", "8080", "-e", "echo", f"hello-{name}"],
                }
            ],
        },
    }


class PodnetCluster:
    def __init__(self, d: Path, hosts: int = 3, agent_args: list[str] | None = None) -> None:
        from agent.testbed.dataplane import Testbed
        from ctl.images.busybox import build_busybox_image
        from ctl.images.store import ImageError, ImageStore
        from tests.network.conftest import operator

        self.d = d
        self.data = d / "data"
        try:
            store = ImageStore(self.data)
            build_busybox_image(store)
            store.rootfs("busybox:latest")
        except ImageError as e:
            pytest.skip(f"cannot build the busybox image: {e}")
        self.api = ApiServerProcess(d / "api").start()
        self.agents: list[AgentProcess] = []
        self.tb: Any = None
        self.op: RoleProcess | None = None
        try:
            self.tb = Testbed(mode="auto")
            self.hosts = self.tb.add_hosts([f"h{i + 1}" for i in range(hosts)])
            self.op = operator(self.api, d / "netoperator.log")
            for h in self.hosts:
                self.agents.append(
                    AgentProcess(
                        [
                            "--server",
                            f"unix://{self.api.socket}",
                            "--node-name",
                            self.node(h),
                            "--runtime",
                            "runc",
                            "--data-dir",
                            str(self.data),
                            "--state-dir",
                            str(d / "state" / h.name),
                            "--endpoint-port",
                            "-1",
                            "--endpoint-socket",
                            str(d / f"agent-{h.name}.sock"),
                            "--transitd",
                            str(h.socket),
                            "--substrate-itf",
                            "sub0",
                            "--resync-seconds",
                            "5",
                            *(agent_args or []),
                        ],  # fmt: skip
                        d / f"agent-{h.name}.log",
                        netns=h.ns,
                    ).start()
                )
        except BaseException:
            self.close()
            raise
        self.client = self.api.client()

    def node(self, h: Any) -> str:
        return f"{self.tb.prefix}-{h.name}"

    @property
    def nodes(self) -> list[str]:
        return [self.node(h) for h in self.hosts]

    def logs(self) -> str:
        out = [f"--- {a.log_path.name} ---\n{a.log()[-3000:]}" for a in self.agents]
        if self.op is not None:
            out.append(f"--- netoperator ---\n{self.op.log()[-3000:]}")
        return "\n".join(out)

    async def wait_droplets(self, timeout: float = 60.0) -> None:
        async def ready() -> bool:
            lst = await self.client.list("droplets.mizar.centaurus.io")
            ok = {
                o["metadata"]["name"] for o in lst["items"] if (o.get("status") or {}).get("phase") == "Ready"
            }
            return set(self.nodes) <= ok

        await eventually(ready, timeout, 0.2, "droplets Ready", diag=self.logs, ignore=(Exception,))

    async def tenant(self, t: str, cidr: str) -> None:
        """Tenant ``t`` with namespace default and Network default (type mizar, ``cidr``), Ready."""
        for body, kw in (
            ({"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": t}}, {}),
            ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}, {"tenant": t}),
            (
                {"apiVersion": ARKTOS, "kind": "Network", "metadata": {"name": "default"},
                 "spec": {"type": "mizar", "cidr": cidr}},
                {"tenant": t},
            ),
        ):  # fmt: skip
            try:
                await self.client.create(body, **kw)
            except ApiError as e:
                if e.code != 409:
                    raise

        async def ready() -> bool:
            n = await self.client.get("networks", "default", tenant=t)
            return (n.get("status") or {}).get("phase") == "Ready"

        await eventually(ready, 60, 0.1, f"network default of {t} Ready", diag=self.logs)

    async def running(self, tenant: str, name: str, timeout: float = 90.0) -> dict[str, Any]:
        async def get() -> dict[str, Any] | None:
            p = await self.client.get("pods", name, "default", tenant)
            st = p.get("status") or {}
            return p if st.get("phase") == "Running" and st.get("podIP") else None

        r: dict[str, Any] = await eventually(
            get, timeout, 0.1, f"pod {tenant}/{name} Running", diag=self.logs
        )
        return r

    async def gone(self, tenant: str, name: str, timeout: float = 60.0) -> None:
        async def absent() -> bool:
            try:
                await self.client.get("pods", name, "default", tenant)
            except ApiError as e:
                return e.code == 404
            return False

        await eventually(absent, timeout, 0.1, f"pod {tenant}/{name} gone", diag=self.logs)

    def close(self) -> None:
        for a in self.agents:
            a.stop()
        if self.op is not None:
            self.op.stop()
        # pods still running (a failed test): their containers, then the namespaces
        for h in getattr(self, "hosts", []):
            root = self.d / "state" / h.name / "runc"
            if root.is_dir():
                ids = subprocess.run(
                    [RUNC, "--root", str(root), "list", "-q"], capture_output=True, text=True
                )
                for cid in ids.stdout.split():
                    subprocess.run([RUNC, "--root", str(root), "delete", "--force", cid], capture_output=True)
            for line in Path("/proc/self/mounts").read_text().splitlines():
                mnt = line.split()[1]
                if mnt.startswith(str(self.d / "state" / h.name) + "/"):
                    subprocess.run(["umount", "-l", mnt], capture_output=True)
            vpc = self.d / "state" / h.name / "vpc"
            for f in [*vpc.glob("*.json"), *vpc.glob("*.plumbed")] if vpc.is_dir() else []:
                subprocess.run(["ip", "netns", "delete", netns_name(f.stem)], capture_output=True)
        for p in Path("/run/netns").glob("cpod-*") if os.environ.get("CENTAURUS_PODNET_SWEEP") else []:
            subprocess.run(["ip", "netns", "delete", p.name], capture_output=True)
        if self.tb is not None:
            self.tb.close()
        self.api.stop()
        shutil.rmtree(self.d / "state", ignore_errors=True)

    async def delete_all_pods(self, timeout: float = 60.0) -> None:
        """Delete every pod (the agents tear their networks down); bounded."""
        lst = await self.client.list("pods", tenant="all")
        for p in lst["items"]:
            md = p["metadata"]
            try:
                await self.client.delete("pods", md["name"], md["namespace"], md["tenant"])
            except ApiError as e:
                if e.code != 404:
                    raise

        async def none_left() -> bool:
            return not (await self.client.list("pods", tenant="all"))["items"]

        await eventually(none_left, timeout, 0.2, "all pods deleted", diag=self.logs)

    async def aclose(self) -> None:
        try:
            await self.delete_all_pods()
        except Exception:  # noqa: BLE001 - close() below removes what the agents left
            pass
        await self.client.close()
        await asyncio.to_thread(self.close)
