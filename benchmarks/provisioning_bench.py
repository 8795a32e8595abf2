"""Endpoint provisioning: the network operator programming hollow transit daemons that count RPCs.

For each droplet count in ``--droplets`` (default 10, 100, 1000), side by side in one run, on a
fresh API server (embedded store) with ``centaurusctl serve netoperator`` as a real process and
one process of hollow transit daemons (:mod:`ctl.network.hollow`, one Unix socket per droplet,
every request counted): one VPC and one /16 subnet (one bouncer), then ``--endpoints`` Endpoints
(default 10,000) created through the API by ``--concurrency`` clients, spread round robin over
the droplets, as node agents would create them. Measured:

* **RPCs per endpoint**: PUT/DELETE requests the operator sent to all daemons during the burst,
  divided by the endpoints; and **entries per endpoint** (endpoint and agent objects in those
  requests: a batched PUT of 50 endpoints is one request, 50 entries; the subnet's ``nets`` entry,
  written once per host that gets its first endpoint, is counted apart); and **droplets touched per endpoint** (each
  endpoint's ``status.programmed``). Mizar's claim, never published: these do not grow with the
  number of droplets, because an endpoint is written only to its host and its subnet's bouncers.
  The daemons' periodic ``GET /v1/status`` restart checks (one per droplet every
  ``--check-interval`` s, at most the operator's ``--check-rate``, 100 a second, in all) are
  reported apart: they depend on droplets and time, not endpoints.
* **Endpoints provisioned per second**: endpoints / (last Provisioned - first create).
* **Create -> Provisioned** p50/p99: ``t0`` just before each create request is sent, the end when
  the bench's own watch on the endpoints first delivers it with ``status.phase == Provisioned``
  (nearest-rank percentiles).

The baseline in the same run is the smallest droplet count: the per-endpoint figures of the
larger ones are compared to it (ratio 1.00 = constant). A run whose burst would take longer than
``--budget`` seconds is not cut short, but the figure to pass next time is printed; the figures
in docs/performance.md say which endpoint count they used. Results: a Rich table and
``benchmarks/results/provisioning-<timestamp>.json``.

    .venv/bin/python benchmarks/provisioning_bench.py [--endpoints 10000] [--droplets 10,100,1000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks._measure import percentile  # noqa: E402
from benchmarks._results import write_results  # noqa: E402
from ctl.client import Client  # noqa: E402
from tests.cluster import ApiServerProcess, RoleProcess  # noqa: E402
from tests.network.conftest import Hollow, droplets, make  # noqa: E402

console = Console(width=160)
EP = "endpoints.mizar.centaurus.io"


class Observer:
    """One watch on all Endpoints: when each is first seen Provisioned, and where it was programmed."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.done: dict[str, float] = {}
        self.programmed: dict[str, int] = {}
        self.all_done = asyncio.Event()
        self.want = 0
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        lst = await self.client.list(EP, tenant="all", limit=1)
        self.ready.set()
        async for _typ, o in self.client.watch(
            EP, tenant="all", resource_version=lst["metadata"]["resourceVersion"], timeout_seconds=3600
        ):
            st = o.get("status") or {}
            name = o["metadata"]["name"]
            if st.get("phase") == "Provisioned" and name not in self.done:
                self.done[name] = time.perf_counter()
                self.programmed[name] = len(st.get("programmed") or [])
                if self.want and len(self.done) >= self.want:
                    self.all_done.set()

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


def _counts(hollow: Hollow) -> tuple[dict[str, int], dict[str, int]]:
    rpcs: dict[str, int] = {}
    items: dict[str, int] = {}
    for d in hollow.names:
        c = hollow.client(d)
        for k, n in c.request("GET", "/v1/rpcs").items():
            rpcs[k] = rpcs.get(k, 0) + n
        for k, n in c.request("GET", "/v1/items").items():
            items[k] = items.get(k, 0) + n
    return rpcs, items


async def _settle_substrates(hollow: Hollow, n: int, timeout: float) -> None:
    """Wait until every daemon holds every other droplet's substrate entry (setup, not measured)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (
            all(
                hollow.client(d).status()["objects"]["substrates"] == n - 1
                for d in hollow.names[:: max(1, n // 20)]
            )
            and hollow.client(hollow.names[-1]).status()["objects"]["substrates"] == n - 1
        ):
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"substrate entries not on every droplet after {timeout:.0f}s")


async def scenario(n_droplets: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    d = work / f"d{n_droplets}"
    d.mkdir()
    api = ApiServerProcess(d / "api").start()
    names = [f"d{i}" for i in range(n_droplets)]
    hollow = Hollow(d / "hollow", names)
    op = RoleProcess(
        "netoperator",
        [
            "--server",
            api.url,
            "--check-interval",
            str(args.check_interval),
            "--workers",
            str(args.workers),
            "--log-level",
            "WARNING",
        ],
        d / "op.log",
    ).start()
    client = api.client()
    obs = Observer(api.client())
    try:
        await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
        t_setup = time.perf_counter()
        await droplets(client, hollow)
        await make(client, "VPC", "v", {"cidr": "10.128.0.0/9"})
        await make(client, "Subnet", "s", {"vpc": "v", "cidr": "10.128.0.0/16"})
        deadline = time.monotonic() + 60
        while ((await client.get("subnets.mizar.centaurus.io", "s")).get("status") or {}).get(
            "phase"
        ) != "Provisioned":
            if time.monotonic() > deadline:
                raise RuntimeError("the subnet was not Provisioned within 60 s")
            await asyncio.sleep(0.1)
        await _settle_substrates(hollow, n_droplets, 120 + n_droplets * 0.2)
        setup_s = time.perf_counter() - t_setup
        await asyncio.sleep(0.5)
        hollow.reset()
        await obs.start()
        obs.want = args.endpoints
        t0: dict[str, float] = {}
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(args.endpoints):
            queue.put_nowait(i)

        async def creator() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                name = f"e{i}"
                t0[name] = time.perf_counter()
                await make(
                    client,
                    "Endpoint",
                    name,
                    {"subnet": "s", "droplet": names[i % n_droplets], "veth": f"ve{i}", "pod": f"p{i}"},
                    namespace="bench",
                )

        start = time.perf_counter()
        await asyncio.gather(*(creator() for _ in range(args.concurrency)))
        created_s = time.perf_counter() - start
        try:
            await asyncio.wait_for(obs.all_done.wait(), args.timeout)
        except TimeoutError:
            pass
        end = max(obs.done.values(), default=start)
        await asyncio.sleep(args.check_interval + 0.5)  # writes still queued after the last status
        rpcs, items = _counts(hollow)
        lat = sorted(obs.done[n] - t0[n] for n in obs.done if n in t0)
        provisioned = len(lat)
        mut = sum(v for k, v in rpcs.items() if k.split()[0] in ("PUT", "DELETE"))
        entries = items.get("endpoints", 0) + items.get("agents", 0)
        status_gets = rpcs.get("GET status", 0)
        touched = sum(obs.programmed.values()) / max(1, len(obs.programmed))
        burst = end - start
        row = {
            "droplets": n_droplets,
            "endpoints": args.endpoints,
            "provisioned": provisioned,
            "setup_s": round(setup_s, 2),
            "create_s": round(created_s, 2),
            "burst_s": round(burst, 2),
            "endpoints_per_s": round(provisioned / burst, 1) if burst > 0 else 0.0,
            "p50_s": round(percentile(lat, 50), 3),
            "p99_s": round(percentile(lat, 99), 3),
            "rpcs_per_endpoint": round(mut / max(1, provisioned), 3),
            "entries_per_endpoint": round(entries / max(1, provisioned), 3),
            "nets_entries": items.get("nets", 0),
            "droplets_touched_per_endpoint": round(touched, 3),
            "status_checks": status_gets,
            "rpcs": dict(sorted(rpcs.items())),
            "items": dict(sorted(items.items())),
        }
        if burst > args.budget:
            fit = int(args.endpoints * args.budget / burst)
            console.print(
                f"[yellow]{n_droplets} droplets: the burst took {burst:.0f}s (> {args.budget:.0f}s); "
                f"--endpoints {fit} would fit[/yellow]"
            )
        return row
    finally:
        await obs.stop()
        await obs.client.close()
        await client.close()
        op.stop()
        hollow.stop()
        api.stop()
        if "Traceback" in op.log():
            console.print(f"[red]operator traceback ({n_droplets} droplets):[/red]\n" + op.log()[-3000:])


def table(rows: list[dict[str, Any]]) -> Table:
    base = rows[0]
    t = Table(
        title="Endpoint provisioning on hollow transit daemons (per endpoint: constant = 1.00x the first row)"
    )
    for c in (
        "droplets",
        "endpoints",
        "provisioned/s",
        "create->Provisioned p50",
        "p99",
        "RPCs/endpoint",
        "entries/endpoint",
        "droplets touched/endpoint",
        "nets entries",
        "vs first row (RPCs, entries)",
        "status checks",
    ):
        t.add_column(c, justify="right")
    for r in rows:
        ratio = (
            f"{r['rpcs_per_endpoint'] / base['rpcs_per_endpoint']:.2f}x, "
            f"{r['entries_per_endpoint'] / base['entries_per_endpoint']:.2f}x"
            if base["rpcs_per_endpoint"] and base["entries_per_endpoint"]
            else "-"
        )
        t.add_row(
            str(r["droplets"]),
            f"{r['provisioned']}/{r['endpoints']}",
            f"{r['endpoints_per_s']:.0f}",
            f"{r['p50_s']:.3f} s",
            f"{r['p99_s']:.3f} s",
            f"{r['rpcs_per_endpoint']:.3f}",
            f"{r['entries_per_endpoint']:.3f}",
            f"{r['droplets_touched_per_endpoint']:.2f}",
            str(r["nets_entries"]),
            ratio,
            str(r["status_checks"]),
        )
    return t


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--endpoints", type=int, default=10_000)
    p.add_argument("--droplets", default="10,100,1000", help="comma-separated droplet counts")
    p.add_argument("--concurrency", type=int, default=32, help="concurrent creating clients")
    p.add_argument("--workers", type=int, default=4, help="the operator's --workers")
    p.add_argument("--check-interval", type=float, default=2.0, help="the operator's --check-interval")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for every Provisioned")
    p.add_argument("--budget", type=float, default=180.0, help="seconds a burst should take at most")
    args = p.parse_args()
    counts = [int(x) for x in args.droplets.split(",") if x]
    rows = []
    with tempfile.TemporaryDirectory(prefix="provbench-") as tmp:
        for n in counts:
            console.print(f"{n} droplets, {args.endpoints} endpoints ...")
            rows.append(asyncio.run(scenario(n, args, Path(tmp))))
            r = rows[-1]
            console.print(
                f"  {r['provisioned']} provisioned in {r['burst_s']} s, "
                f"{r['rpcs_per_endpoint']} RPCs/endpoint, p99 {r['p99_s']} s"
            )
    console.print(table(rows))
    out = write_results("provisioning", args, rows)
    console.print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
