"""TUI responsiveness: frame and update latency of ``centaurusctl tui`` with 5,000 pods and 1,000 nodes.

A real ``centaurusctl serve apiserver`` process is loaded with ``--pods`` pods (one namespace,
bound round-robin to the nodes) and ``--nodes`` Nodes, created directly through the client.
The app runs headless (``App.run_test``) on the same event loop as the benchmark; a frame is
the moment Textual hands a rendered screen update to its driver (``App._display``: the
compositor has done its work by then), so "on screen" below means "in a rendered frame".

Rows, for the big view and for a baseline view of ``--baseline-pods`` pods in another namespace
(same server, same run):

* ``open`` - start to the full table in a frame (discovery, list, rows, first frame).
* ``update`` - ``--updates`` sequential status writes (phase Running/Pending flips): median and
  p99 of watch event -> row changed in a frame, and of write sent -> frame.
* ``burst`` - ``--burst`` writes at once: time until every row shows its new value.
* ``key`` - cursor keys (down/up, page down/up) -> frame; ``filter`` - one filter keystroke ->
  the filtered rows in a frame (a rebuild over every row; tables over 1,000 rows filter
  after a 0.15 s typing pause, which this includes).
* ``nodes`` - ``:no`` with 1,000 nodes -> full table in a frame; ``capacity`` - the node view
  (1,000 nodes, allocation summed over every pod) -> every node's row present.

Prints a Rich table and writes ``benchmarks/results/tui-<time>.json``.

    .venv/bin/python benchmarks/tui_bench.py [--pods 5000] [--nodes 1000] [--updates 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from textual.widgets import Input  # noqa: E402

from benchmarks._measure import measure, percentile  # noqa: E402
from benchmarks._results import write_results  # noqa: E402
from ctl.client import Client, ClientConfig  # noqa: E402
from ctl.tui.app import CentaurusApp  # noqa: E402
from ctl.tui.screens.capacity import CapacityScreen  # noqa: E402
from tests.cluster import ApiServerProcess  # noqa: E402

BIG, SMALL = "bench", "baseline"


class Frames:
    """Timestamps of the frames the app renders (wraps ``App._display``)."""

    def __init__(self, app: CentaurusApp) -> None:
        self.times: list[float] = []
        inner = app._display

        def display(screen: Any, renderable: Any) -> None:
            inner(screen, renderable)
            if renderable is not None:
                self.times.append(time.perf_counter())

        app._display = display  # type: ignore[method-assign]

    def after(self, t: float) -> float | None:
        """The first frame rendered at or after ``t``."""
        first = None
        for x in reversed(self.times):
            if x < t:
                break
            first = x
        return first


async def wait(cond: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


async def frame_after(frames: Frames, t: float, timeout: float = 10.0) -> float:
    await wait(lambda: frames.after(t) is not None, timeout, "a frame")
    f = frames.after(t)
    assert f is not None
    return f


async def load(client: Client, pods: int, nodes: int, small: int, conc: int) -> dict[str, float]:
    for ns in (BIG, SMALL):
        await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    alloc = {"cpu": "16", "memory": "64Gi", "pods": "110"}

    async def node(i: int) -> None:
        await client.create(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": f"n{i:04d}"},
                "status": {"allocatable": alloc},
            }
        )

    def pod_op(ns: str) -> Callable[[int], Any]:
        async def pod(i: int) -> None:
            spec = {
                "nodeName": f"n{i % nodes:04d}",
                "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "100m"}}}],
            }
            await client.create(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": f"p{i:05d}", "namespace": ns},
                    "spec": spec,
                }
            )

        return pod

    out = {}
    for what, op, n in (
        ("nodes", node, nodes),
        ("pods", pod_op(BIG), pods),
        ("baseline pods", pod_op(SMALL), small),
    ):
        r = await measure(op, n, conc)
        if r["errors"]:
            raise RuntimeError(f"loading {what}: {r['first_error']}")
        out[what] = r["ops_per_s"]
    return out


def ms(x: float) -> float:
    return round(x * 1000, 2)


async def view(
    server: ApiServerProcess, writer: Client, ns: str, n: int, args: argparse.Namespace
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cfg = ClientConfig(server.url, namespace=ns, context="bench")
    app = CentaurusApp(cfg, kind="pods", tick=0)
    frames = Frames(app)
    t0 = time.perf_counter()
    async with app.run_test(size=(160, 50)) as pilot:
        table = app.main.table
        await wait(lambda: table.row_count == n, 120, f"{n} rows")
        f = await frame_after(frames, table.last_flush)
        rows.append(
            {"view": ns, "rows": n, "what": "open", "n": 1, "median_ms": ms(f - t0), "p99_ms": ms(f - t0)}
        )

        # sequential updates: watch event -> frame, write -> frame
        seen: dict[str, float] = {}
        push = table.push

        def timed_push(key: str, obj: dict[str, Any] | None) -> None:
            seen.setdefault(key, time.perf_counter())
            push(key, obj)

        table.push = timed_push  # type: ignore[method-assign]
        ev_to_frame, write_to_frame = [], []
        keys = table.visible_keys()
        for i in range(args.updates):
            key = keys[(i * 7919) % len(keys)]
            name = key.rsplit("/", 1)[-1]
            want = "Running" if table.cell_text(key, "STATUS") != "Running" else "Succeeded"
            seen.pop(key, None)
            ts = time.perf_counter()
            await writer.patch("pods", name, {"status": {"phase": want}}, namespace=ns, subresource="status")
            await wait(lambda k=key, w=want: table.cell_text(k, "STATUS") == w, 10, "the updated row")  # type: ignore[misc]
            shown = await frame_after(frames, table.last_flush)
            ev_to_frame.append(shown - seen[key])
            write_to_frame.append(shown - ts)
        for what, vals in (
            ("update: watch event -> frame", ev_to_frame),
            ("update: write -> frame", write_to_frame),
        ):
            s = sorted(vals)
            rows.append(
                {
                    "view": ns,
                    "rows": n,
                    "what": what,
                    "n": len(s),
                    "median_ms": ms(statistics.median(s)),
                    "p99_ms": ms(percentile(s, 99)),
                }
            )

        # a burst of writes: until every row shows it
        burst = min(args.burst, len(keys))
        targets = keys[:burst]
        want = {k: "Failed" for k in targets}
        tb = time.perf_counter()
        sem = asyncio.Semaphore(32)

        async def write(k: str) -> None:
            async with sem:
                await writer.patch(
                    "pods",
                    k.rsplit("/", 1)[-1],
                    {"status": {"phase": "Failed"}},
                    namespace=ns,
                    subresource="status",
                )

        await asyncio.gather(*(write(k) for k in targets))
        await wait(lambda: all(table.cell_text(k, "STATUS") == v for k, v in want.items()), 60, "the burst")
        done = await frame_after(frames, table.last_flush)
        rows.append(
            {
                "view": ns,
                "rows": n,
                "what": "burst of writes -> all shown",
                "n": burst,
                "median_ms": ms(done - tb),
                "p99_ms": ms(done - tb),
            }
        )

        # keys -> frame
        for key_name, back in (("down", "up"), ("pagedown", "pageup")):
            lat = []
            for i in range(args.keys):
                tk = time.perf_counter()
                await pilot.press(key_name if i % 2 == 0 else back)
                lat.append(await frame_after(frames, tk) - tk)
            s = sorted(lat)
            rows.append(
                {
                    "view": ns,
                    "rows": n,
                    "what": f"key {key_name}/{back} -> frame",
                    "n": len(s),
                    "median_ms": ms(statistics.median(s)),
                    "p99_ms": ms(percentile(s, 99)),
                }
            )
        await pilot.press("slash")
        lat = []
        bar = app.main.query_one("#command", Input)
        for ch in ("p", "0", "backspace", "backspace") * (args.keys // 4 or 1):
            tk = time.perf_counter()
            await pilot.press(ch)
            # until the table shows the filter's rows (big tables filter after a typing pause)
            await wait(lambda: table.filter_text == bar.value, 10, "the filtered rows")
            lat.append(await frame_after(frames, max(table.last_rebuild, tk)) - tk)
        s = sorted(lat)
        rows.append(
            {
                "view": ns,
                "rows": n,
                "what": "filter keystroke -> filtered rows in a frame",
                "n": len(s),
                "median_ms": ms(statistics.median(s)),
                "p99_ms": ms(percentile(s, 99)),
            }
        )
        await pilot.press("escape")

        if ns == BIG:
            tn = time.perf_counter()
            await app.main.run_command("no")
            await wait(lambda: table.row_count == args.nodes, 60, "the nodes")
            f = await frame_after(frames, table.last_flush)
            rows.append(
                {
                    "view": "nodes",
                    "rows": args.nodes,
                    "what": ":no -> full table in a frame",
                    "n": 1,
                    "median_ms": ms(f - tn),
                    "p99_ms": ms(f - tn),
                }
            )
            tc = time.perf_counter()
            app.main.action_capacity()

            def capacity_full() -> bool:
                scr = app.screen
                if not isinstance(scr, CapacityScreen) or not scr.query("#capacity"):
                    return False
                synced = all(f.synced.is_set() for f in scr.feeds) and not scr._scheduled
                return synced and scr.query_one("#capacity").row_count == args.nodes

            await wait(capacity_full, 60, "the capacity view")
            f = await frame_after(frames, time.perf_counter() - 1e-9)
            rows.append(
                {
                    "view": "capacity",
                    "rows": args.nodes,
                    "what": "capacity view populated (all pods summed)",
                    "n": 1,
                    "median_ms": ms(f - tc),
                    "p99_ms": ms(f - tc),
                }
            )
    return rows


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as d:
        server = ApiServerProcess(Path(d) / "api").start()
        try:
            writer = Client(ClientConfig(server.url))
            rates = await load(writer, args.pods, args.nodes, args.baseline_pods, args.concurrency)
            Console().print("loaded: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in rates.items()))
            rows = await view(server, writer, SMALL, args.baseline_pods, args)
            rows += await view(server, writer, BIG, args.pods, args)
            await writer.close()
            return rows
        finally:
            server.stop()


def report(rows: list[dict[str, Any]]) -> None:
    base = {r["what"]: r for r in rows if r["view"] == SMALL}
    t = Table(title="centaurusctl tui responsiveness (headless, real API server)")
    for h in ("view", "rows", "what", "n", "median ms", "p99 ms", "x baseline (median)"):
        t.add_column(h, justify="right" if h not in ("view", "what") else "left")
    for r in rows:
        b = base.get(r["what"])
        ratio = (
            f"{r['median_ms'] / b['median_ms']:.1f}" if b and r["view"] != SMALL and b["median_ms"] else ""
        )
        r["vs_baseline"] = ratio
        t.add_row(
            r["view"],
            f"{r['rows']:,}",
            r["what"],
            str(r["n"]),
            f"{r['median_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            ratio,
        )
    Console(width=140).print(t)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pods", type=int, default=5000)
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--baseline-pods", type=int, default=50)
    p.add_argument("--updates", type=int, default=200)
    p.add_argument("--burst", type=int, default=500)
    p.add_argument("--keys", type=int, default=40)
    p.add_argument("--concurrency", type=int, default=32)
    a = p.parse_args()
    result = asyncio.run(main(a))
    report(result)
    print(write_results("tui", a, result))
