"""DaemonSet rollout over hollow nodes: time to all pods created, then time to all updated.

One fresh API server (embedded store), the controllers (``--controllers daemonset``) and one
hollow agent (``--hollow-nodes``, default 1000) as real processes (``centaurusctl serve ...``).
No scheduler runs: DaemonSet pods are created bound to their node. Hollow containers take
``--hollow-start-delay`` (default 0.5 s) to start and stop at once (grace 0).

Measured, for a DaemonSet with ``RollingUpdate`` ``maxUnavailable`` (default ``10%``):

* **create**: from the DaemonSet's create to ``numberAvailable == desiredNumberScheduled ==
  nodes`` (one pod per node, all running);
* **update**: from the image change to ``updatedNumberScheduled == numberAvailable == nodes``
  (every old pod deleted and its replacement running), and the peak of nodes without an
  available pod seen by a watch during the update (never above ``maxUnavailable``).

Baseline in the same run: the ideal time of the same work, what a controller with zero
overhead would take on these hollow nodes - for the create one hollow start
(``start-delay``), for the update ``ceil(nodes / maxUnavailable)`` waves of one start each -
and the efficiency (ideal / measured). Results: a Rich table and
``benchmarks/results/daemonset-<timestamp>.json``.

    .venv/bin/python benchmarks/daemonset_bench.py [--hollow-nodes 1000] [--max-unavailable 10%]
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
from benchmarks.pod_startup_bench import wait_nodes  # noqa: E402
from ctl.client import Client  # noqa: E402
from ctl.controllers.daemonset import resolve  # noqa: E402
from ctl.controllers.podutil import is_available  # noqa: E402
from tests.cluster import ApiServerProcess, RoleProcess  # noqa: E402

console = Console(width=160)


def daemonset(max_unavailable: str) -> dict[str, Any]:
    mu: int | str = int(max_unavailable) if max_unavailable.isdigit() else max_unavailable
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "bench"},
        "spec": {
            "selector": {"matchLabels": {"app": "bench"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": mu}},
            "template": {
                "metadata": {"labels": {"app": "bench"}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "agent", "image": "busybox:1"}],
                },
            },
        },
    }


async def watch_unavailable(c: Client, ns: str, nodes: int, stats: dict[str, int]) -> None:
    """Track, after every pod event, how many nodes lack an available pod (while ``armed``)."""
    avail: dict[str, str] = {}  # pod uid -> node, for available live pods
    async for typ, pod in c.watch("pods", ns):
        uid = pod["metadata"]["uid"]
        if typ == "DELETED" or pod["metadata"].get("deletionTimestamp") or not is_available(pod, 0):
            avail.pop(uid, None)
        else:
            avail[uid] = pod["spec"].get("nodeName") or ""
        if stats.get("armed"):
            stats["peak_unavailable"] = max(
                stats.get("peak_unavailable", 0), nodes - len(set(avail.values()))
            )


async def wait_status(c: Client, pred: Any, timeout: float, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    st: dict[str, Any] = {}
    while time.monotonic() < deadline:
        ds = await c.get("daemonsets", "bench", namespace="bench")
        st = ds.get("status") or {}
        if st.get("observedGeneration") == ds["metadata"].get("generation") and pred(st):
            return st
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{what}: not done in {timeout:g}s: {st}")


async def run(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    n = args.hollow_nodes
    api = ApiServerProcess(tmp / "api").start()
    agent = RoleProcess(
        "agent",
        [
            "--server",
            api.url,
            "--hollow-nodes",
            str(n),
            "--data-dir",
            str(tmp / "hollow-data"),
            "--endpoint-port",
            "0",
            "--hollow-start-delay",
            str(args.hollow_start_delay),
        ],
        tmp / "agent.log",
    ).start()
    ctrl = RoleProcess(
        "controllers",
        ["--server", api.url, "--controllers", "daemonset", "--workers", "2"],
        tmp / "controllers.log",
    ).start()
    c = api.client()
    stats: dict[str, int] = {}
    watcher: asyncio.Task[None] | None = None
    mu = resolve(int(args.max_unavailable) if args.max_unavailable.isdigit() else args.max_unavailable, n)
    try:
        await wait_nodes(c, n, timeout=600)
        await c.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
        watcher = asyncio.create_task(watch_unavailable(c, "bench", n, stats))
        await asyncio.sleep(0.5)

        t0 = time.monotonic()
        await c.create(daemonset(args.max_unavailable), namespace="bench")
        await wait_status(
            c,
            lambda s: s.get("desiredNumberScheduled") == n and s.get("numberAvailable") == n,
            args.timeout,
            "create",
        )
        created = time.monotonic() - t0
        await asyncio.sleep(1.0)

        patch = {"spec": {"template": {"spec": {"containers": [{"name": "agent", "image": "busybox:2"}]}}}}
        stats["armed"] = 1
        t1 = time.monotonic()
        await c.patch("daemonsets", "bench", patch, namespace="bench")
        await wait_status(
            c,
            lambda s: s.get("updatedNumberScheduled") == n and s.get("numberAvailable") == n,
            args.timeout,
            "update",
        )
        updated = time.monotonic() - t1
        stats["armed"] = 0
        ideal_create = args.hollow_start_delay
        ideal_update = math.ceil(n / max(mu, 1)) * args.hollow_start_delay
        return [
            {
                "phase": "create",
                "nodes": n,
                "seconds": round(created, 2),
                "pods_per_second": round(n / created, 1),
                "ideal_seconds": round(ideal_create, 2),
                "efficiency": round(ideal_create / created, 3),
            },
            {
                "phase": "update",
                "nodes": n,
                "max_unavailable": mu,
                "seconds": round(updated, 2),
                "pods_per_second": round(n / updated, 1),
                "peak_unavailable": stats.get("peak_unavailable", 0),
                "ideal_seconds": round(ideal_update, 2),
                "efficiency": round(ideal_update / updated, 3),
            },
        ]
    finally:
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        await c.close()
        ctrl.stop()
        agent.stop()
        api.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hollow-nodes", type=int, default=1000)
    ap.add_argument("--max-unavailable", default="10%", help="the DaemonSet's maxUnavailable (N or P%%)")
    ap.add_argument("--hollow-start-delay", type=float, default=0.5)
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ds-bench-") as d:
        console.print(
            f"[bold]daemonset[/]: rollout over {args.hollow_nodes} hollow nodes, maxUnavailable {args.max_unavailable} ..."
        )
        rows = asyncio.run(run(args, Path(d)))
    t = Table(title=f"DaemonSet rollout over {args.hollow_nodes} hollow nodes")
    for col in ("phase", "seconds", "pods/s", "peak unavailable", "ideal s", "efficiency"):
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(
            r["phase"],
            f"{r['seconds']:.1f}",
            f"{r['pods_per_second']:.1f}",
            str(r.get("peak_unavailable", "-"))
            + (f" (max {r['max_unavailable']})" if "max_unavailable" in r else ""),
            f"{r['ideal_seconds']:.1f}",
            f"{r['efficiency']:.0%}",
        )
    console.print(t)
    out = write_results("daemonset", args, rows)
    console.print(f"results: {out}")


if __name__ == "__main__":
    main()
