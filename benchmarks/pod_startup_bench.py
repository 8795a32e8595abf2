"""Pod startup latency: create-to-Running as observed by a watch, on a real runc agent and on hollow nodes.

Two scenarios, each on a fresh API server (embedded store) with the scheduler and node agent(s) as
real processes (``centaurusctl serve ...``):

* ``runc``   -- a burst of ``--runc-pods`` (default 100) busybox pods onto one real agent running
  ``runc`` containers, each with its own network namespace, veth and pod IP (the agent runs in a network
  namespace the bench creates, so the pod bridge never touches the host network; it reaches the API
  server over its Unix socket). Needs root, runc and busybox-static; skipped with a reason otherwise.
* ``runc-vpc`` (``--network vpc [--hosts 3]``) -- the same burst over ``--hosts`` namespace hosts
  (``tests/podnet/harness.py``: a real transit daemon per host, the network operator, one runc agent
  per host with VPC pod networking), so each pod's time includes its Endpoint: created by the agent,
  IP allocated and programmed by the operator, ``eth0`` configured; the ``runc`` scenario of the same
  run (the node bridge) is its baseline. Needs bcc, bpffs and kernel headers too.
* ``hollow`` -- ``--hollow-pods`` (default 3000) pods onto ``--hollow-nodes`` (default 100) hollow nodes
  in one agent process (containers "start" after ``--hollow-start-delay`` = 0.5 s, as a stand-in for a
  container runtime).

The clock: ``t0`` just before each pod's create request is sent; ``t_running`` when the bench's own
watch on all pods first delivers the pod with ``status.phase == Running``; ``t_bound`` when it first
shows ``spec.nodeName``. Percentiles are nearest-rank. The baseline is the Kubernetes / Arktos pod
startup SLO (p99 <= 5 s, excluding image pulls), the target DESIGN §9's p99 < 2 s.

When ``ctl/scheduler/main.py`` is missing, the bench binds pods itself and says so. Results: a Rich
table and ``benchmarks/results/pod_startup-<timestamp>.json``.

    sudo .venv/bin/python benchmarks/pod_startup_bench.py [--runc-pods 100] [--hollow-pods 3000]
    sudo .venv/bin/python benchmarks/pod_startup_bench.py --network vpc --hosts 3 --skip-hollow
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks._measure import percentile  # noqa: E402
from ctl.client import ApiError, Client  # noqa: E402
from tests.cluster import CTL, ROOT, ApiServerProcess, RoleProcess  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
RUNC = "/usr/sbin/runc"
SLO_P99 = 5.0
TARGET_P99 = 2.0
HAVE_SCHEDULER = (ROOT / "ctl" / "scheduler" / "main.py").exists()
console = Console(width=190)


class NetnsRole(RoleProcess):
    """A role run inside a network namespace with ``nsenter --net`` (keeps the host's cgroup mounts)."""

    def __init__(self, role: str, args: list[str], log_path: Path, netns: str) -> None:
        super().__init__(role, args, log_path)
        self.netns = netns

    def start(self) -> NetnsRole:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.netns}", *CTL, "serve", self.role, *self.args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=ROOT,
            start_new_session=True,
        )
        return self


class Observer:
    """One watch on all pods; records when each pod is first seen bound and Running."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.bound: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def run(self) -> None:
        lst = await self.client.list("pods", tenant="all", limit=1)
        self.ready.set()
        async for _typ, pod in self.client.watch(
            "pods", tenant="all", resource_version=lst["metadata"]["resourceVersion"]
        ):
            now = time.perf_counter()
            name = pod["metadata"]["name"]
            if (pod.get("spec") or {}).get("nodeName") and name not in self.bound:
                self.bound[name] = now
            if (pod.get("status") or {}).get("phase") == "Running" and name not in self.running:
                self.running[name] = now

    async def start(self) -> None:
        self.task = asyncio.create_task(self.run())
        await self.ready.wait()

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass


def pod_body(name: str, runc: bool) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "c", "image": "busybox:latest"}
    if runc:
        c["command"] = ["sleep", "3600"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [c], "terminationGracePeriodSeconds": 1},
    }


async def wait_nodes(c: Client, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = (await c.list("nodes"))["items"]
        ready = [
            x
            for x in items
            if any(
                cd["type"] == "Ready" and cd["status"] == "True"
                for cd in (x.get("status") or {}).get("conditions") or []
            )
        ]
        if len(ready) >= n:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"only {len(ready)} of {n} nodes became Ready")


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, its reaped children included."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            f = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = v[3] + v[4]
    return (sum(v) - idle) / hz, sum(v) / hz


async def burst(
    c: Client,
    names: list[str],
    runc: bool,
    nodes: list[str],
    concurrency: int,
    obs: Observer,
    timeout: float,
    pids: dict[str, int] | None = None,
) -> dict[str, Any]:
    t0: dict[str, float] = {}
    errors: list[str] = []
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int, name: str) -> None:
        async with sem:
            t0[name] = time.perf_counter()
            try:
                p = await c.create(pod_body(name, runc))
                if not HAVE_SCHEDULER:
                    await c.bind(p, nodes[i % len(nodes)])
            except (ApiError, ConnectionError) as e:
                errors.append(str(e))

    pids = dict(pids or {})
    pids["bench"] = os.getpid()
    cpu0 = {k: proc_cpu(p) for k, p in pids.items()}
    m0 = machine_cpu()
    start = time.perf_counter()
    await asyncio.gather(*(one(i, n) for i, n in enumerate(names)))
    create_s = time.perf_counter() - start
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len([n for n in names if n in obs.running]) < len(names) - len(
        errors
    ):
        await asyncio.sleep(0.1)
    total_s = time.perf_counter() - start
    m1 = machine_cpu()
    cpu = {k: round(proc_cpu(p) - cpu0[k], 2) for k, p in pids.items()}
    cpu["machine_busy"] = round(m1[0] - m0[0], 2)
    cpu["machine_capacity"] = round(m1[1] - m0[1], 2)
    lat = sorted(obs.running[n] - t0[n] for n in names if n in obs.running and n in t0)
    blat = sorted(obs.bound[n] - t0[n] for n in names if n in obs.bound and n in t0)
    brlat = sorted(obs.running[n] - obs.bound[n] for n in names if n in obs.running and n in obs.bound)
    return {
        "pods": len(names),
        "running": len(lat),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "create_seconds": round(create_s, 3),
        "all_running_seconds": round(total_s, 3),
        "p50": round(percentile(lat, 50), 3),
        "p90": round(percentile(lat, 90), 3),
        "p99": round(percentile(lat, 99), 3),
        "max": round(lat[-1], 3) if lat else 0.0,
        "bound_p50": round(percentile(blat, 50), 3),
        "bound_p99": round(percentile(blat, 99), 3),
        "bound_to_running_p50": round(percentile(brlat, 50), 3),
        "bound_to_running_p99": round(percentile(brlat, 99), 3),
        "cpu_seconds_during_burst": cpu,
    }


async def delete_all(c: Client, names: list[str], timeout: float = 180) -> float:
    start = time.perf_counter()
    sem = asyncio.Semaphore(32)

    async def one(n: str) -> None:
        async with sem:
            try:
                await c.delete("pods", n)
            except ApiError:
                pass

    await asyncio.gather(*(one(n) for n in names))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not (await c.list("pods", namespace="default", limit=1))["items"]:
            break
        await asyncio.sleep(0.2)
    return round(time.perf_counter() - start, 3)


def role_pids(api: RoleProcess, sched: RoleProcess | None, agent: RoleProcess) -> dict[str, int]:
    out = {}
    for name, r in (("apiserver", api), ("scheduler", sched), ("agent", agent)):
        if r is not None and r.proc is not None:
            out[name] = r.proc.pid
    return out


def start_scheduler(api: ApiServerProcess, tmp: Path) -> RoleProcess | None:
    if not HAVE_SCHEDULER:
        return None
    return RoleProcess(
        "scheduler", ["--server", api.url, "--health-port", "0"], tmp / "scheduler.log"
    ).start()


async def scenario_runc(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    if os.geteuid() != 0:
        return {"skipped": "needs root (namespaces, mounts, cgroups)"}
    if not Path(RUNC).exists():
        return {"skipped": f"runc not installed at {RUNC}"}
    from ctl.images.busybox import build_busybox_image
    from ctl.images.store import ImageError, ImageStore

    data = tmp / "runc-data"
    try:
        store = ImageStore(data)
        build_busybox_image(store)
        store.rootfs("busybox:latest")
    except ImageError as e:
        return {"skipped": f"cannot build busybox image: {e}"}
    netns = "cbench-" + uuid.uuid4().hex[:6]
    subprocess.run(["ip", "netns", "add", netns], check=True)
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
    api = ApiServerProcess(tmp / "runc-api").start()
    sched = start_scheduler(api, tmp / "runc")
    agent = NetnsRole(
        "agent",
        [
            "--server",
            f"unix://{api.socket}",
            "--node-name",
            "bench-runc",
            "--data-dir",
            str(data),
            "--state-dir",
            str(tmp / "runc-state"),
            "--endpoint-port",
            "-1",
            "--endpoint-socket",
            str(tmp / "runc-agent.sock"),
            "--node-ip",
            "10.250.0.1",
            "--max-pods",
            str(args.runc_pods + 10),
            "--log-level",
            args.agent_log_level,
        ],
        tmp / "runc-agent.log",
        netns,
    ).start()
    c = api.client()
    obs = Observer(c)
    try:
        await wait_nodes(c, 1)
        await obs.start()
        names = [f"runc-{i}" for i in range(args.runc_pods)]
        res = await burst(
            c,
            names,
            True,
            ["bench-runc"],
            args.create_concurrency,
            obs,
            args.timeout,
            role_pids(api, sched, agent),
        )
        res["delete_all_seconds"] = await delete_all(c, names)
        return res
    finally:
        await obs.stop()
        await c.close()
        agent.stop()
        if sched:
            sched.stop()
        api.stop()
        out = subprocess.run(
            [RUNC, "--root", str(tmp / "runc-state" / "runc"), "list", "-q"], capture_output=True, text=True
        ).stdout.split()
        for cid in out:
            subprocess.run(
                [RUNC, "--root", str(tmp / "runc-state" / "runc"), "delete", "--force", cid],
                capture_output=True,
            )
        subprocess.run(["umount", "-R", "-l", str(tmp / "runc-state")], capture_output=True)
        subprocess.run(["ip", "netns", "delete", netns], check=False)
        if out:
            console.print(f"[yellow]runc containers left behind and removed: {len(out)}[/]")


async def scenario_runc_vpc(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The runc burst over ``--hosts`` namespace hosts with VPC endpoints (transitd + netoperator)."""
    import pytest

    from tests.podnet.harness import PodnetCluster, need_podnet

    try:
        need_podnet()
        cl = PodnetCluster(tmp / "vpc", hosts=args.hosts, agent_args=["--log-level", args.agent_log_level])
    except pytest.skip.Exception as e:
        return {"skipped": str(e)}
    sched = start_scheduler(cl.api, tmp / "vpc")
    obs = Observer(cl.client)
    try:
        await cl.wait_droplets()
        await cl.tenant("system", "10.70.0.0/16")  # the pods' default Network
        await wait_nodes(cl.client, args.hosts)
        await obs.start()
        names = [f"vpc-{i}" for i in range(args.runc_pods)]
        res = await burst(
            cl.client,
            names,
            True,
            cl.nodes,
            args.create_concurrency,
            obs,
            args.timeout,
            role_pids(cl.api, sched, cl.agents[0]),
        )
        res["hosts"] = args.hosts
        eps = await cl.client.list("endpoints.mizar.centaurus.io", tenant="all")
        res["endpoints_provisioned"] = sum(
            1 for e in eps["items"] if (e.get("status") or {}).get("phase") == "Provisioned"
        )
        res["delete_all_seconds"] = await delete_all(cl.client, names)
        return res
    finally:
        await obs.stop()
        if sched:
            sched.stop()
        await cl.aclose()


async def scenario_hollow(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    api = ApiServerProcess(tmp / "hollow-api").start()
    sched = start_scheduler(api, tmp / "hollow")
    agent = RoleProcess(
        "agent",
        [
            "--server",
            api.url,
            "--hollow-nodes",
            str(args.hollow_nodes),
            "--data-dir",
            str(tmp / "hollow-data"),
            "--endpoint-port",
            "0",
            "--hollow-start-delay",
            str(args.hollow_start_delay),
            "--max-pods",
            str(args.hollow_pods // args.hollow_nodes + 50),
        ],
        tmp / "hollow-agent.log",
    ).start()
    c = api.client()
    obs = Observer(c)
    try:
        await wait_nodes(c, args.hollow_nodes)
        await obs.start()
        names = [f"hollow-{i}" for i in range(args.hollow_pods)]
        nodes = [f"hollow-node-{i}" for i in range(args.hollow_nodes)]
        res = await burst(
            c, names, False, nodes, args.create_concurrency, obs, args.timeout, role_pids(api, sched, agent)
        )
        res["delete_all_seconds"] = await delete_all(c, names)
        return res
    finally:
        await obs.stop()
        await c.close()
        agent.stop()
        if sched:
            sched.stop()
        api.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runc-pods", type=int, default=100)
    ap.add_argument("--hollow-pods", type=int, default=3000)
    ap.add_argument("--hollow-nodes", type=int, default=100)
    ap.add_argument("--hollow-start-delay", type=float, default=0.5)
    ap.add_argument("--create-concurrency", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=180.0)
    ap.add_argument("--skip-runc", action="store_true")
    ap.add_argument("--keep-dir", default="", help="work (logs, data) in this directory and keep it")
    ap.add_argument("--agent-log-level", default="INFO")
    ap.add_argument("--skip-hollow", action="store_true")
    ap.add_argument(
        "--network",
        choices=["bridge", "vpc"],
        default="bridge",
        help="vpc: also burst over --hosts namespace hosts with VPC endpoints (transitd, netoperator)",
    )
    ap.add_argument("--hosts", type=int, default=3, help="namespace hosts for --network vpc")
    args = ap.parse_args()
    results: dict[str, Any] = {
        "bench": "pod_startup",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "host": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()},
        "scheduler": "ctl/scheduler (serve scheduler)"
        if HAVE_SCHEDULER
        else "none: the bench binds pods itself",
        "args": vars(args),
        "baseline": {"slo_p99_s": SLO_P99, "target_p99_s": TARGET_P99},
        "scenarios": {},
    }
    with tempfile.TemporaryDirectory(prefix="podstart-") as td:
        tmp = Path(args.keep_dir) if args.keep_dir else Path(td)
        tmp.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o755)
        if not args.skip_runc:
            console.print(f"[bold]runc[/]: {args.runc_pods}-pod burst on one real agent ...")
            results["scenarios"]["runc"] = asyncio.run(scenario_runc(args, tmp))
        if args.network == "vpc":
            console.print(
                f"[bold]runc-vpc[/]: {args.runc_pods}-pod burst over {args.hosts} hosts, VPC endpoints ..."
            )
            results["scenarios"]["runc-vpc"] = asyncio.run(scenario_runc_vpc(args, tmp))
        if not args.skip_hollow:
            console.print(f"[bold]hollow[/]: {args.hollow_pods} pods on {args.hollow_nodes} hollow nodes ...")
            results["scenarios"]["hollow"] = asyncio.run(scenario_hollow(args, tmp))
    table = Table(title="Pod startup: create -> Running seen by a watch (seconds)")
    for col in (
        "scenario",
        "pods",
        "running",
        "p50",
        "p90",
        "p99",
        "max",
        "bound p99",
        "bound->Running p99",
        "all Running",
        "baseline p99 (k8s/Arktos SLO)",
        "target p99",
        "verdict",
    ):
        table.add_column(col, justify="right" if col not in ("scenario", "verdict") else "left")
    for name, r in results["scenarios"].items():
        if "skipped" in r:
            table.add_row(
                name,
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                f"{SLO_P99:g}",
                f"{TARGET_P99:g}",
                f"skipped: {r['skipped']}",
            )
            continue
        ok = r["running"] == r["pods"] and r["p99"] < TARGET_P99
        verdict = (
            "meets target"
            if ok
            else ("within SLO" if r["p99"] <= SLO_P99 and r["running"] == r["pods"] else "MISSES")
        )
        table.add_row(
            name,
            str(r["pods"]),
            str(r["running"]),
            f"{r['p50']:.3f}",
            f"{r['p90']:.3f}",
            f"{r['p99']:.3f}",
            f"{r['max']:.3f}",
            f"{r['bound_p99']:.3f}",
            f"{r['bound_to_running_p99']:.3f}",
            f"{r['all_running_seconds']:.1f}",
            f"{SLO_P99:g}",
            f"{TARGET_P99:g}",
            verdict,
        )
    console.print(table)
    for name, r in results["scenarios"].items():
        cpu = r.get("cpu_seconds_during_burst")
        if cpu:
            roles = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items() if not k.startswith("machine"))
            console.print(
                f"{name}: CPU seconds from first create to all Running: {roles}; whole machine "
                f"{cpu['machine_busy']:.2f} of {cpu['machine_capacity']:.2f} (runc processes, other load)"
            )
    console.print(f"scheduler: {results['scheduler']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"pod_startup-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    console.print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
