"""Raw store throughput: create/get/list/update on sqlite and etcd, against raw aetcd puts.

For each backend and each concurrency level the benchmark creates ``n`` keys, reads
them back, lists pages of 100, and CAS-updates every key (each key is updated by one
worker, so no conflicts). The baseline in the same run is ``n`` raw ``aetcd`` puts
through the etcd store's own client: the etcd store's overhead (transactions, Python
mapping) shows as the ratio ``create / raw put`` (the API benchmark target is API
server on etcd >= 0.5x raw etcd puts).

Runs a throwaway loopback etcd (:class:`ctl.cluster.etcd_process.EtcdProcess`) unless
``--etcd host:port`` is given, and a temporary sqlite file. Prints a Rich table and
writes ``benchmarks/results/store_bench-<time>.json``.

    .venv/bin/python benchmarks/store_bench.py [--n 2000] [--concurrency 1,64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks._measure import measure  # noqa: E402
from ctl.cluster.etcd_process import EtcdProcess  # noqa: E402
from ctl.store import Store, open_store  # noqa: E402
from ctl.store.etcd import EtcdStore  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


async def bench_store(
    store: Store, label: str, n: int, concurrency: int, value: bytes
) -> list[dict[str, Any]]:
    prefix = f"/registry/bench/{label}-c{concurrency}-{time.monotonic_ns()}/"
    keys = [f"{prefix}k{i:07d}" for i in range(n)]
    revs: list[int] = [0] * n
    rows = []

    async def create(i: int) -> None:
        revs[i] = (await store.create(keys[i], value)).mod_revision

    async def get(i: int) -> None:
        if await store.get(keys[random.randrange(n)]) is None:
            raise AssertionError("missing key")

    async def list_page(i: int) -> None:
        start = keys[random.randrange(n)]
        await store.list(prefix, limit=100, start_after=start)

    async def update(i: int) -> None:
        revs[i] = (await store.update(keys[i], value, expected_revision=revs[i])).mod_revision

    for op_name, op, count in (
        ("create", create, n),
        ("get", get, n),
        ("list100", list_page, max(1, n // 4)),
        ("update", update, n),
    ):
        res = await measure(op, count, concurrency)
        rows.append({"backend": label, "op": op_name, **res})
    return rows


async def bench_raw_put(store: EtcdStore, n: int, concurrency: int, value: bytes) -> dict[str, Any]:
    await store.start()
    client = store._client  # the same aetcd client/channel the store uses
    assert client is not None
    prefix = f"/registry/bench/raw-c{concurrency}-{time.monotonic_ns()}/"

    async def put(i: int) -> None:
        await client.put(f"{prefix}k{i:07d}".encode(), value)

    res = await measure(put, n, concurrency)
    return {"backend": "etcd-raw-aetcd", "op": "put", **res}


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    value = random.Random(1).randbytes(args.value_size)
    rows: list[dict[str, Any]] = []
    conc = [int(c) for c in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        proc = None
        if "etcd" in args.backends:
            if args.etcd:
                endpoints = [args.etcd]
            else:
                proc = EtcdProcess(Path(tmp) / "etcd", die_with_parent=True)
                proc.start()
                endpoints = proc.endpoints
        try:
            for c in conc:
                n = args.n if c > 1 else args.n_seq
                if "etcd" in args.backends:
                    etcd = EtcdStore(endpoints)
                    await etcd.start()
                    await bench_raw_put(etcd, min(n, 500), c, value)  # warm-up, not reported
                    raw = await bench_raw_put(etcd, n, c, value)
                    rows.append(raw)
                    for r in await bench_store(etcd, "etcd", n, c, value):
                        rows.append(r)
                    raw2 = await bench_raw_put(etcd, n, c, value)  # again: disk/cache drift check
                    raw2["op"] = "put (after)"
                    rows.append(raw2)
                    await etcd.close()
                if "sqlite" in args.backends:
                    sq = open_store("sqlite://" + os.path.join(tmp, f"bench-{c}.db"))
                    await sq.start()
                    rows.extend(await bench_store(sq, "sqlite", n, c, value))
                    await sq.close()
        finally:
            if proc is not None:
                proc.stop()
    return rows


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> Path:
    baseline: dict[int, float] = {}
    for r in rows:
        if r["backend"] == "etcd-raw-aetcd" and r["op"] == "put":
            baseline[r["concurrency"]] = r["ops_per_s"]
    table = Table(
        title=f"store throughput (value {args.value_size} B; baseline = raw aetcd put, same client)"
    )
    for col in ("backend", "op", "conc", "n", "ops/s", "p50 ms", "p99 ms", "vs raw put", "errors"):
        table.add_column(col, justify="right" if col not in ("backend", "op") else "left")
    for r in rows:
        base = baseline.get(r["concurrency"])
        r["vs_raw_put"] = round(r["ops_per_s"] / base, 3) if base else None
        table.add_row(
            r["backend"],
            r["op"],
            str(r["concurrency"]),
            str(r["n"]),
            f"{r['ops_per_s']:,.0f}",
            f"{r['p50']:.2f}",
            f"{r['p99']:.2f}",
            f"{r['vs_raw_put']:.2f}x" if r["vs_raw_put"] is not None else "-",
            str(r["errors"]) + (f" ({r['first_error']})" if r["errors"] else ""),
        )
    Console(width=max(Console().width, 120)).print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"store_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": "store_bench",
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "host": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "args": vars(args),
                "rows": rows,
            },
            indent=2,
        )
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="operations per op at concurrency > 1")
    ap.add_argument("--n-seq", type=int, default=300, help="operations per op at concurrency 1")
    ap.add_argument("--concurrency", default="1,64", help="comma-separated concurrency levels")
    ap.add_argument("--backends", default="sqlite,etcd")
    ap.add_argument("--etcd", help="use this etcd host:port instead of starting one")
    ap.add_argument("--value-size", type=int, default=1024)
    ap.add_argument("--no-uvloop", action="store_true")
    args = ap.parse_args(argv)
    if not args.no_uvloop:
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
    rows = asyncio.run(run(args))
    out = report(rows, args)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
