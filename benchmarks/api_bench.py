"""API server throughput and latency against the raw store it sits on, in the same run.

For each backend (the embedded sqlite store and a loopback etcd) the benchmark starts a
real ``centaurusctl serve apiserver`` process and drives it through the project's own
client library (:class:`ctl.client.Client`, aiohttp) from several client *processes*
(``--procs``; one Python client process cannot saturate the server), measuring per verb:

* ``create``  POST ConfigMaps (``--n`` in total, ``--concurrency`` in flight overall)
* ``get``     GET of random existing objects
* ``list``    GET of a page of 100 (``limit=100``) from the namespace
* ``paced``   creates at a fixed ``--rate`` per second for ``--paced-seconds``: the p99
              the design targets (< 50 ms at 500 writes/s on the embedded store)
* ``watch``   fan-out: ``--watchers`` watches on the namespace, ``--watch-events`` creates;
              throughput is events delivered per second over all watchers, latency is
              create-acknowledged -> event received

Then the same create/get/list through the store layer directly (``ctl.store``, same
process model: one process, same concurrency) - the ratio API/raw is the API server's
overhead - and for etcd two raw put baselines:

* ``put (same client)``: raw etcd puts sent by the *same client* that drives the API
  server - ``ctl.client.Client`` in the same number of client processes with the same
  concurrency, POSTing JSON to etcd's own HTTP gateway (``/v3/kv/put``) - so client-side
  cost is equal on both sides and the ratio isolates what the API server adds;
* ``put (aetcd)``: raw puts over gRPC through the etcd store's own ``aetcd`` channel from
  one process (as ``store_bench`` does), the cheapest way Python can drive etcd.

The machine has 2 cores: server, etcd and clients share them, so client-side CPU is part of
every figure. The benchmark therefore also accounts CPU: for each create-like run it reads
the CPU time the API server, etcd and the client processes used in the window and reports
cores busy and CPU microseconds per operation (where the cores go).
Prints Rich tables, writes ``benchmarks/results/api.json``.

    .venv/bin/python benchmarks/api_bench.py [--n 4000] [--concurrency 64] [--procs 2] [--backends sqlite,etcd]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import signal
import socket
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

from benchmarks._measure import measure, percentile  # noqa: E402
from ctl.cluster.etcd_process import EtcdProcess  # noqa: E402
from ctl.store import open_store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
NS = "bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cm(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"bench": "1"}},
        "data": {"key": "x" * 200},
    }


def _summary(
    lat: list[float], ok: int, errors: int, seconds: float, first_error: str | None
) -> dict[str, Any]:
    lat.sort()
    return {
        "ok": ok,
        "errors": errors,
        "first_error": first_error,
        "seconds": round(seconds, 3),
        "ops_per_s": round(ok / seconds, 1) if seconds > 0 else 0.0,
        "p50": round(percentile(lat, 50) * 1000, 2),
        "p99": round(percentile(lat, 99) * 1000, 2),
        "max": round((lat[-1] if lat else 0) * 1000, 2),
    }


# ---------------------------------------------------------------------------- client processes
def _client_proc(
    url: str,
    verb: str,
    ids: list[int],
    concurrency: int,
    n_total: int,
    rate: float,
    start_at: float,
    out: Any,
) -> None:
    """One client process: run ``verb`` for ``ids`` and send back (latencies, errors, t0, t1)."""
    from ctl.client import Client, ClientConfig

    gw_value = base64.b64encode(json.dumps(_cm("x")).encode()).decode()

    async def main() -> None:
        c = Client(ClientConfig(url))
        lat: list[float] = []
        errors = 0
        first: str | None = None
        queue = collections.deque(sorted(ids))  # in schedule order (paced requests are due at i / rate)
        tag = f"{os.getpid()}"

        async def one(i: int) -> None:
            if verb in ("create", "paced"):
                await c.create(_cm(f"{verb}-{i}"), namespace=NS)
            elif verb == "get":
                await c.get("configmaps", f"create-{random.randrange(n_total)}", NS)
            elif verb == "list":
                await c.list("configmaps", NS, limit=100)
            elif verb == "etcdput":  # url is etcd's client URL: its JSON gateway
                key = base64.b64encode(f"/registry/bench-gw/{tag}/{i}".encode()).decode()
                await c.request("POST", "/v3/kv/put", {"key": key, "value": gw_value})

        async def worker() -> None:
            nonlocal errors, first
            while queue:
                i = queue.popleft()
                if verb == "paced":  # open loop: start each request at its scheduled time
                    due = start_at + i / rate
                    delay = due - time.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                t = time.perf_counter()
                try:
                    await one(i)
                except Exception as e:
                    errors += 1
                    first = first or f"{type(e).__name__}: {e}"[:200]
                    continue
                lat.append(time.perf_counter() - t)

        await c.session()
        while time.time() < start_at:  # all processes start together
            await asyncio.sleep(0.001)
        t0, cpu0 = time.time(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
        t1, cpu1 = time.time(), time.process_time()
        await c.close()
        out.put((lat, errors, first, t0, t1, cpu1 - cpu0))

    asyncio.run(main())


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_verb(
    url: str,
    verb: str,
    n: int,
    concurrency: int,
    procs: int,
    n_total: int = 0,
    rate: float = 0,
    cpu_pids: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Run ``verb`` from ``procs`` client processes; with ``cpu_pids`` ({role: pid}) also
    report the cores each of those processes and the clients kept busy in the window."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    start_at = time.time() + 1.5
    ps = []
    for k in range(procs):
        ids = list(range(k, n, procs))
        conc = concurrency if verb == "paced" else max(1, concurrency // procs)
        ps.append(ctx.Process(target=_client_proc, args=(url, verb, ids, conc, n_total, rate, start_at, q)))
    for p in ps:
        p.start()
    pids = cpu_pids or {}
    time.sleep(max(0.0, start_at - time.time()))
    before = {role: cpu_seconds(pid) for role, pid in pids.items()}
    res = [q.get(timeout=600) for _ in ps]
    after = {role: cpu_seconds(pid) for role, pid in pids.items()}
    for p in ps:
        p.join()
    lat = [x for r in res for x in r[0]]
    errors = sum(r[1] for r in res)
    first = next((r[2] for r in res if r[2]), None)
    seconds = max(r[4] for r in res) - min(r[3] for r in res)
    out = _summary(lat, len(lat), errors, seconds, first) | {
        "n": n,
        "concurrency": concurrency,
        "procs": procs,
    }
    if pids:
        used = {role: after[role] - before[role] for role in pids} | {"clients": sum(r[5] for r in res)}
        out["cpu"] = _cpu_summary(used, seconds, len(lat))
    return out


def _cpu_summary(used: dict[str, float], seconds: float, ops: int) -> dict[str, Any]:
    """Cores busy per role and CPU microseconds per operation, from CPU seconds used."""
    total = sum(used.values())
    return {
        "cores": {role: round(v / seconds, 2) for role, v in used.items()} if seconds > 0 else {},
        "us_per_op": {role: round(v / ops * 1e6, 1) for role, v in used.items()} if ops else {},
        "total_cores": round(total / seconds, 2) if seconds > 0 else 0.0,
        "total_us_per_op": round(total / ops * 1e6, 1) if ops else 0.0,
    }


async def watch_fanout(url: str, watchers: int, events: int) -> dict[str, Any]:
    """``watchers`` watches on the namespace; ``events`` creates; delivery latency and rate."""
    import aiohttp
    import orjson

    sent: dict[str, float] = {}
    lat: list[float] = []
    got = 0
    done = asyncio.Event()
    conn = aiohttp.TCPConnector(limit=watchers + 16)
    async with aiohttp.ClientSession(connector=conn) as s:
        rv = (await (await s.get(f"{url}/api/v1/namespaces/{NS}/configmaps", params={"limit": "1"})).json())[
            "metadata"
        ]["resourceVersion"]
        ready = 0

        async def watch() -> None:
            nonlocal got, ready
            async with s.get(
                f"{url}/api/v1/namespaces/{NS}/configmaps",
                params={
                    "watch": "1",
                    "resourceVersion": rv,
                    "labelSelector": "fan=1",
                    "timeoutSeconds": "120",
                },
                timeout=aiohttp.ClientTimeout(total=None),
            ) as r:
                ready += 1
                async for line in r.content:
                    now = time.perf_counter()
                    name = orjson.loads(line)["object"]["metadata"]["name"]
                    t = sent.get(name)
                    if t is not None:
                        lat.append(now - t)
                    got += 1
                    if got >= watchers * events:
                        done.set()
                    if name == f"fan-{events - 1}":
                        return

        tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
        while ready < watchers:
            await asyncio.sleep(0.01)
        t0 = time.perf_counter()
        for i in range(events):
            body = _cm(f"fan-{i}")
            body["metadata"]["labels"]["fan"] = "1"
            r = await s.post(f"{url}/api/v1/namespaces/{NS}/configmaps", json=body)
            sent[f"fan-{i}"] = time.perf_counter()
            assert r.status == 201, await r.text()
        try:
            await asyncio.wait_for(done.wait(), 60)
        except TimeoutError:
            pass
        seconds = time.perf_counter() - t0
        for t in tasks:
            t.cancel()
    out = _summary(lat, got, watchers * events - got, seconds, None)
    out |= {"watchers": watchers, "events": events}
    return out


# ---------------------------------------------------------------------------- raw store
async def raw_store(url: str, n: int, concurrency: int, etcd_pid: int | None) -> dict[str, dict[str, Any]]:
    store = open_store(url)
    await store.start()
    prefix = f"/registry/configmaps/raw-{time.monotonic_ns()}/"
    value = json.dumps(_cm("x")).encode()
    out: dict[str, dict[str, Any]] = {}
    try:
        out["create"] = await measure(lambda i: store.create(f"{prefix}k{i}", value), n, concurrency)
        out["get"] = await measure(lambda i: store.get(f"{prefix}k{random.randrange(n)}"), n, concurrency)
        out["list"] = await measure(lambda i: store.list(prefix, limit=100), max(200, n // 10), concurrency)
        if etcd_pid is not None:
            from ctl.store.etcd import EtcdStore, rpc

            assert isinstance(store, EtcdStore)
            stub = await store._stub()
            e0, c0 = cpu_seconds(etcd_pid), time.process_time()
            out["raw_put"] = await measure(
                lambda i: stub.Put(rpc.PutRequest(key=f"{prefix}p{i}".encode(), value=value)), n, concurrency
            )
            used = {"etcd": cpu_seconds(etcd_pid) - e0, "clients": time.process_time() - c0}
            out["raw_put"]["cpu"] = _cpu_summary(used, out["raw_put"]["seconds"], out["raw_put"]["ok"])
    finally:
        await store.close()
    return out


# ---------------------------------------------------------------------------- driver
def start_apiserver(data: Path, store: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    argv = [
        sys.executable,
        "-m",
        "ctl",
        "serve",
        "apiserver",
        "--data-dir",
        str(data),
        "--port",
        str(port),
        "--insecure-http",
        "--anonymous",
        "--compact-interval",
        "0",
        "--log-level",
        "WARNING",
    ]
    if store:
        argv += ["--store", store]
    log = open(data / "apiserver.log", "wb")
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1):
                break
        except OSError:
            time.sleep(0.05)
    req = urllib.request.Request(
        url + "/api/v1/namespaces",
        method="POST",
        data=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=10).read()
    return p, url


def bench_backend(name: str, args: argparse.Namespace, tmp: Path, console: Console) -> dict[str, Any]:
    data = tmp / name
    data.mkdir()
    etcd = None
    store = ""
    if name == "etcd":
        etcd = EtcdProcess(tmp / "etcd-data", die_with_parent=True)
        etcd.start()
        store = etcd.store_url
    srv, url = start_apiserver(data, store)
    out: dict[str, Any] = {"api": {}, "raw": {}}
    try:
        console.print(f"[bold]{name}[/bold]: API server at {url}")
        pids = {"apiserver": srv.pid} | ({"etcd": etcd.pid} if etcd and etcd.pid else {})
        out["api"]["create"] = run_verb(url, "create", args.n, args.concurrency, args.procs, cpu_pids=pids)
        out["api"]["get"] = run_verb(url, "get", args.n, args.concurrency, args.procs, n_total=args.n)
        out["api"]["list"] = run_verb(url, "list", max(200, args.n // 10), args.concurrency, args.procs)
        n_paced = int(args.rate * args.paced_seconds)
        out["api"]["paced"] = run_verb(url, "paced", n_paced, 64, args.procs, rate=args.rate)
        out["api"]["paced"]["rate"] = args.rate
        out["api"]["watch"] = asyncio.run(watch_fanout(url, args.watchers, args.watch_events))
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(20)
    raw_url = etcd.store_url if etcd else "sqlite://" + str(data / "raw.db")
    out["raw"] = asyncio.run(raw_store(raw_url, args.n, args.concurrency, etcd.pid if etcd else None))
    if etcd and etcd.pid:
        out["raw"]["put_same_client"] = run_verb(
            etcd.url, "etcdput", args.n, args.concurrency, args.procs, cpu_pids={"etcd": etcd.pid}
        )
    if etcd:
        etcd.stop()
    return out


def cpu_table(results: dict[str, Any]) -> Table:
    """Where the cores went in each create-like run: cores busy and CPU us per operation."""
    t = Table(title="CPU per write (cores busy in the run / CPU microseconds per operation)")
    for col in ("backend", "run", "ops/s", "apiserver", "etcd", "clients", "total"):
        t.add_column(col, justify="left" if col in ("backend", "run") else "right")

    def cell(c: dict[str, Any], role: str) -> str:
        if role not in c["cores"]:
            return ""
        return f"{c['cores'][role]:.2f} / {c['us_per_op'][role]:.0f}"

    for b, r in results.items():
        runs = [("API create", r["api"].get("create"))]
        runs += [("raw put, same client", r["raw"].get("put_same_client"))]
        runs += [("raw put, aetcd", r["raw"].get("raw_put"))]
        for label, res in runs:
            if not res or "cpu" not in res:
                continue
            c = res["cpu"]
            t.add_row(
                b,
                label,
                f"{res['ops_per_s']:.0f}",
                cell(c, "apiserver"),
                cell(c, "etcd"),
                cell(c, "clients"),
                f"{c['total_cores']:.2f} / {c['total_us_per_op']:.0f}",
            )
    return t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--procs", type=int, default=2, help="client processes")
    ap.add_argument("--rate", type=float, default=500.0, help="paced creates per second")
    ap.add_argument("--paced-seconds", type=float, default=6.0)
    ap.add_argument("--watchers", type=int, default=200)
    ap.add_argument("--watch-events", type=int, default=50)
    ap.add_argument("--backends", default="sqlite,etcd")
    args = ap.parse_args()
    console = Console(width=max(132, shutil.get_terminal_size().columns))
    tmp = Path(tempfile.mkdtemp(prefix="api-bench-"))
    results: dict[str, Any] = {}
    try:
        for b in args.backends.split(","):
            if b == "etcd" and not shutil.which("etcd") and not os.path.exists("/usr/bin/etcd"):
                console.print("[yellow]etcd not installed; skipping[/yellow]")
                continue
            results[b] = bench_backend(b, args, tmp, console)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t = Table(
        title=f"API server vs raw store (n={args.n}, concurrency={args.concurrency}, {args.procs} client procs, "
        f"{os.cpu_count()} cores)"
    )
    for col in (
        "backend",
        "verb",
        "API ops/s",
        "API p50 ms",
        "API p99 ms",
        "errors",
        "raw ops/s",
        "raw p99 ms",
        "API/raw",
    ):
        t.add_column(col, justify="right" if col not in ("backend", "verb") else "left")
    for b, r in results.items():
        for verb, a in r["api"].items():
            raw = r["raw"].get(verb, {})
            ratio = f"{a['ops_per_s'] / raw['ops_per_s']:.2f}" if raw.get("ops_per_s") else ""
            label = verb if verb != "paced" else f"create @{a['rate']:.0f}/s"
            if verb == "watch":
                label = f"watch {a['watchers']}x{a['events']} (events/s)"
            t.add_row(
                b,
                label,
                f"{a['ops_per_s']:.0f}",
                f"{a['p50']:.1f}",
                f"{a['p99']:.1f}",
                str(a["errors"]),
                f"{raw.get('ops_per_s', 0):.0f}" if raw else "",
                f"{raw.get('p99', 0):.1f}" if raw else "",
                ratio,
            )
        a = r["api"]["create"]
        for key, label in (
            ("put_same_client", "raw etcd put, same client"),
            ("raw_put", "raw etcd put, aetcd"),
        ):
            rp = r["raw"].get(key)
            if rp:
                ratio = f"create {a['ops_per_s'] / rp['ops_per_s']:.2f}x" if rp["ops_per_s"] else ""
                t.add_row(
                    b,
                    label,
                    "",
                    "",
                    "",
                    str(rp["errors"]),
                    f"{rp['ops_per_s']:.0f}",
                    f"{rp['p99']:.1f}",
                    ratio,
                )
    console.print(t)
    console.print(cpu_table(results))
    doc = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "args": vars(args),
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "api.json").write_text(json.dumps(doc, indent=2))
    console.print(f"wrote {RESULTS / 'api.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
