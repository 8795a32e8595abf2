"""The scheduler survives malformed Nodes and Pods already in the store: it reports each once and goes on.

Two Nodes and a Pod are created valid through the API and rewritten in the store behind
the API server's back (:mod:`tests.controllers.malformed`): ``status.conditions: 7``,
``status.allocatable: "x"`` and ``spec.containers: 7``. The scheduler then runs at DEBUG
level; good pods must be bound to the one good node, the bad pod must stay unbound,
each bad object must be reported by exactly one warning line with no traceback, and
``/metrics`` must count the three.
"""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

import pytest

from tests.cluster import ApiServerProcess
from tests.controllers.malformed import corrupt, store_key
from tests.scheduler.helpers import node, pod
from tests.scheduler.test_scheduler_process import all_bound, start_scheduler

pytestmark = pytest.mark.slow  # starts an API server (twice) and the scheduler


def set_status(field: str, value: object):  # type: ignore[no-untyped-def]
    def change(obj: dict) -> None:  # type: ignore[type-arg]
        obj.setdefault("status", {})[field] = value

    return change


def set_spec(field: str, value: object):  # type: ignore[no-untyped-def]
    def change(obj: dict) -> None:  # type: ignore[type-arg]
        obj["spec"][field] = value

    return change


async def test_malformed_nodes_and_pods_are_reported_once_and_skipped(tmp_path: Path) -> None:
    api = ApiServerProcess(tmp_path).start()
    client = api.client()
    sched = None
    try:
        for name in ("good", "bad-conditions", "bad-allocatable"):
            await client.create(node(name, cpu="8"))
        await client.create(pod("bad-pod", namespace="default"))
        await client.close()
        await corrupt(
            api,
            {
                store_key("nodes", "bad-conditions"): set_status("conditions", 7),
                store_key("nodes", "bad-allocatable"): set_status("allocatable", "x"),
                store_key("pods", "bad-pod", "default"): set_spec("containers", 7),
            },
        )
        client = api.client()
        assert (await client.get("nodes", "bad-conditions"))["status"]["conditions"] == 7
        sched = start_scheduler(["--server", api.url], tmp_path / "scheduler.log")
        names = [f"p{i}" for i in range(6)]
        for n in names:
            await client.create(pod(n, namespace="default"))
        placed = await all_bound(client, names, timeout=20)
        assert set(placed.values()) == {"good"}
        await asyncio.sleep(1.0)
        assert not (await client.get("pods", "bad-pod", "default")).get("spec", {}).get("nodeName")
        log = sched.log()
        for what in ("node bad-conditions ", "node bad-allocatable ", "pod system/default/bad-pod "):
            warned = [ln for ln in log.splitlines() if " WARNING " in ln and what in ln]
            assert len(warned) == 1, (what, warned)
        assert log.count("Traceback (most recent call last)") == log.count(" traceback\n") <= 3
        port = sched.args[sched.args.index("--health-port") + 1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        assert "centaurus_scheduler_malformed_objects_total 3" in metrics
        assert sched.proc is not None and sched.proc.poll() is None
    finally:
        await client.close()
        if sched is not None:
            sched.stop()
        api.stop()
