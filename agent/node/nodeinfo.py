"""What a node says about itself: the Node object, its conditions and the host readings behind them.

The agent registers a ``Node`` (capacity, allocatable, addresses, labels, nodeInfo, daemonEndpoints)
and keeps its status conditions current. For a real node the numbers come from the host (``/proc``,
``os.statvfs``, ``uname``); a hollow node gets fixed, plausible values so that thousands of them cost
nothing to describe.

Conditions follow kubelet's eviction signals with its default hard thresholds:

* ``MemoryPressure``  when ``MemAvailable`` < 100 MiB,
* ``DiskPressure``    when the data directory's filesystem has < 10 % free space or < 5 % free inodes,
* ``PIDPressure``     when the number of processes exceeds 90 % of ``kernel.pid_max``,
* ``Ready``           when the runtime answered its last health check (and the other checks ran).

Each condition keeps its ``lastTransitionTime`` while its status is unchanged; ``lastHeartbeatTime``
moves with every report.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ctl.types.meta import now_rfc3339

KUBELET_VERSION = "v1.32.0-centaurus"
MEMORY_EVICTION_BYTES = 100 * 1024 * 1024
DISK_FREE_FRACTION = 0.10
INODE_FREE_FRACTION = 0.05
PID_FRACTION = 0.90

ANN_AGENT_ENDPOINT = "centaurus.io/agent-endpoint"
LABEL_RUNTIME = "centaurus.io/runtime"
LABEL_HOLLOW = "centaurus.io/hollow"


def now_micro() -> str:
    """RFC 3339 with microseconds (``MicroTime``, as Lease.spec.renewTime uses)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class HostReadings:
    """One sample of the host's pressure signals."""

    mem_total: int = 0
    mem_available: int = 0
    disk_free_fraction: float = 1.0
    inode_free_fraction: float = 1.0
    pids: int = 0
    pid_max: int = 4194304

    @property
    def memory_pressure(self) -> bool:
        return self.mem_total > 0 and self.mem_available < MEMORY_EVICTION_BYTES

    @property
    def disk_pressure(self) -> bool:
        return self.disk_free_fraction < DISK_FREE_FRACTION or self.inode_free_fraction < INODE_FREE_FRACTION

    @property
    def pid_pressure(self) -> bool:
        return self.pids > PID_FRACTION * self.pid_max


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                k, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    out[k] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    except OSError:
        pass
    return out


def read_host(data_dir: Path) -> HostReadings:
    """Sample memory, disk, inode and PID usage of this host."""
    r = HostReadings()
    mi = _meminfo()
    r.mem_total = mi.get("MemTotal", 0)
    r.mem_available = mi.get("MemAvailable", mi.get("MemFree", 0))
    p = data_dir if data_dir.exists() else Path("/")
    try:
        sv = os.statvfs(p)
        if sv.f_blocks:
            r.disk_free_fraction = sv.f_bavail / sv.f_blocks
        if sv.f_files:
            r.inode_free_fraction = sv.f_favail / sv.f_files
    except OSError:
        pass
    try:
        r.pids = sum(1 for d in os.listdir("/proc") if d.isdigit())
        r.pid_max = int(Path("/proc/sys/kernel/pid_max").read_text().strip())
    except (OSError, ValueError):
        pass
    return r


def os_image() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def runc_version(path: str = "/usr/sbin/runc") -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    for line in out.splitlines():
        if line.startswith("runc version"):
            return line.split()[-1]
    return "unknown"


def primary_ip() -> str:
    """The address this host would use to reach the outside (no packet is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: connect() on UDP only picks a route
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def parse_labels(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` -> dict; raises ValueError on a malformed item."""
    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in (text or "").split(","))):
        k, eq, v = item.partition("=")
        if not eq or not k:
            raise ValueError(f"bad label {item!r}: expected key=value")
        out[k] = v
    return out


def parse_taints(text: str) -> list[dict[str, str]]:
    """``key=value:Effect,key2:Effect`` -> taint list; raises ValueError on a malformed item."""
    out = []
    for item in filter(None, (s.strip() for s in (text or "").split(","))):
        kv, colon, effect = item.rpartition(":")
        if not colon or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise ValueError(
                f"bad taint {item!r}: expected key[=value]:NoSchedule|PreferNoSchedule|NoExecute"
            )
        k, _, v = kv.partition("=")
        if not k:
            raise ValueError(f"bad taint {item!r}: empty key")
        t = {"key": k, "effect": effect}
        if v:
            t["value"] = v
        out.append(t)
    return out


@dataclass
class NodeSpec:
    """Everything needed to render this node's Node object."""

    name: str
    internal_ip: str
    hostname: str
    cpu: str
    memory: str
    pods: int
    runtime: str  # runc | hollow
    runtime_version: str
    os_image: str
    kernel: str
    architecture: str
    labels: dict[str, str]
    taints: list[dict[str, str]]
    pod_cidr: str
    endpoint_port: int
    endpoint_url: str
    instance_type: str
    hollow: bool = False
    vm_runtime: str = ""

    def node_object(self) -> dict[str, Any]:
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": self.architecture,
            "node.kubernetes.io/instance-type": self.instance_type,
            LABEL_RUNTIME: self.runtime,
            **({LABEL_HOLLOW: "true"} if self.hollow else {}),
            **({"centaurus.io/vm-runtime": "libvirt"} if self.vm_runtime else {}),
            **self.labels,
        }
        annotations = {ANN_AGENT_ENDPOINT: self.endpoint_url} if self.endpoint_url else {}
        spec: dict[str, Any] = {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]}
        if self.taints:
            spec["taints"] = self.taints
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": labels, "annotations": annotations},
            "spec": spec,
        }

    def status(self, conditions: list[dict[str, Any]]) -> dict[str, Any]:
        res = {"cpu": self.cpu, "memory": self.memory, "pods": str(self.pods), "ephemeral-storage": "100Gi"}
        return {
            "capacity": dict(res),
            "allocatable": dict(res),
            "addresses": [
                {"type": "InternalIP", "address": self.internal_ip},
                {"type": "Hostname", "address": self.hostname},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.endpoint_port}},
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "containerRuntimeVersion": f"{self.runtime}://{self.runtime_version}",
                "osImage": self.os_image,
                "kernelVersion": self.kernel,
                "operatingSystem": "linux",
                "architecture": self.architecture,
            },
            "conditions": conditions,
            "phase": "Running",
        }


_COND_TEXT = {
    # type: (status when OK, reason OK, message OK, reason bad, message bad)
    "MemoryPressure": (
        "KubeletHasSufficientMemory",
        "kubelet has sufficient memory available",
        "KubeletHasInsufficientMemory",
        "kubelet has insufficient memory available",
    ),
    "DiskPressure": (
        "KubeletHasNoDiskPressure",
        "kubelet has no disk pressure",
        "KubeletHasDiskPressure",
        "kubelet has disk pressure",
    ),
    "PIDPressure": (
        "KubeletHasSufficientPID",
        "kubelet has sufficient PID available",
        "KubeletHasInsufficientPID",
        "kubelet has insufficient PID available",
    ),
}


def conditions(
    readings: HostReadings | None,
    runtime_ok: bool,
    runtime_message: str,
    previous: list[dict[str, Any]] | None,
) -> list[dict[str, Any]]:
    """Render the node conditions, keeping transition times of unchanged conditions.

    ``readings=None`` means a hollow node: no pressure, by definition.
    """
    prev = {c.get("type"): c for c in previous or []}
    now = now_rfc3339()
    out = []
    flags = {
        "MemoryPressure": bool(readings and readings.memory_pressure),
        "DiskPressure": bool(readings and readings.disk_pressure),
        "PIDPressure": bool(readings and readings.pid_pressure),
    }
    for typ, bad in flags.items():
        ok_reason, ok_msg, bad_reason, bad_msg = _COND_TEXT[typ]
        out.append(
            _cond(
                typ,
                "True" if bad else "False",
                bad_reason if bad else ok_reason,
                bad_msg if bad else ok_msg,
                prev,
                now,
            )
        )
    if runtime_ok:
        out.append(_cond("Ready", "True", "KubeletReady", "kubelet is posting ready status", prev, now))
    else:
        out.append(
            _cond(
                "Ready", "False", "KubeletNotReady", runtime_message or "container runtime is down", prev, now
            )
        )
    return out


def _cond(
    typ: str, status: str, reason: str, message: str, prev: dict[Any, dict[str, Any]], now: str
) -> dict[str, Any]:
    p = prev.get(typ)
    ltt = p.get("lastTransitionTime") if p and p.get("status") == status else now
    return {
        "type": typ,
        "status": status,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": now,
        "lastTransitionTime": ltt or now,
    }


def strip_heartbeats(conds: list[dict[str, Any]] | None) -> list[tuple[Any, ...]]:
    """The part of the conditions whose change warrants an immediate status report."""
    return sorted((c.get("type"), c.get("status"), c.get("reason")) for c in conds or [])


def host_defaults() -> dict[str, Any]:
    """Capacity and identity of the real host."""
    mi = _meminfo()
    mem_kib = mi.get("MemTotal", 0) // 1024
    return {
        "cpu": str(os.cpu_count() or 1),
        "memory": f"{mem_kib}Ki" if mem_kib else "1Gi",
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
        "os_image": os_image(),
        "architecture": arch(),
    }
