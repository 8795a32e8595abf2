"""Container probes (startup, liveness, readiness) with kubelet semantics, driven per pod.

The node agent owns one :class:`Prober`. For every pod it runs it calls ``start(pod, status)``, and
after every ``runtime.sync_pod`` it hands the new observation to ``update(status)`` (container IDs,
running state, podIP); ``stop(uid)`` when the pod goes away. One asyncio task per (container, probe)
then probes on its own schedule:

* ``initialDelaySeconds`` after the container instance is first seen running, then every
  ``periodSeconds``; each attempt is bounded by ``timeoutSeconds``;
* a result flips after ``successThreshold`` consecutive successes or ``failureThreshold`` consecutive
  failures (defaults 1 and 3; period 10 s, timeout 1 s, as in Kubernetes; fractional seconds are
  accepted so tests can probe fast);
* while a startup probe has not succeeded, liveness and readiness probes do not run; a failed startup
  or liveness probe calls ``on_liveness_failure(uid, container, message)`` (default: the runtime's
  ``restart_container``), once per container instance;
* readiness starts false and is false whenever the container is not running; a container without a
  readiness probe is ready once running (and started). ``results(uid)`` gives the current per-container
  view and ``apply(status)`` writes it into ``ContainerState.ready``; ``on_change(uid)`` fires when a
  readiness or started bit changes, so the agent can push pod status right away;
  ``on_probe_failure(uid, container, message)`` hears of every failed attempt (the agent's
  ``Unhealthy`` Events).

Handlers: ``exec`` goes through ``runtime.exec``; ``httpGet`` (2xx/3xx is success) and ``tcpSocket``
connect to the pod IP from the agent's network namespace, which is the host side of the pod bridge
(named container ports are resolved). The hollow runtime has no real network, so its network probes
succeed by definition, while its exec probes use the simulated exec.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from agent.runtime.base import ContainerState, PodRuntimeStatus, Runtime, RuntimeError_
from ctl.util.tasks import cancel_and_wait

LivenessCallback = Callable[[str, str, str], Awaitable[None] | None]
ChangeCallback = Callable[[str], Awaitable[None] | None]
ProbeFailureCallback = Callable[[str, str, str], None]

_DEFAULTS = {
    "initialDelaySeconds": 0.0,
    "periodSeconds": 10.0,
    "timeoutSeconds": 1.0,
    "successThreshold": 1,
    "failureThreshold": 3,
}


@dataclass
class ProbeResult:
    """Probe-derived state of one container."""

    ready: bool = False
    started: bool = False
    liveness_failures: int = 0  # restarts requested because of failed liveness/startup probes
    message: str = ""


def _params(probe: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, d in _DEFAULTS.items():
        v = probe.get(k, d)
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            out[k] = float(d)
    out["periodSeconds"] = max(out["periodSeconds"], 0.05)
    out["timeoutSeconds"] = max(out["timeoutSeconds"], 0.05)
    out["successThreshold"] = max(1, int(out["successThreshold"]))
    out["failureThreshold"] = max(1, int(out["failureThreshold"]))
    return out


def _port(port: Any, container: dict[str, Any]) -> int:
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"named port {port!r} not found in container")


async def http_get(
    host: str, port: int, path: str, timeout: float, https: bool = False, headers: Any = None
) -> tuple[bool, str]:
    """One HTTP GET; success on a 2xx or 3xx status."""
    ctx = None
    if https:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
            hdrs = {
                "Host": f"{host}:{port}",
                "User-Agent": "kube-probe/1.32",
                "Accept": "*/*",
                "Connection": "close",
            }
            for h in headers or []:
                if h.get("name"):
                    hdrs[h["name"]] = str(h.get("value", ""))
            req = (
                f"GET {path or '/'} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
            )
            writer.write(req.encode())
            await writer.drain()
            line = await reader.readline()
    except TimeoutError:
        return False, f"Get http://{host}:{port}{path}: timeout after {timeout:g}s"
    except OSError as e:
        return False, f"Get http://{host}:{port}{path}: {e.strerror or e}"
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    parts = line.decode(errors="replace").split()
    if len(parts) < 2 or not parts[1].isdigit():
        return False, f"HTTP probe got a malformed response {line[:60]!r}"
    code = int(parts[1])
    if 200 <= code < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {code}"


async def tcp_connect(host: str, port: int, timeout: float) -> tuple[bool, str]:
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return False, f"dial tcp {host}:{port}: i/o timeout"
    except OSError as e:
        return False, f"dial tcp {host}:{port}: {e.strerror or e}"
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True, ""


class _PodEntry:
    def __init__(self, pod: dict[str, Any]) -> None:
        self.pod = pod
        self.status: PodRuntimeStatus | None = None
        self.results: dict[str, ProbeResult] = {}
        self.tasks: list[asyncio.Task[None]] = []


class Prober:
    """Runs the probes of the pods on one node; see the module docstring for the protocol."""

    def __init__(
        self,
        runtime: Runtime,
        on_liveness_failure: LivenessCallback | None = None,
        on_change: ChangeCallback | None = None,
        on_probe_failure: ProbeFailureCallback | None = None,
    ) -> None:
        self.runtime = runtime
        self.on_liveness_failure = on_liveness_failure
        self.on_change = on_change
        self.on_probe_failure = on_probe_failure
        self._pods: dict[str, _PodEntry] = {}
        self.simulated = runtime.name == "hollow"

    # ---------------------------------------------------------------- public API

    def start(self, pod: dict[str, Any], status: PodRuntimeStatus | None = None) -> None:
        """Begin probing ``pod`` (idempotent: a second call only refreshes the pod object/status)."""
        uid = pod["metadata"]["uid"]
        entry = self._pods.get(uid)
        if entry is not None:
            entry.pod = pod
            if status is not None:
                entry.status = status
            return
        entry = self._pods[uid] = _PodEntry(pod)
        entry.status = status
        for c in (pod.get("spec") or {}).get("containers") or []:
            name = c.get("name") or ""
            has_startup = bool(c.get("startupProbe"))
            entry.results[name] = ProbeResult(ready=False, started=not has_startup)
            for kind in ("startup", "liveness", "readiness"):
                probe = c.get(f"{kind}Probe")
                if probe:
                    entry.tasks.append(asyncio.ensure_future(self._worker(uid, c, kind, probe)))

    def update(self, status: PodRuntimeStatus) -> None:
        """Feed the latest runtime observation of a probed pod."""
        entry = self._pods.get(status.uid)
        if entry is not None:
            entry.status = status

    def stop(self, uid: str) -> None:
        entry = self._pods.pop(uid, None)
        if entry is not None:
            for t in entry.tasks:
                t.cancel()

    async def close(self) -> None:
        tasks = [t for e in self._pods.values() for t in e.tasks]
        self._pods.clear()
        await cancel_and_wait(tasks)

    def results(self, uid: str) -> dict[str, ProbeResult]:
        """Per-container probe state of ``uid`` (readiness already folded with running state)."""
        entry = self._pods.get(uid)
        if entry is None:
            return {}
        out = {}
        for c in (entry.pod.get("spec") or {}).get("containers") or []:
            name = c.get("name") or ""
            r = entry.results[name]
            cs = self._cstate(entry, name)
            running = cs is not None and cs.state == "running"
            ready = running and r.started and (r.ready if c.get("readinessProbe") else True)
            out[name] = ProbeResult(
                ready=ready,
                started=running and r.started,
                liveness_failures=r.liveness_failures,
                message=r.message,
            )
        return out

    def apply(self, status: PodRuntimeStatus) -> PodRuntimeStatus:
        """Set ``ready`` on the containers of ``status`` from the probe results; returns ``status``."""
        self.update(status)
        res = self.results(status.uid)
        for cs in status.containers:
            r = res.get(cs.name)
            cs.ready = bool(r and r.ready) if status.uid in self._pods else cs.state == "running"
        return status

    # ---------------------------------------------------------------- internals

    @staticmethod
    def _cstate(entry: _PodEntry, name: str) -> ContainerState | None:
        if entry.status is None:
            return None
        for cs in entry.status.containers:
            if cs.name == name:
                return cs
        return None

    async def _notify(self, uid: str) -> None:
        if self.on_change is not None:
            r = self.on_change(uid)
            if inspect.isawaitable(r):
                await r

    async def _fail_liveness(self, uid: str, name: str, message: str) -> None:
        entry = self._pods.get(uid)
        if entry is not None:
            entry.results[name].liveness_failures += 1
        if self.on_liveness_failure is not None:
            r = self.on_liveness_failure(uid, name, message)
            if inspect.isawaitable(r):
                await r
        else:
            with contextlib.suppress(RuntimeError_):
                await self.runtime.restart_container(uid, name, message)

    async def run_probe(
        self, uid: str, container: dict[str, Any], probe: dict[str, Any], timeout: float
    ) -> tuple[bool, str]:
        """Run one probe attempt; returns (success, failure message)."""
        entry = self._pods.get(uid)
        status = entry.status if entry is not None else None
        ip = status.pod_ip if status is not None else None
        if ip is None and status is not None and status.sandbox_ready and status.netns is None:
            ip = "127.0.0.1"  # hostNetwork pod: it listens in the agent's own namespace
        try:
            if "exec" in probe:
                cmd = list((probe.get("exec") or {}).get("command") or [])
                if not cmd:
                    return False, "exec probe has no command"
                try:
                    res = await self.runtime.exec(uid, container.get("name"), cmd, timeout=timeout)
                except RuntimeError_ as e:
                    return False, str(e)
                if res.exit_code == 0:
                    return True, ""
                out = (res.stdout + res.stderr).decode(errors="replace").strip()
                return False, f"exec probe exited {res.exit_code}" + (f": {out[:200]}" if out else "")
            if "httpGet" in probe:
                if self.simulated:
                    return True, ""
                hg = probe["httpGet"] or {}
                host = hg.get("host") or ip
                if not host:
                    return False, "pod has no IP yet"
                return await http_get(
                    host,
                    _port(hg.get("port"), container),
                    hg.get("path") or "/",
                    timeout,
                    https=str(hg.get("scheme", "HTTP")).upper() == "HTTPS",
                    headers=hg.get("httpHeaders"),
                )
            if "tcpSocket" in probe:
                if self.simulated:
                    return True, ""
                ts = probe["tcpSocket"] or {}
                host = ts.get("host") or ip
                if not host:
                    return False, "pod has no IP yet"
                return await tcp_connect(host, _port(ts.get("port"), container), timeout)
        except ValueError as e:
            return False, str(e)
        return False, "probe has no supported handler (exec, httpGet, tcpSocket)"

    async def _worker(self, uid: str, container: dict[str, Any], kind: str, probe: dict[str, Any]) -> None:
        p = _params(probe)
        name = container.get("name") or ""
        period = p["periodSeconds"]
        cur_id: str | None = None
        fired_for: str | None = None
        succ = fail = 0
        first_seen = 0.0
        while True:
            entry = self._pods.get(uid)
            if entry is None:
                return
            res = entry.results[name]
            cs = self._cstate(entry, name)
            if cs is None or cs.state != "running":
                changed = False
                if kind == "readiness" and res.ready:
                    res.ready, changed = False, True
                if kind == "startup" and res.started:
                    res.started, changed = False, True
                cur_id = None
                if changed:
                    await self._notify(uid)
                await asyncio.sleep(min(period, 0.2))
                continue
            if cs.container_id != cur_id:
                cur_id = cs.container_id
                succ = fail = 0
                first_seen = time.monotonic()
                if kind == "startup" and res.started:
                    res.started = False
                    await self._notify(uid)
                if kind == "readiness" and res.ready:
                    res.ready = False
                    await self._notify(uid)
            wait = first_seen + p["initialDelaySeconds"] - time.monotonic()
            if wait > 0:
                await asyncio.sleep(min(wait, 0.2))
                continue
            if fired_for == cur_id:
                await asyncio.sleep(min(period, 0.2))
                continue
            if kind == "startup" and res.started:
                await asyncio.sleep(period)
                continue
            if kind != "startup" and not res.started:
                await asyncio.sleep(min(period, 0.2))
                continue
            ok, msg = await self.run_probe(uid, container, probe, p["timeoutSeconds"])
            if uid not in self._pods:
                return
            if ok:
                succ, fail = succ + 1, 0
            else:
                succ, fail = 0, fail + 1
                res.message = f"{kind.capitalize()} probe failed: {msg}"
                if self.on_probe_failure is not None:
                    self.on_probe_failure(uid, name, res.message)
            if kind == "readiness":
                if ok and succ >= p["successThreshold"] and not res.ready:
                    res.ready = True
                    await self._notify(uid)
                elif not ok and fail >= p["failureThreshold"] and res.ready:
                    res.ready = False
                    await self._notify(uid)
            elif kind == "startup":
                if ok and succ >= p["successThreshold"]:
                    res.started = True
                    await self._notify(uid)
                elif not ok and fail >= p["failureThreshold"]:
                    fired_for = cur_id
                    await self._fail_liveness(uid, name, res.message)
            else:  # liveness
                if not ok and fail >= p["failureThreshold"]:
                    fired_for = cur_id
                    await self._fail_liveness(uid, name, res.message)
            await asyncio.sleep(period)
