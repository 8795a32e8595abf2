"""One tenant floods the API server at 10x its share; another tenant's latency, with and without the flood.

A real ``centaurusctl serve apiserver`` (embedded store) serves two tenants. Tenant ``b``
sends paced requests (``--rate`` per second for ``--seconds``: alternately a create and a
list of its ConfigMaps) and its latencies are measured. Tenant ``a`` floods from its own
process with ``--factor`` x its share of concurrent requests (the share is
``--tenant-max-inflight`` seats; creates, which hold a seat through the store's fsync, and
lists), bounded by ``--seconds`` and ``--max-flood`` requests. Three runs, same machine, one
sitting:

* ``quiet``: tenant b alone (flow control on);
* ``flood, fairness on``: the flood against the default flow control;
* ``flood, fairness off``: the same flood with ``--max-requests-inflight 0`` (the baseline:
  what the server did before priority and fairness).

The table shows tenant b's p50/p99/max side by side with tenant a's throughput and 429s.
The target: tenant b's p99 under the flood, fairness on, stays under 1 s.
Writes ``benchmarks/results/flood.json``.

    .venv/bin/python benchmarks/flood_bench.py [--seconds 15] [--rate 20] [--factor 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks._measure import percentile  # noqa: E402
from ctl.apiserver.auth import SYSTEM_MASTERS, TokenFile  # noqa: E402

ADMIN, A, B = (
    "flood-admin-token-0123456789",
    "flood-tenant-a-token-0123456789",
    "flood-tenant-b-token-0123456789",
)
RESULTS = Path(__file__).resolve().parent / "results"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    req = urllib.request.Request(
        url + path, data=json.dumps(body).encode() if body is not None else None, method=method
    )
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def start_apiserver(data: Path, extra: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    tokens = TokenFile(data / "tokens.json")
    tokens.add(ADMIN, "system:admin", "system", [SYSTEM_MASTERS, "system:authenticated"])
    tokens.add(A, "alice", "a", ["system:authenticated"])
    tokens.add(B, "bob", "b", ["system:authenticated"])
    port = _free_port()
    log = open(data / "apiserver.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ctl", "serve", "apiserver", "--data-dir", str(data), "--port", str(port)]
        + ["--insecure-http", "--log-level", "warning", *extra],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"apiserver exited: {(data / 'apiserver.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.05)
    for tenant, user in (("a", "alice"), ("b", "bob")):
        _call(url, ADMIN, "POST", "/api/v1/tenants", {"metadata": {"name": tenant}})
        _call(url, ADMIN, "POST", f"/api/v1/tenants/{tenant}/namespaces", {"metadata": {"name": "default"}})
        rbac = f"/apis/rbac.authorization.k8s.io/v1/tenants/{tenant}"
        rules = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
        _call(url, ADMIN, "POST", f"{rbac}/clusterroles", {"metadata": {"name": "admin"}, "rules": rules})
        _call(
            url,
            ADMIN,
            "POST",
            f"{rbac}/clusterrolebindings",
            {
                "metadata": {"name": "admin"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
                "subjects": [{"kind": "User", "name": user}],
            },
        )
    return proc, url


def _cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v" * 200}}


async def _create_or_list(s: aiohttp.ClientSession, url: str, i: int, name: str, limit: int) -> int:
    """Odd ``i``: create ConfigMap ``name``; even: list ``limit`` ConfigMaps. Returns the HTTP status."""
    path = f"{url}/api/v1/namespaces/default/configmaps"
    r = await (s.post(path, json=_cm(name)) if i % 2 else s.get(f"{path}?limit={limit}"))
    await r.read()
    return r.status


def _flood_proc(url: str, concurrency: int, seconds: float, max_requests: int, out: Any) -> None:
    """Tenant a: ``concurrency`` workers, creates and lists, until the time or count bound."""

    async def go() -> dict[str, Any]:
        counts: dict[str, int] = {}
        sent = 0
        deadline = time.monotonic() + seconds
        conn = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {A}"}, connector=conn) as s:

            async def worker(w: int) -> None:
                nonlocal sent
                i = 0
                while time.monotonic() < deadline and sent < max_requests:
                    sent += 1
                    i += 1
                    try:
                        status = await _create_or_list(s, url, i, f"f-{w}-{i}", 500)
                        code = str(status)
                        if status == 429:
                            await asyncio.sleep(
                                0.01
                            )  # a well-behaved client would honour Retry-After; a flood does not
                    except aiohttp.ClientError as e:
                        code = type(e).__name__
                    counts[code] = counts.get(code, 0) + 1

            t0 = time.monotonic()
            await asyncio.gather(*(worker(w) for w in range(concurrency)))
            return {"counts": counts, "seconds": round(time.monotonic() - t0, 2), "requests": sent}

    out.put(asyncio.run(go()))


async def paced(url: str, rate: float, seconds: float) -> dict[str, Any]:
    """Tenant b: a create or a list every 1/rate seconds; latencies of each (ms)."""
    lat: list[float] = []
    codes: dict[str, int] = {}
    n = int(rate * seconds)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {B}"}) as s:

        async def one(i: int) -> None:
            t0 = time.perf_counter()
            status = await _create_or_list(s, url, i, f"p-{i}-{time.time_ns()}", 50)
            lat.append((time.perf_counter() - t0) * 1000)
            codes[str(status)] = codes.get(str(status), 0) + 1

        start = time.monotonic()
        tasks = []
        for i in range(n):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    lat.sort()
    return {
        "requests": n,
        "codes": codes,
        "p50_ms": round(percentile(lat, 50), 2),
        "p99_ms": round(percentile(lat, 99), 2),
        "max_ms": round(lat[-1] if lat else 0.0, 2),
    }


def run(name: str, args: argparse.Namespace, tmp: Path, flood: bool, fairness: bool) -> dict[str, Any]:
    data = tmp / name.replace(" ", "-").replace(",", "")
    data.mkdir()
    extra = ["--tenant-max-inflight", str(args.tenant_max_inflight)]
    if not fairness:
        extra += ["--max-requests-inflight", "0"]
    proc, url = start_apiserver(data, extra)
    try:
        fl = None
        q: Any = mp.get_context("spawn").Queue()
        if flood:
            concurrency = args.factor * args.tenant_max_inflight
            fl = mp.get_context("spawn").Process(
                target=_flood_proc, args=(url, concurrency, args.seconds + 2, args.max_flood, q)
            )
            fl.start()
            time.sleep(1.5)  # the flood is under way before tenant b starts
        result: dict[str, Any] = {"b": asyncio.run(paced(url, args.rate, args.seconds))}
        if fl is not None:
            result["a"] = q.get(timeout=args.seconds + 60)
            fl.join(30)
        return result
    finally:
        proc.terminate()
        proc.wait(15)


def _ok(codes: dict[str, int]) -> int:
    return sum(n for c, n in codes.items() if c.startswith("2"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--seconds", type=float, default=15.0, help="how long tenant b runs (the flood a bit longer)"
    )
    p.add_argument("--rate", type=float, default=20.0, help="tenant b's requests per second")
    p.add_argument("--factor", type=int, default=10, help="the flood's concurrency, in shares")
    p.add_argument("--tenant-max-inflight", type=int, default=8, help="a tenant's share (seats)")
    p.add_argument("--max-flood", type=int, default=200_000, help="most requests the flood sends")
    args = p.parse_args()
    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="flood-bench-"))
    runs: dict[str, dict[str, Any]] = {}
    try:
        for name, flood, fairness in (
            ("quiet", False, True),
            ("flood, fairness on", True, True),
            ("flood, fairness off", True, False),
        ):
            console.print(f"[dim]{name}...[/dim]")
            runs[name] = run(name, args, tmp, flood, fairness)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t = Table(
        title=f"tenant b paced at {args.rate:g}/s for {args.seconds:g}s; tenant a floods at {args.factor}x its share"
    )
    for col in ("run", "b p50 ms", "b p99 ms", "b max ms", "b ok", "a req/s", "a 2xx", "a 429"):
        t.add_column(col, justify="right" if col != "run" else "left")
    for name, r in runs.items():
        a = r.get("a")
        t.add_row(
            name,
            f"{r['b']['p50_ms']:.1f}",
            f"{r['b']['p99_ms']:.1f}",
            f"{r['b']['max_ms']:.1f}",
            f"{_ok(r['b']['codes'])}/{r['b']['requests']}",
            f"{sum(a['counts'].values()) / a['seconds']:.0f}" if a else "-",
            str(_ok(a["counts"])) if a else "-",
            str(a["counts"].get("429", 0)) if a else "-",
        )
    console.print(t)
    held = runs["flood, fairness on"]["b"]["p99_ms"] < 1000
    console.print(f"tenant b p99 under the flood with fairness: {'held (< 1 s)' if held else 'NOT held'}")
    RESULTS.mkdir(exist_ok=True)
    out = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "args": vars(args),
        "runs": runs,
        "target_held": held,
    }
    (RESULTS / "flood.json").write_text(json.dumps(out, indent=1))
    console.print(f"wrote {RESULTS / 'flood.json'}")
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
