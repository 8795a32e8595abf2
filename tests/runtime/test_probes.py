"""Probes against real containers: liveness restarts, readiness toggles, startup gating, tcp/http."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from agent.node.probes import Prober, http_get, tcp_connect
from agent.runtime.base import PodRuntimeStatus
from agent.runtime.runc import RuncRuntime
from tests.helpers import eventually
from tests.runtime.conftest import make_pod


class Loop:
    """A miniature agent loop: sync the pod, feed the prober, until a condition holds."""

    def __init__(self, rt: RuncRuntime, prober: Prober, pod: dict) -> None:
        self.rt, self.prober, self.pod = rt, prober, pod
        self.uid = pod["metadata"]["uid"]

    async def until(
        self, pred: Callable[[PodRuntimeStatus], bool], timeout: float = 10.0
    ) -> PodRuntimeStatus:
        last: list[PodRuntimeStatus] = []

        async def holds() -> PodRuntimeStatus | None:
            st = self.prober.apply(await self.rt.sync_pod(self.pod))
            last[:] = [st]
            return st if pred(st) else None

        return await eventually(
            holds,
            timeout,
            0.1,
            "the probe condition",
            diag=lambda: f"{last[0] if last else None} {self.prober.results(self.uid)}",
        )


WEB = "mkdir -p /www && echo ok > /www/ready && exec httpd -f -p 8080 -h /www"


async def test_liveness_failure_restarts_container(runtime: RuncRuntime) -> None:
    pod = make_pod(
        "live",
        [
            {
                "name": "c",
                "image": "busybox",
                "command": ["sh", "-c", "touch /tmp/healthy; sleep 1; rm /tmp/healthy; exec sleep 300"],
                "livenessProbe": {
                    "exec": {"command": ["test", "-f", "/tmp/healthy"]},
                    "periodSeconds": 0.2,
                    "failureThreshold": 2,
                    "timeoutSeconds": 2,
                },
            }
        ],
        terminationGracePeriodSeconds=0.5,
    )
    failures: list[tuple[str, str, str]] = []

    async def on_fail(uid: str, container: str, msg: str) -> None:
        failures.append((uid, container, msg))
        await runtime.restart_container(uid, container, msg)

    prober = Prober(runtime, on_liveness_failure=on_fail)
    loop = Loop(runtime, prober, pod)
    st = await loop.until(lambda s: s.containers[0].state == "running")
    prober.start(pod, st)
    try:
        st = await loop.until(lambda s: s.containers[0].restart_count >= 1, timeout=10)
        assert failures and failures[0][1] == "c" and "Liveness probe failed" in failures[0][2]
        assert st.containers[0].last_terminated and st.containers[0].last_terminated["exitCode"] == 137
        # the new instance is healthy again for a second: no second restart before it fails
        assert st.containers[0].restart_count == 1
        assert prober.results(loop.uid)["c"].liveness_failures == 1
    finally:
        prober.stop(loop.uid)


async def test_readiness_toggles_with_http_probe(runtime: RuncRuntime) -> None:
    pod = make_pod(
        "ready",
        [
            {
                "name": "web",
                "image": "busybox",
                "command": ["sh", "-c", WEB],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {
                    "httpGet": {"path": "/ready", "port": "http"},
                    "periodSeconds": 0.2,
                    "failureThreshold": 1,
                },
                "livenessProbe": {
                    "tcpSocket": {"port": 8080},
                    "periodSeconds": 0.3,
                    "initialDelaySeconds": 0.5,
                },
            }
        ],
    )
    changes: list[str] = []
    prober = Prober(runtime, on_change=changes.append)
    loop = Loop(runtime, prober, pod)
    st = await loop.until(lambda s: s.containers[0].state == "running")
    prober.start(pod, st)
    try:
        st = await loop.until(lambda s: s.containers[0].ready)
        await runtime.exec(loop.uid, "web", ["rm", "/www/ready"])
        st = await loop.until(lambda s: not s.containers[0].ready)
        assert "404" in prober.results(loop.uid)["web"].message
        await runtime.exec(loop.uid, "web", ["sh", "-c", "echo ok > /www/ready"])
        st = await loop.until(lambda s: s.containers[0].ready)
        assert len(changes) >= 3
        # the tcp liveness probe kept passing: no restart
        assert st.containers[0].restart_count == 0
    finally:
        prober.stop(loop.uid)
    # without a prober entry, readiness is just "running"
    assert prober.apply(await runtime.sync_pod(pod)).containers[0].ready


async def test_startup_probe_gates_liveness(runtime: RuncRuntime) -> None:
    pod = make_pod(
        "startup",
        [
            {
                "name": "c",
                "image": "busybox",
                "command": ["sh", "-c", "sleep 1; touch /tmp/started; exec sleep 300"],
                "startupProbe": {
                    "exec": {"command": ["test", "-f", "/tmp/started"]},
                    "periodSeconds": 0.2,
                    "failureThreshold": 20,
                },
                # would fail at once if it ran before startup succeeded
                "livenessProbe": {
                    "exec": {"command": ["test", "-f", "/tmp/started"]},
                    "periodSeconds": 0.2,
                    "failureThreshold": 1,
                },
            }
        ],
    )
    prober = Prober(runtime)
    loop = Loop(runtime, prober, pod)
    st = await loop.until(lambda s: s.containers[0].state == "running")
    prober.start(pod, st)
    try:
        st = await loop.until(lambda s: s.containers[0].ready, timeout=10)
        assert prober.results(loop.uid)["c"].started
        await asyncio.sleep(0.5)
        st = prober.apply(await runtime.sync_pod(pod))
        assert st.containers[0].restart_count == 0
    finally:
        prober.stop(loop.uid)


async def test_probe_helpers_fail_cleanly(host_netns: str) -> None:
    # nothing listens on this port inside the private test namespace
    ok, msg = await tcp_connect("127.0.0.1", 1, 1.0)
    assert not ok and "127.0.0.1:1" in msg
    ok, msg = await http_get("127.0.0.1", 1, "/", 1.0)
    assert not ok
