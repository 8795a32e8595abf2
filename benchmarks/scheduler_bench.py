"""Scheduler throughput: pods bound per second at 1k / 5k / 20k hollow nodes.

For each node count the harness starts a fresh API server (embedded SQLite store) and
creates N hollow Node objects (allocatable 32 CPU / 128 GiB / 110 pods, a Ready
condition, zone labels), starts ``centaurusctl serve scheduler`` and waits until it has
synced, then a separate creator process creates the pods (``--pods``, concurrent
creates, 100 replicas per owner ReplicaSet) while this process watches every pod and
notes when each one is first seen bound. Reported:

* ``e2e pods/s``: pods / (last bound - first create);
* ``steady pods/s``: bound rate between the 10th and 90th percentile bound times;
* the create rate the API server sustained meanwhile, and CPU seconds used by the API
  server, the scheduler and the creator (``/proc/PID/stat``), to see where time goes.

Targets (DESIGN.md §9): >= 1,000 pods/s at 5,000 nodes, >= 500 pods/s at 20,000 nodes;
baseline: kube-scheduler's published 680-810 pods/s at 5,000 nodes. Results are
printed as a Rich table and written to ``benchmarks/results/scheduler.json``.

    .venv/bin/python benchmarks/scheduler_bench.py --nodes 1000,5000,20000 --pods 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from ctl.client import Client, ClientConfig  # noqa: E402
from tests.cluster import ApiServerProcess, RoleProcess, free_port  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {5000: 1000.0, 20000: 500.0}
KUBE_BASELINE = "680-810 @5k"
REPLICAS_PER_OWNER = 100


def hollow_node(i: int) -> dict[str, Any]:
    res = {"cpu": "32", "memory": "128Gi", "pods": "110"}
    name = f"hollow-{i:05d}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": f"zone-{i % 3}"},
        },
        "spec": {},
        "status": {
            "allocatable": res,
            "capacity": dict(res),
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def bench_pod(i: int, prefix: str) -> dict[str, Any]:
    owner = i // REPLICAS_PER_OWNER
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{prefix}-{i:06d}",
            "namespace": "default",
            "labels": {"app": f"rs-{owner}"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"rs-{owner}",
                    "uid": f"rs-uid-{owner}",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "containers": [
                {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}
            ]
        },
    }


def cpu_seconds(pid: int | None) -> float:
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def create_all(url: str, objs: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    c = Client(ClientConfig(url))
    errors = 0
    first_error = ""
    it = iter(objs)

    async def worker() -> None:
        nonlocal errors, first_error
        for o in it:
            try:
                await c.create(o)
            except Exception as e:  # noqa: BLE001 - counted and reported
                errors += 1
                first_error = first_error or str(e)

    t0 = time.time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    t1 = time.time()
    await c.close()
    return {"t_first": t0, "t_last": t1, "n": len(objs), "errors": errors, "first_error": first_error}


def creator_main(url: str, n: int, concurrency: int, prefix: str) -> int:
    """Child process: create the pods, print timing as JSON."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    res = asyncio.run(create_all(url, [bench_pod(i, prefix) for i in range(n)], concurrency))
    print(json.dumps(res), flush=True)
    return 0


def wait_healthy(port: int, proc: RoleProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.proc is not None
        if proc.proc.poll() is not None:
            raise RuntimeError(f"scheduler exited:\n{proc.log()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("scheduler did not become healthy")


def scrape(port: int) -> dict[str, float]:
    out = {}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            for line in r.read().decode().splitlines():
                k, _, v = line.rpartition(" ")
                if k and not k.startswith("#"):
                    out[k] = float(v)
    except OSError:
        pass
    return out


async def run_one(nodes: int, args: argparse.Namespace) -> dict[str, Any]:
    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="sched-bench-"))
    srv = ApiServerProcess(tmp / "api").start()
    sched: RoleProcess | None = None
    client = srv.client()
    try:
        t = time.time()
        r = await create_all(srv.url, [hollow_node(i) for i in range(nodes)], args.create_concurrency)
        node_rate = nodes / (time.time() - t)
        if r["errors"]:
            raise RuntimeError(f"node creation failed: {r['first_error']}")
        console.print(f"[{nodes} nodes] created nodes at {node_rate:,.0f}/s")
        port = free_port()
        sargs = [
            "--server",
            srv.url,
            "--health-port",
            str(port),
            "--parallelism",
            str(args.parallelism),
            "--log-level",
            "WARNING",
        ]
        if not args.scheduled_events:
            sargs.append("--no-scheduled-events")
        sched = RoleProcess("scheduler", sargs, tmp / "scheduler.log").start()
        wait_healthy(port, sched, 120)
        assert sched.proc is not None and srv.proc is not None

        bound: dict[str, float] = {}
        prefix = "bench"
        done = asyncio.Event()

        async def watch() -> None:
            async for typ, obj in client.watch("pods", tenant="all"):
                if typ in ("ADDED", "MODIFIED") and (obj.get("spec") or {}).get("nodeName"):
                    name = obj["metadata"]["name"]
                    if name not in bound:
                        bound[name] = time.time()
                        if len(bound) >= args.pods:
                            done.set()

        wtask = asyncio.create_task(watch())
        await asyncio.sleep(0.5)
        cpu0 = {"apiserver": cpu_seconds(srv.proc.pid), "scheduler": cpu_seconds(sched.proc.pid)}
        m0 = scrape(port)
        spies = []
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            for role, pid in (("apiserver", srv.proc.pid), ("scheduler", sched.proc.pid)):
                out_file = Path(args.profile) / f"{role}-{nodes}.txt"
                spies.append(
                    subprocess.Popen(
                        [
                            "py-spy",
                            "record",
                            "-p",
                            str(pid),
                            "--format",
                            "raw",
                            "--rate",
                            "250",
                            "--nonblocking",
                            "-o",
                            str(out_file),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            await asyncio.sleep(1.0)
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        creator = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--_create",
                srv.url,
                str(args.pods),
                str(args.create_concurrency),
                prefix,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            await asyncio.wait_for(done.wait(), args.timeout)
        except TimeoutError:
            console.print(f"[red]timed out: {len(bound)}/{args.pods} bound")
        out, _ = await asyncio.to_thread(creator.communicate)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # only the creator was reaped meanwhile
        creator_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        for spy in spies:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        cr = json.loads(out.strip().splitlines()[-1])
        cpu1 = {"apiserver": cpu_seconds(srv.proc.pid), "scheduler": cpu_seconds(sched.proc.pid)}
        m1 = scrape(port)
        wtask.cancel()
        times = sorted(bound.values())
        n = len(times)
        e2e = n / (times[-1] - cr["t_first"]) if n else 0.0
        lo, hi = times[int(n * 0.1)] if n else 0, times[max(0, int(n * 0.9) - 1)] if n else 0
        steady = (int(n * 0.9) - int(n * 0.1)) / (hi - lo) if n > 10 and hi > lo else 0.0
        attempts = m1.get("centaurus_scheduler_schedule_attempts_total", 0) - m0.get(
            "centaurus_scheduler_schedule_attempts_total", 0
        )
        algo_s = m1.get("centaurus_scheduler_algorithm_seconds_total", 0) - m0.get(
            "centaurus_scheduler_algorithm_seconds_total", 0
        )
        backlog = await run_backlog(srv, sched, port, sargs, tmp, args) if args.backlog else {}
        row = {
            "nodes": nodes,
            "pods": args.pods,
            "bound": n,
            "create_errors": cr["errors"],
            "first_create_error": cr["first_error"],
            "create_per_s": cr["n"] / (cr["t_last"] - cr["t_first"]),
            "e2e_pods_per_s": e2e,
            "steady_pods_per_s": steady,
            "first_create_to_last_bound_s": (times[-1] - cr["t_first"]) if n else None,
            "last_create_to_last_bound_s": (times[-1] - cr["t_last"]) if n else None,
            "algorithm_ms_per_pod": (algo_s / attempts * 1000) if attempts else None,
            "bind_errors": m1.get("centaurus_scheduler_bind_errors_total", 0),
            "cpu_s": {k: cpu1[k] - cpu0[k] for k in cpu0} | {"creator": creator_cpu},
            "target_pods_per_s": TARGETS.get(nodes),
            "node_create_per_s": node_rate,
            "parallelism": args.parallelism,
            "scheduled_events": args.scheduled_events,
            "loadavg_after": os.getloadavg(),
            **backlog,
        }
        return row
    finally:
        await client.close()
        if sched is not None:
            sched.stop()
        srv.stop()


async def run_backlog(
    srv: ApiServerProcess,
    sched: RoleProcess,
    port: int,
    sargs: list[str],
    tmp: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Pure scheduling throughput: stop the scheduler, create a backlog of pods, start it, time the binds."""
    sched.stop()
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--_create",
            srv.url,
            str(args.pods),
            str(args.create_concurrency),
            "backlog",
        ],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    cr = json.loads(proc.stdout.strip().splitlines()[-1])
    client = srv.client()
    bound: dict[str, float] = {}
    done = asyncio.Event()

    async def watch() -> None:
        async for _typ, obj in client.watch("pods", tenant="all"):
            name = obj["metadata"]["name"]
            if name.startswith("backlog-") and (obj.get("spec") or {}).get("nodeName") and name not in bound:
                bound[name] = time.time()
                if len(bound) >= args.pods:
                    done.set()

    wtask = asyncio.create_task(watch())
    await asyncio.sleep(0.5)
    t_start = time.time()
    s2 = RoleProcess("scheduler", sargs, tmp / "scheduler-backlog.log").start()
    try:
        await asyncio.to_thread(wait_healthy, port, s2, 120)
        t_synced = time.time()
        try:
            await asyncio.wait_for(done.wait(), args.timeout)
        except TimeoutError:
            pass
    finally:
        wtask.cancel()
        await client.close()
        s2.stop()
    times = sorted(bound.values())
    n = len(times)
    return {
        "backlog_create_errors": cr["errors"],
        "backlog_bound": n,
        "backlog_sync_s": t_synced - t_start,
        "backlog_pods_per_s": n / (times[-1] - t_synced) if n else 0.0,
        "backlog_first_to_last_bound_pods_per_s": (n - 1) / (times[-1] - times[0]) if n > 1 else 0.0,
    }


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> Path:
    table = Table(
        title=f"scheduler throughput ({args.pods} pods, parallelism {args.parallelism}, "
        f"Scheduled events {'on' if args.scheduled_events else 'off'})"
    )
    cols = (
        "nodes",
        "bound",
        "create/s",
        "e2e pods/s",
        "steady pods/s",
        "target",
        "kube-scheduler",
        "backlog pods/s",
        "meets e2e/backlog",
        "algo ms/pod",
        "cpu s api/sched/creator",
    )
    for col in cols:
        table.add_column(col, justify="right")
    for r in rows:
        tgt = r["target_pods_per_s"]
        backlog = r.get("backlog_pods_per_s")

        def ok(v: float | None, tgt: float | None = tgt) -> str:
            return "-" if tgt is None or v is None else ("yes" if v >= tgt else "no")

        meets = f"{ok(r['e2e_pods_per_s'])} / {ok(backlog)}"
        table.add_row(
            f"{r['nodes']:,}",
            f"{r['bound']:,}",
            f"{r['create_per_s']:,.0f}",
            f"{r['e2e_pods_per_s']:,.0f}",
            f"{r['steady_pods_per_s']:,.0f}",
            f">= {tgt:,.0f}" if tgt else "-",
            KUBE_BASELINE if r["nodes"] == 5000 else "-",
            f"{backlog:,.0f}" if backlog is not None else "-",
            meets,
            f"{r['algorithm_ms_per_pod']:.3f}" if r["algorithm_ms_per_pod"] is not None else "-",
            f"{r['cpu_s']['apiserver']:.1f} / {r['cpu_s']['scheduler']:.1f} / {r['cpu_s']['creator']:.1f}",
        )
    Console(width=max(Console().width, 180)).print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    out.write_text(
        json.dumps(
            {
                "benchmark": "scheduler_bench",
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "host": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "args": {k: v for k, v in vars(args).items() if not k.startswith("_")},
                "baseline": {"kube-scheduler pods/s at 5000 nodes": [680, 810]},
                "rows": rows,
            },
            indent=2,
        )
    )
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--_create":
        return creator_main(argv[1], int(argv[2]), int(argv[3]), argv[4])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", default="1000,5000,20000", help="comma-separated node counts")
    ap.add_argument("--pods", type=int, default=5000)
    ap.add_argument("--create-concurrency", type=int, default=64)
    ap.add_argument("--parallelism", type=int, default=128, help="scheduler's binding requests in flight")
    ap.add_argument("--no-scheduled-events", dest="scheduled_events", action="store_false")
    ap.add_argument(
        "--profile",
        default="",
        help="record py-spy profiles (raw stacks) of the API server and scheduler here",
    )
    ap.add_argument(
        "--no-backlog",
        dest="backlog",
        action="store_false",
        help="skip the second phase (a backlog of pods created before the scheduler starts)",
    )
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--out", default=str(RESULTS / "scheduler.json"))
    args = ap.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    rows = []
    for n in [int(x) for x in args.nodes.split(",") if x.strip()]:
        rows.append(asyncio.run(run_one(n, args)))
    out = report(rows, args)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
