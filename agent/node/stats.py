"""Resource usage of the node and its pods: the agent's ``/stats/summary`` (kubelet's summary API).

The API server's metrics API (:mod:`ctl.apiserver.metrics_api`) pulls these figures from the
agent endpoint as metrics-server pulls kubelet's ``/stats/summary``; nothing is written to the
store. One endpoint serves every node of the agent process, so one request answers for all of
them (``?node=NAME`` narrows it to one)::

    GET /stats/summary[?node=NAME]
    -> {"nodes": [{"nodeName": .., "window": "..s", "timestamp": RFC3339,
                   "cpu": {"usageNanoCores": N, "usageCoreNanoSeconds": N},
                   "memory": {"workingSetBytes": N},
                   "pods": [{"podRef": {"name", "namespace", "tenant", "uid"},
                             "containers": [{"name", "cpu": {..}, "memory": {..}}]}]}]}

Where the figures come from, by runtime:

* ``runc``: each running container's cgroup, at ``/centaurus/<node>/<container id>`` (the
  ``cgroupsPath`` the runc runtime gives it). Whatever hierarchy exists is read - cgroup v1
  ``cpuacct.usage`` and ``memory.usage_in_bytes`` minus ``total_inactive_file`` (the working set,
  as cAdvisor computes it), or cgroup v2 ``cpu.stat`` ``usage_usec`` and ``memory.current`` minus
  ``inactive_file`` - so hybrid hosts work. The node's own figures are the machine's
  (``/proc/stat`` busy time, ``/proc/meminfo`` MemTotal - MemAvailable).
* ``libvirt`` (VM pods): the domain's ``cpu_time`` and its ``rss`` memory statistic (the
  balloon's ``actual`` or the domain's current allocation when libvirt has no RSS yet), through
  a read-only libvirt connection, the domain found by the UUID in its container ID.
* ``hollow``: simulated figures, stable per pod (derived from the uid and the pod's requests),
  so scale tests see plausible numbers without any process behind them.

CPU rates (``usageNanoCores``) need two samples of the cumulative counter: the previous
sample of each counter is kept, and one that is missing or too old is taken again after a
short window (:data:`WINDOW` seconds), so the first answer is already a real rate.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from ctl.types.resources import pod_requests

WINDOW = 0.25  # seconds between two samples of a counter seen for the first time
MAX_AGE = 60.0  # a previous sample older than this is not used for a rate
CGROUP_ROOT = Path("/sys/fs/cgroup")

# (cumulative cpu ns, monotonic time) of each counter, by key
_samples: dict[str, tuple[int, float]] = {}


def _read_int(p: Path) -> int | None:
    try:
        return int(p.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stat_field(p: Path, name: str) -> int | None:
    try:
        for line in p.read_text().splitlines():
            k, _, v = line.partition(" ")
            if k == name:
                return int(v)
    except (OSError, ValueError):
        return None
    return None


def cgroup_name(node_name: str) -> str:
    """The node's directory under ``/centaurus`` (the runc runtime's sanitizing of the node name)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", node_name)


def cgroup_usage(rel: str, root: Path = CGROUP_ROOT) -> tuple[int | None, int | None]:
    """(cumulative cpu ns, working-set bytes) of the cgroup ``rel`` in whatever hierarchy has it."""
    rel = rel.strip("/")
    cpu: int | None = None
    mem: int | None = None
    for ctl in ("cpuacct", "cpu,cpuacct", "cpu"):
        cpu = _read_int(root / ctl / rel / "cpuacct.usage")
        if cpu is not None:
            break
    mdir = root / "memory" / rel
    usage = _read_int(mdir / "memory.usage_in_bytes")
    if usage is not None:
        inactive = _stat_field(mdir / "memory.stat", "total_inactive_file") or 0
        mem = max(usage - inactive, 0)
    for v2 in (root / rel, root / "unified" / rel):
        if cpu is None:
            usec = _stat_field(v2 / "cpu.stat", "usage_usec")
            cpu = usec * 1000 if usec is not None else None
        if mem is None:
            cur = _read_int(v2 / "memory.current")
            if cur is not None:
                mem = max(cur - (_stat_field(v2 / "memory.stat", "inactive_file") or 0), 0)
    return cpu, mem


def host_usage() -> tuple[int | None, int | None]:
    """(cumulative busy cpu ns, used memory bytes) of the machine."""
    cpu = mem = None
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        vals = [int(x) for x in fields]
        busy = sum(vals[:8]) - vals[3] - (vals[4] if len(vals) > 4 else 0)  # minus idle and iowait
        cpu = busy * 1_000_000_000 // (os.sysconf("SC_CLK_TCK") or 100)
    except (OSError, ValueError, IndexError):
        pass
    try:
        info = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            k, _, v = line.partition(":")
            info[k] = int(v.split()[0]) * 1024
        mem = info["MemTotal"] - info["MemAvailable"]
    except (OSError, ValueError, KeyError, IndexError):
        pass
    return cpu, mem


class _Figure:
    """One measured thing: a cumulative cpu counter (for a rate) and a memory figure."""

    def __init__(self, key: str, read: Callable[[], tuple[int | None, int | None]]) -> None:
        self.key, self.read = key, read
        self.cpu: int | None = None
        self.mem: int | None = None
        self.rate: int | None = None

    def sample(self, now: float) -> bool:
        """Read once; True when a second sample is still needed for a rate."""
        self.cpu, self.mem = self.read()
        if self.cpu is None:
            return False
        prev = _samples.get(self.key)
        _samples[self.key] = (self.cpu, now)
        if prev is None or now - prev[1] > MAX_AGE or now - prev[1] < WINDOW / 5 or self.cpu < prev[0]:
            return True
        self.rate = int((self.cpu - prev[0]) / (now - prev[1]))
        return False

    def cpu_json(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if self.rate is not None:
            out["usageNanoCores"] = max(self.rate, 0)
        if self.cpu is not None:
            out["usageCoreNanoSeconds"] = self.cpu
        return out

    def mem_json(self) -> dict[str, int]:
        return {"workingSetBytes": self.mem} if self.mem is not None else {}


def _sample_all(figures: Iterable[_Figure]) -> list[_Figure]:
    now = time.monotonic()
    return [f for f in figures if f.sample(now)]


async def measure(figures: list[_Figure]) -> None:
    """Sample every figure, and once more after :data:`WINDOW` those that had no usable previous sample."""
    again = await asyncio.to_thread(_sample_all, figures)
    if again:
        await asyncio.sleep(WINDOW)
        await asyncio.to_thread(_sample_all, again)
    now = time.monotonic()
    for k in [k for k, (_, t) in _samples.items() if now - t > MAX_AGE]:
        del _samples[k]  # containers that are gone


def _hollow_figures(uid: str, pod: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Simulated (nano cores, bytes) per container of a hollow pod: stable, below its requests."""
    out: dict[str, tuple[int, int]] = {}
    for c in (pod.get("spec") or {}).get("containers") or []:
        name = str(c.get("name") or "")
        h = int.from_bytes(hashlib.blake2b(f"{uid}/{name}".encode(), digest_size=4).digest(), "big")
        milli, mem, _, _ = pod_requests({"containers": [c]})  # millicores, bytes
        cpu_nc = int((milli or 100) * 1e6 * (0.05 + (h % 50) / 100))
        mem_b = int((mem or 64 * 2**20) * (0.2 + (h >> 8) % 60 / 100))
        out[name] = (max(cpu_nc, 1_000_000), max(mem_b, 1 << 20))
    return out


class _Const:
    def __init__(self, rate: int, mem: int) -> None:
        self.rate, self.mem, self.cpu = rate, mem, None

    def cpu_json(self) -> dict[str, int]:
        return {"usageNanoCores": self.rate}

    def mem_json(self) -> dict[str, int]:
        return {"workingSetBytes": self.mem}


_libvirt_conns: dict[str, Any] = {}


def libvirt_usage(uri: str, dom_uuid: str) -> tuple[int | None, int | None]:
    try:
        import libvirt  # noqa: PLC0415 - only agents with VM pods need it

        conn = _libvirt_conns.get(uri)
        if conn is None or not conn.isAlive():
            conn = _libvirt_conns[uri] = libvirt.openReadOnly(uri)
        dom = conn.lookupByUUIDString(dom_uuid)
        cpu = int(dom.getCPUStats(True)[0]["cpu_time"])
        ms = dom.memoryStats()
        kib = ms.get("rss") or ms.get("actual") or dom.info()[2]  # QEMU's RSS, else the balloon/allocation
        return cpu, int(kib) * 1024 if kib else None
    except Exception:  # noqa: BLE001 - a domain that went away or a libvirt hiccup: no figure
        return None, None


def _containers(w: Any) -> list[dict[str, Any]]:
    status = w.desired or (w.pod.get("status") or {})
    return [
        cs
        for cs in status.get("containerStatuses") or []
        if "running" in (cs.get("state") or {}) and cs.get("containerID")
    ]


async def node_summary(agent: Any) -> dict[str, Any]:
    """The summary of one node agent (:class:`agent.node.agent.NodeAgent`)."""
    runtime_name = getattr(agent.runtime, "name", "")
    node_fig: Any
    pods: list[tuple[Any, list[tuple[str, Any]]]] = []
    figures: list[_Figure] = []
    cg = cgroup_name(agent.name)
    for w in list(agent.workers.values()):
        if w.gone:
            continue
        rt = agent.runtime_of(w.pod)
        rname = getattr(rt, "name", "")
        cs_list: list[tuple[str, Any]] = []
        if rname == "hollow":
            if (w.desired or w.pod.get("status") or {}).get("phase") == "Running":
                for name, (nc, mb) in _hollow_figures(w.uid, w.pod).items():
                    cs_list.append((name, _Const(nc, mb)))
        else:
            for cs in _containers(w):
                scheme, _, cid = str(cs["containerID"]).partition("://")
                if scheme == "runc":
                    f = _Figure(f"runc|{cg}/{cid}", partial(cgroup_usage, f"centaurus/{cg}/{cid}"))
                elif scheme == "libvirt":
                    uri = str(getattr(rt, "uri", "qemu:///system"))
                    f = _Figure(f"libvirt|{cid}", partial(libvirt_usage, uri, cid))
                else:
                    continue
                figures.append(f)
                cs_list.append((str(cs.get("name") or ""), f))
        if cs_list:
            pods.append((w, cs_list))
    if runtime_name == "hollow":
        rate = sum(f.rate for _, cl in pods for _, f in cl) + 50_000_000
        mem = sum(f.mem for _, cl in pods for _, f in cl) + 256 * 2**20
        node_fig = _Const(rate, mem)
    else:
        node_fig = _Figure("host|", host_usage)
        figures.append(node_fig)
    await measure(figures)
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out_pods = []
    for w, cl in pods:
        md = w.pod.get("metadata") or {}
        containers = [
            {"name": n, "cpu": f.cpu_json(), "memory": f.mem_json()}
            for n, f in cl
            if f.cpu_json().get("usageNanoCores") is not None and f.mem is not None
        ]
        if containers:
            ref = {k: md.get(k, "") for k in ("name", "namespace", "tenant", "uid")}
            out_pods.append({"podRef": ref, "containers": containers})
    return {
        "nodeName": agent.name,
        "timestamp": ts,
        "window": f"{WINDOW}s",
        "cpu": node_fig.cpu_json(),
        "memory": node_fig.mem_json(),
        "pods": out_pods,
    }


def install(app: web.Application, agents: dict[str, Any]) -> None:
    """Serve ``GET /stats/summary`` for the node agents of this process on ``app``."""

    async def summary(request: web.Request) -> web.Response:
        only = request.query.get("node", "")
        chosen = [a for n, a in agents.items() if not only or n == only]
        nodes = await asyncio.gather(*(node_summary(a) for a in chosen))
        return web.Response(body=orjson.dumps({"nodes": nodes}), content_type="application/json")

    app.router.add_get("/stats/summary", summary)
