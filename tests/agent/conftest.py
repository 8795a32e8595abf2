"""Fixtures for node agent tests: a real API server plus ``centaurusctl serve agent`` as a subprocess.

``AgentProcess`` runs the agent like any role, optionally inside a network namespace (``nsenter --net``;
not ``ip netns exec``, whose private /sys has no cgroup mounts for runc)
that the fixture created as the simulated host; such an agent reaches the API server over its Unix
socket and serves its own endpoint on a Unix socket too, so nothing crosses the test host's network.
Helpers: :func:`wait_for` polls an async condition with a deadline, :func:`make_pod` builds pod bodies,
:func:`agent_get`/:func:`agent_post` talk to the agent endpoint over TCP or a Unix socket.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.cluster import ROOT, RoleProcess
from tests.helpers import eventually


class AgentProcess(RoleProcess):
    def __init__(self, args: list[str], log_path: Path, netns: str | None = None) -> None:
        super().__init__("agent", args, log_path)
        self.netns = netns

    def start(self) -> AgentProcess:
        if self.netns is None:
            super().start()
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                "nsenter",
                f"--net=/run/netns/{self.netns}",
                sys.executable,
                "-m",
                "ctl",
                "serve",
                "agent",
                *self.args,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=ROOT,
            start_new_session=True,
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


async def wait_for(
    fn: Callable[[], Awaitable[Any]],
    timeout: float = 20.0,
    interval: float = 0.1,
    what: str = "condition",
    log: Callable[[], str] | None = None,
) -> Any:
    """Poll ``fn`` until it returns something truthy; fail with ``what`` (and the agent log tail) on timeout.

    Exceptions count as "not yet" (an API server or agent that is restarting answers with errors).
    """
    diag = (lambda: "--- agent log ---\n" + log()[-4000:]) if log else None
    return await eventually(fn, timeout, interval, what, diag=diag, ignore=(Exception,))


def make_pod(
    name: str,
    containers: list[dict[str, Any]] | None = None,
    namespace: str = "default",
    restart_policy: str = "Always",
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        md["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": md,
        "spec": {
            "containers": containers or [{"name": "c", "image": "busybox:latest"}],
            "restartPolicy": restart_policy,
            **spec,
        },
    }


def _session(base: str) -> tuple[aiohttp.ClientSession, str]:
    if base.startswith("unix://"):
        return aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=base[len("unix://") :])
        ), "http://agent"
    return aiohttp.ClientSession(), base


async def agent_get(
    base: str, path: str, params: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, bytes]:
    s, url = _session(base)
    async with s:
        async with s.get(url + path, params=params, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            return r.status, await r.read()


async def agent_post(base: str, path: str, body: Any, timeout: float = 20) -> tuple[int, Any]:
    s, url = _session(base)
    async with s:
        async with s.post(
            url + path, data=orjson.dumps(body), timeout=aiohttp.ClientTimeout(total=timeout)
        ) as r:
            return r.status, orjson.loads(await r.read())


def is_root() -> bool:
    return os.geteuid() == 0
