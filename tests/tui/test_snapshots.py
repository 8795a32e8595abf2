"""Snapshot tests (pytest-textual-snapshot) of the TUI's main screens against a real API server.

The objects have fixed names and the app renders ages from a fixed clock (three days and an
hour after the objects were made, so every AGE reads ``3d``), so the screens are the same on
every run: the pods table, the deployments table filtered, the node capacity view, the
network view, and the help screen. ``pytest --snapshot-update tests/tui/test_snapshots.py``
rewrites the SVGs under ``__snapshots__/`` after an intended change (look at them first).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ctl.client import ClientConfig
from ctl.tui.app import CentaurusApp
from ctl.tui.screens.capacity import CapacityScreen
from ctl.tui.screens.topology import TopologyScreen
from tests.cluster import ApiServerProcess
from tests.tui.conftest import deployment, pod, until

NS = "snap"
SIZE = (110, 24)


@pytest.fixture(scope="module")
def world(apiserver: ApiServerProcess) -> Iterator[float]:
    """Fixed objects on the module's server; yields the fixed 'now' the app renders ages at."""
    c = apiserver.sync_client()
    made = time.time()
    c.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    for i in range(3):
        alloc = {"cpu": "4", "memory": "8Gi", "pods": "10"}
        c.create(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": f"node-{i}"},
                "status": {"allocatable": alloc},
            }
        )
    req = {"requests": {"cpu": "1", "memory": "3Gi"}}
    for i, node in enumerate(("node-0", "node-0", "node-0", "node-1", "")):
        spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox", "resources": req}]}
        if node:
            spec["nodeName"] = node
        c.create(pod(f"web-{i}", {"app": "web"}, **spec), namespace=NS)
    for name in ("front", "back", "batch"):
        c.create(deployment(name, 2), namespace=NS)
    c.create(
        {
            "apiVersion": "mizar.centaurus.io/v1",
            "kind": "VPC",
            "metadata": {"name": "vpc-a"},
            "spec": {"cidr": "10.50.0.0/16", "dividers": 1},
        }
    )
    for s in (1, 2):
        c.create(
            {
                "apiVersion": "mizar.centaurus.io/v1",
                "kind": "Subnet",
                "metadata": {"name": f"sub-{s}"},
                "spec": {"vpc": "vpc-a", "cidr": f"10.50.{s}.0/24", "bouncers": 1},
            }
        )
    c.create(
        {
            "apiVersion": "mizar.centaurus.io/v1",
            "kind": "Endpoint",
            "metadata": {"name": "ep-web-0"},
            "spec": {"subnet": "sub-1", "vpc": "vpc-a", "ip": "10.50.1.10", "pod": "web-0"},
        },
        namespace=NS,
    )
    c.close()
    yield made + 3 * 86400 + 3600


def app_for(server: ApiServerProcess, now: float, kind: str = "pods") -> CentaurusApp:
    cfg = ClientConfig(server.url, namespace=NS, context="snap")
    return CentaurusApp(cfg, kind=kind, clock=lambda: now, tick=0, monitor_interval=0.2)


def listed(n: int) -> Callable[[Any], Any]:
    async def run_before(pilot: Any) -> None:
        app = pilot.app
        await until(
            lambda: app.main.ready.is_set() and app.main.table.row_count == n and app.main.status.up, "rows"
        )
        await pilot.pause()

    return run_before


def test_pods_screen(apiserver: ApiServerProcess, world: float, snap_compare: Any) -> None:
    assert snap_compare(app_for(apiserver, world), terminal_size=SIZE, run_before=listed(5))


def test_deployments_filtered(apiserver: ApiServerProcess, world: float, snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await listed(3)(pilot)
        await pilot.press("slash", "b", "a")
        await until(lambda: pilot.app.main.table.row_count == 2, "filtered rows")

    assert snap_compare(app_for(apiserver, world, "deployments"), terminal_size=SIZE, run_before=run_before)


def test_capacity_screen(apiserver: ApiServerProcess, world: float, snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await listed(5)(pilot)
        await pilot.press("N")
        app = pilot.app

        def ready() -> bool:
            if not isinstance(app.screen, CapacityScreen):
                return False
            t = app.screen.query_one("#capacity")
            synced = all(f.synced.is_set() for f in app.screen.feeds) and not app.screen._scheduled
            pods = [str(t.get_cell(n, "PODS")) for n in ("node-0", "node-1", "node-2") if n in t.rows]
            return (
                synced
                and t.has_focus
                and len(pods) == 3
                and "3/10" in pods[0]
                and "1/10" in pods[1]
                and "0/10" in pods[2]
            )

        await until(ready, "the node view")

    assert snap_compare(app_for(apiserver, world), terminal_size=SIZE, run_before=run_before)


def test_network_screen(apiserver: ApiServerProcess, world: float, snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await listed(5)(pilot)
        await pilot.press("X")
        app = pilot.app

        def ready() -> bool:
            if not isinstance(app.screen, TopologyScreen):
                return False
            labels: list[str] = []
            stack = [app.screen.query_one("#topology").root]
            while stack:
                n = stack.pop()
                labels.append(str(n.label))
                stack += n.children
            return any("ep-web-0" in x for x in labels) and sum("bouncers" in x for x in labels) == 2

        await until(ready, "the network view", timeout=15)

    assert snap_compare(app_for(apiserver, world), terminal_size=SIZE, run_before=run_before)


def test_help_screen(apiserver: ApiServerProcess, world: float, snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await listed(5)(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app_for(apiserver, world), terminal_size=(110, 40), run_before=run_before)
