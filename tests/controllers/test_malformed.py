"""Controllers survive malformed objects already in the store: they report each once and go on.

The objects are made valid through the API, then rewritten in the store behind the API
server's back (:mod:`tests.controllers.malformed`): a Deployment with ``spec.strategy:
true`` (which used to fail every sync of the deployment controller with a traceback, about
200 of them), a ReplicaSet with ``spec.replicas: "x"`` and a Node with
``status.conditions: 7``. The controllers then run at DEBUG level, so a retry of a failed
sync would show in the log; the test asserts that the good Deployments next to the bad
objects are rolled out, that each bad object is reported by one warning line (no
traceback), that the deployment got a ``FailedSync`` Warning Event, and that its sync was
not retried in a loop (tracebacks appear only at DEBUG, one per report).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from ctl.client import Client
from tests.cluster import ApiServerProcess, RoleProcess
from tests.controllers.conftest import FakeKubelet, deployment, ensure_node, eventually, replicaset
from tests.controllers.malformed import corrupt, store_key

pytestmark = pytest.mark.slow  # starts an API server (twice) and the controllers

NS = "m"


async def complete(client: Client, name: str) -> bool:
    d = await client.get("deployments", name, namespace=NS)
    st = d.get("status") or {}
    want = d["spec"]["replicas"]
    return bool(st.get("updatedReplicas") == want and st.get("availableReplicas") == want)


def set_field(path: str, value: Any) -> Any:
    *parents, last = path.split(".")

    def change(obj: dict[str, Any]) -> None:
        for p in parents:
            obj = obj.setdefault(p, {})
        obj[last] = value

    return change


def lines(log: str, pattern: str) -> list[str]:
    rx = re.compile(pattern)
    return [line for line in log.splitlines() if rx.search(line)]


async def test_malformed_objects_are_reported_once_and_the_rest_is_reconciled(tmp_path: Path) -> None:
    api = ApiServerProcess(tmp_path).start()
    ctrl: RoleProcess | None = None
    kubelet: FakeKubelet | None = None
    client = api.client()
    try:
        await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        await client.create(deployment("bad", 1, {"app": "bad"}), namespace=NS)
        await client.create(replicaset("bad-rs", 1, {"app": "bad-rs"}), namespace=NS)
        await client.create(deployment("good", 2, {"app": "good"}), namespace=NS)
        await ensure_node(client, "broken")
        await client.close()
        await corrupt(
            api,
            {
                store_key("deployments", "bad", NS): set_field("spec.strategy", True),
                store_key("replicasets", "bad-rs", NS): set_field("spec.replicas", "x"),
                store_key("nodes", "broken"): set_field("status.conditions", 7),
            },
        )
        client = api.client()
        assert (await client.get("deployments", "bad", namespace=NS))["spec"]["strategy"] is True
        ctrl = RoleProcess(
            "controllers",
            ["--server", api.url, "--workers", "2", "--log-level", "DEBUG"],
            tmp_path / "controllers.log",
        ).start()
        kubelet = await FakeKubelet(client, NS).start()
        await eventually(lambda: complete(client, "good"), timeout=30, what="good deployment rolled out")
        await client.create(deployment("later", 1, {"app": "later"}), namespace=NS)
        await eventually(lambda: complete(client, "later"), timeout=30, what="a later deployment rolled out")

        async def failed_sync_event() -> list[dict[str, Any]]:
            evs = (await client.list("events", NS))["items"]
            return [
                e
                for e in evs
                if e.get("reason") == "FailedSync" and (e.get("involvedObject") or {}).get("name") == "bad"
            ]

        (ev,) = await eventually(failed_sync_event, what="a FailedSync event on the bad deployment")
        assert ev["type"] == "Warning" and "AttributeError" in ev["message"], ev
        await asyncio.sleep(3)  # the old per-key back-off would have retried ~6 times by now
        log = ctrl.log()
        # Tracebacks only at DEBUG, one per reported failure (the three objects above).
        assert log.count("Traceback (most recent call last)") == len(lines(log, r"DEBUG .* traceback$")) <= 3
        assert len(lines(log, r"WARNING .*system/m/bad[ )]")) == 1, lines(log, "system/m/bad[ )]")
        assert len(lines(log, r"WARNING .*system/m/bad-rs[ )]")) == 1, lines(log, "system/m/bad-rs[ )]")
        assert len(lines(log, r"WARNING .*(node:broken|//broken)[ )]")) <= 1, lines(log, "broken")
        assert len(lines(log, r"failed again.*system/m/bad ")) <= 2, lines(log, "failed again")
        assert ctrl.proc is not None and ctrl.proc.poll() is None
    finally:
        if kubelet is not None:
            await kubelet.stop()
        await client.close()
        if ctrl is not None:
            ctrl.stop()
        api.stop()
