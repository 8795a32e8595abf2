"""Job throughput: a 1,000-completion Job at parallelism 50 on hollow nodes, pods/s through the Job controller.

One fresh API server (embedded store) with the scheduler, the controllers (``--controllers
job,garbagecollector``) and one hollow agent (``--hollow-nodes``, default 20) as real processes
(``centaurusctl serve ...``). Hollow containers exit ``--run-seconds`` (default 1 s) after they
start, through the ``hollow.centaurus.io/run-seconds`` annotation of the Job's pod template, so
every completion goes the whole way: the Job controller creates the pod, the scheduler binds
it, the hollow agent runs it and reports it ``Succeeded``, the Job controller sees that and
creates the next one, until ``--completions`` (default 1000) succeeded at ``--parallelism``
(default 50).

Measured: wall time from the Job's create to its ``Complete`` condition, completions/s, the
pods created (no more than completions: nothing is created twice) and the peak of active pods
seen by a watch (never above parallelism).

Baseline in the same run: the ideal time of the same work, ``ceil(completions / parallelism) *
(run-seconds + hollow start delay)`` - what a Job controller with zero overhead would take on
these hollow nodes - and the efficiency (ideal / measured). Results: a Rich table and
``benchmarks/results/job-<timestamp>.json``.

    .venv/bin/python benchmarks/job_bench.py [--completions 1000] [--parallelism 50] [--hollow-nodes 20]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks._results import write_results  # noqa: E402
from benchmarks.pod_startup_bench import start_scheduler, wait_nodes  # noqa: E402
from ctl.client import Client  # noqa: E402
from tests.cluster import ApiServerProcess, RoleProcess  # noqa: E402

console = Console(width=160)


def job(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "bench"},
        "spec": {
            "completions": args.completions,
            "parallelism": args.parallelism,
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {"hollow.centaurus.io/run-seconds": str(args.run_seconds)}},
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "work", "image": "busybox:latest"}],
                },
            },
        },
    }


async def watch_active(c: Client, ns: str, stats: dict[str, int]) -> None:
    """Count pods created and the peak of pods neither finished nor deleted."""
    live: set[str] = set()
    seen: set[str] = set()
    async for typ, pod in c.watch("pods", ns):
        uid = pod["metadata"]["uid"]
        seen.add(uid)
        phase = (pod.get("status") or {}).get("phase")
        if typ == "DELETED" or phase in ("Succeeded", "Failed") or pod["metadata"].get("deletionTimestamp"):
            live.discard(uid)
        else:
            live.add(uid)
        stats["created"] = len(seen)
        stats["peak_active"] = max(stats.get("peak_active", 0), len(live))


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    api = ApiServerProcess(tmp / "api").start()
    sched = start_scheduler(api, tmp)
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
            str(args.parallelism * 2 + 50),
        ],
        tmp / "agent.log",
    ).start()
    ctrl = RoleProcess(
        "controllers",
        ["--server", api.url, "--controllers", "job,garbagecollector", "--workers", "4"],
        tmp / "controllers.log",
    ).start()
    c = api.client()
    stats: dict[str, int] = {}
    watcher: asyncio.Task[None] | None = None
    try:
        await wait_nodes(c, args.hollow_nodes)
        await c.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
        watcher = asyncio.create_task(watch_active(c, "bench", stats))
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        await c.create(job(args), namespace="bench")
        deadline = t0 + args.timeout
        st: dict[str, Any] = {}
        while time.monotonic() < deadline:
            j = await c.get("jobs", "bench", namespace="bench")
            st = j.get("status") or {}
            if any(
                x["type"] in ("Complete", "Failed") and x["status"] == "True"
                for x in st.get("conditions") or []
            ):
                break
            await asyncio.sleep(0.25)
        else:
            raise RuntimeError(f"the Job did not finish in {args.timeout}s: {st}")
        elapsed = time.monotonic() - t0
        await asyncio.sleep(0.5)
        ideal = math.ceil(args.completions / args.parallelism) * (args.run_seconds + args.hollow_start_delay)
        return {
            "completions": args.completions,
            "parallelism": args.parallelism,
            "succeeded": st.get("succeeded", 0),
            "failed": st.get("failed", 0),
            "seconds": round(elapsed, 2),
            "pods_per_second": round((st.get("succeeded") or 0) / elapsed, 1),
            "pods_created": stats.get("created", 0),
            "peak_active": stats.get("peak_active", 0),
            "ideal_seconds": round(ideal, 2),
            "ideal_pods_per_second": round(args.completions / ideal, 1),
            "efficiency": round(ideal / elapsed, 2),
        }
    finally:
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        await c.close()
        ctrl.stop()
        agent.stop()
        if sched:
            sched.stop()
        api.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--completions", type=int, default=1000)
    ap.add_argument("--parallelism", type=int, default=50)
    ap.add_argument("--hollow-nodes", type=int, default=20)
    ap.add_argument("--run-seconds", type=float, default=1.0)
    ap.add_argument("--hollow-start-delay", type=float, default=0.5)
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="job-bench-") as d:
        console.print(
            f"[bold]job[/]: {args.completions} completions at parallelism {args.parallelism} "
            f"on {args.hollow_nodes} hollow nodes ..."
        )
        res = asyncio.run(run(args, Path(d)))
    t = Table(title="Job controller throughput (hollow nodes)")
    for col in (
        "scenario",
        "completions",
        "parallelism",
        "seconds",
        "pods/s",
        "created",
        "peak active",
        "efficiency",
    ):
        t.add_column(col, justify="right")
    t.add_row(
        "Job controller",
        str(res["succeeded"]),
        str(res["parallelism"]),
        f"{res['seconds']:.1f}",
        f"{res['pods_per_second']:.1f}",
        str(res["pods_created"]),
        str(res["peak_active"]),
        f"{res['efficiency']:.0%}",
    )
    t.add_row(
        "ideal (zero overhead)",
        str(res["completions"]),
        str(res["parallelism"]),
        f"{res['ideal_seconds']:.1f}",
        f"{res['ideal_pods_per_second']:.1f}",
        "-",
        "-",
        "100%",
    )
    console.print(t)
    out = write_results("job", args, [res])
    console.print(f"results: {out}")


if __name__ == "__main__":
    main()
