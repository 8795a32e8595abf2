"""A hollow runtime: pods that look alive to the control plane but run nothing (like kubemark/KWOK).

Used for scale tests: one process can host thousands of hollow nodes, so each pod costs a small
object and no process, no timer and no task. State advances lazily, only when the agent calls
``sync_pod`` or ``list_pods`` (the same level-triggered contract as the runc runtime):

* a new pod's containers are ``ContainerCreating`` for ``start_delay`` seconds, then ``running``;
* the pod gets a fake podIP from this node's range (``pod_cidr``), unique on the node and reused
  only after the pod is killed;
* annotations make containers exit, so restart policies and back-off can be exercised at scale:

  ``hollow.centaurus.io/run-seconds``  a container exits this long after it started (default: never)
  ``hollow.centaurus.io/exit-code``    with this exit code (default 0)
  ``hollow.centaurus.io/exec-exit-code``   what ``exec`` (and so exec probes) returns (default 0)

  Restarts follow ``restartPolicy`` with the kubelet back-off (:mod:`agent.runtime.backoff`),
  including ``CrashLoopBackOff``.

``exec`` returns the configured exit code with empty output, ``logs`` a synthetic line per start.
Nothing is persisted: a restarted hollow agent starts empty (its pods are recreated on the next sync).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from agent.runtime.backoff import BackOff
from agent.runtime.base import (
    ContainerState,
    ExecResult,
    PodRuntimeStatus,
    Runtime,
    RuntimeError_,
    rfc3339_or_none,
)

ANN_RUN_SECONDS = "hollow.centaurus.io/run-seconds"
ANN_EXIT_CODE = "hollow.centaurus.io/exit-code"
ANN_EXEC_EXIT_CODE = "hollow.centaurus.io/exec-exit-code"


@dataclass(slots=True)
class _HC:
    """One hollow container."""

    name: str
    image: str
    n: int = 0
    started: float | None = None
    finished: float | None = None
    exit_code: int | None = None
    last: dict[str, Any] | None = None


@dataclass(slots=True)
class _HP:
    """One hollow pod."""

    pod: dict[str, Any]
    created: float
    ip: str
    containers: dict[str, _HC] = field(default_factory=dict)


class HollowRuntime(Runtime):
    """Simulated pods for one hollow node."""

    name = "hollow"

    def __init__(
        self,
        node_name: str = "hollow",
        pod_cidr: str = "10.200.0.0/16",
        start_delay: float = 0.5,
        backoff_initial: float = 10.0,
        backoff_max: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.node_name = node_name
        self.network = ipaddress.ip_network(pod_cidr, strict=False)
        self.start_delay = start_delay
        self.clock = clock
        self.backoff = BackOff(backoff_initial, backoff_max, clock)
        self._pods: dict[str, _HP] = {}
        self._next_ip = int(self.network.network_address) + 2
        self._free_ips: list[str] = []

    def _alloc_ip(self) -> str:
        if self._free_ips:
            return self._free_ips.pop()
        if self._next_ip >= int(self.network.broadcast_address):
            raise RuntimeError_("IPExhausted", f"hollow pod CIDR {self.network} is exhausted")
        ip = str(ipaddress.ip_address(self._next_ip))
        self._next_ip += 1
        return ip

    @staticmethod
    def _ann(pod: dict[str, Any], key: str, cast: Callable[[str], Any], default: Any) -> Any:
        v = ((pod.get("metadata") or {}).get("annotations") or {}).get(key)
        if v is None:
            return default
        try:
            return cast(v)
        except (TypeError, ValueError):
            return default

    def _advance(self, hp: _HP) -> None:
        """Move the simulation to now: start, exit and restart containers as due."""
        now = self.clock()
        pod = hp.pod
        uid = pod["metadata"]["uid"]
        policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
        run_s = self._ann(pod, ANN_RUN_SECONDS, float, None)
        code = self._ann(pod, ANN_EXIT_CODE, int, 0)
        for hc in hp.containers.values():
            if hc.started is None and hc.finished is None:
                if now >= hp.created + self.start_delay:
                    hc.started = hp.created + self.start_delay
            if hc.started is not None and hc.finished is None and run_s is not None:
                if now >= hc.started + run_s:
                    hc.finished = hc.started + run_s
                    hc.exit_code = code
            if hc.finished is not None and hc.exit_code is not None:
                restart = policy == "Always" or (policy == "OnFailure" and hc.exit_code != 0)
                key = f"{uid}/{hc.name}"
                if restart and not self.backoff.in_backoff_since(key, hc.finished):
                    self.backoff.next(key, hc.finished)
                    hc.last = self._terminated(hc)
                    hc.n += 1
                    hc.started, hc.finished, hc.exit_code = now, None, None

    @staticmethod
    def _terminated(hc: _HC) -> dict[str, Any]:
        return {
            "exitCode": hc.exit_code,
            "reason": "Completed" if hc.exit_code == 0 else "Error",
            "startedAt": rfc3339_or_none(hc.started),
            "finishedAt": rfc3339_or_none(hc.finished),
            "containerID": f"hollow://{hc.name}-{hc.n}",
        }

    def _status(self, uid: str, hp: _HP) -> PodRuntimeStatus:
        meta = hp.pod.get("metadata") or {}
        policy = (hp.pod.get("spec") or {}).get("restartPolicy") or "Always"
        st = PodRuntimeStatus(
            uid=uid,
            name=meta.get("name", ""),
            namespace=meta.get("namespace", "default"),
            tenant=meta.get("tenant", "system"),
            runtime=self.name,
            pod_ip=hp.ip,
            sandbox_ready=True,
        )
        done = True
        for hc in hp.containers.values():
            cs = ContainerState(name=hc.name, image=hc.image, restart_count=hc.n, last_terminated=hc.last)
            cs.container_id = f"hollow://{uid[:12]}-{hc.name}-{hc.n}"
            if hc.finished is not None:
                restart = policy == "Always" or (policy == "OnFailure" and hc.exit_code != 0)
                if restart:
                    cs.state, cs.reason = "waiting", "CrashLoopBackOff"
                    cs.message = f"back-off {self.backoff.current(f'{uid}/{hc.name}'):g}s restarting failed container={hc.name} pod={meta.get('name')}"
                    cs.last_terminated = self._terminated(hc)
                    done = False
                else:
                    cs.state, cs.exit_code = "terminated", hc.exit_code
                    cs.reason = "Completed" if hc.exit_code == 0 else "Error"
                    cs.started_at, cs.finished_at = rfc3339_or_none(hc.started), rfc3339_or_none(hc.finished)
            elif hc.started is not None:
                cs.state, cs.started_at = "running", rfc3339_or_none(hc.started)
                done = False
            else:
                cs.state, cs.reason = "waiting", "ContainerCreating"
                done = False
            st.containers.append(cs)
        st.finished = done and bool(st.containers)
        return st

    async def sync_pod(self, pod: dict[str, Any]) -> PodRuntimeStatus:
        uid = (pod.get("metadata") or {}).get("uid") or ""
        if not uid:
            raise RuntimeError_("InvalidPod", "pod has no uid")
        containers = (pod.get("spec") or {}).get("containers") or []
        if not containers:
            raise RuntimeError_("InvalidPod", "pod has no containers")
        hp = self._pods.get(uid)
        if hp is None:
            hp = self._pods[uid] = _HP(pod=pod, created=self.clock(), ip=self._alloc_ip())
        hp.pod = pod
        for c in containers:
            name = c.get("name") or ""
            if name not in hp.containers:
                hp.containers[name] = _HC(name=name, image=c.get("image") or "")
        self._advance(hp)
        return self._status(uid, hp)

    async def kill_pod(self, uid: str, grace_seconds: float = 10.0) -> None:
        hp = self._pods.pop(uid, None)
        if hp is not None:
            self._free_ips.append(hp.ip)
            self.backoff.forget_prefix(uid + "/")

    async def list_pods(self) -> list[PodRuntimeStatus]:
        out = []
        for uid, hp in self._pods.items():
            self._advance(hp)
            out.append(self._status(uid, hp))
        return out

    def _get(self, uid: str, container: str | None) -> tuple[_HP, _HC]:
        hp = self._pods.get(uid)
        if hp is None:
            raise RuntimeError_("NotFound", f"pod {uid} is not on this node")
        if container is None:
            return hp, next(iter(hp.containers.values()))
        hc = hp.containers.get(container)
        if hc is None:
            raise RuntimeError_("NotFound", f"container {container!r} not found in pod")
        return hp, hc

    async def logs(
        self,
        uid: str,
        container: str | None = None,
        follow: bool = False,
        tail: int | None = None,
        previous: bool = False,
    ) -> AsyncIterator[bytes]:
        hp, hc = self._get(uid, container)
        self._advance(hp)
        n = hc.n - 1 if previous else hc.n
        if n < 0:
            raise RuntimeError_("NotFound", f"previous terminated container {hc.name!r} not found")
        line = f"hollow container {hc.name} (restart {n}) on node {self.node_name}\n".encode()
        return _one(line if tail != 0 else b"")

    async def exec(
        self, uid: str, container: str | None, argv: list[str], timeout: float = 30.0
    ) -> ExecResult:
        hp, hc = self._get(uid, container)
        self._advance(hp)
        if hc.started is None or hc.finished is not None:
            raise RuntimeError_("ContainerNotRunning", f"container {hc.name!r} is not running")
        return ExecResult(exit_code=self._ann(hp.pod, ANN_EXEC_EXIT_CODE, int, 0), stdout=b"", stderr=b"")

    async def restart_container(self, uid: str, container: str, reason: str) -> None:
        hp, hc = self._get(uid, container)
        self._advance(hp)
        if hc.started is not None and hc.finished is None:
            hc.finished, hc.exit_code = self.clock(), 137
        self._advance(hp)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data
