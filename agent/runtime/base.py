"""The runtime interface the node agent drives, one implementation per pod flavour.

The agent decides *what* should run on its node (the pods bound to it, as watched
from the API); a runtime knows *how*: ``runc`` runs OCI containers, ``libvirt`` runs
virtual machines, ``hollow`` only pretends (for thousands of simulated nodes). The
agent picks the runtime per pod: a pod with ``spec.virtualMachine`` goes to the VM
runtime, every other pod to the node's container runtime.

The contract is level-triggered: ``sync_pod`` is called repeatedly with the current
pod object and must converge the real state towards the spec (create the sandbox,
start containers, restart exited ones according to ``restartPolicy`` with back-off,
apply a VM's ``powerSpec``) and return what it observes. It must be idempotent and
must never duplicate a container or a domain. ``list_pods`` reports what exists on
the host so that a restarted agent adopts instead of recreating.
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ctl.types import meta


def rfc3339_or_none(t: float | None) -> str | None:
    """An epoch time as RFC 3339 (``None`` stays ``None``): container start and finish times."""
    return None if t is None else meta.rfc3339(t)


class RuntimeError_(Exception):
    """A runtime failure that should be reported on the pod (reason + message)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class NotSupportedError(RuntimeError_):
    def __init__(self, message: str) -> None:
        super().__init__("NotSupported", message)


@dataclass
class ContainerState:
    """Kubernetes-shaped state of one container (or of the VM, for VM pods)."""

    name: str
    image: str = ""
    container_id: str = ""
    state: str = "waiting"  # waiting | running | terminated
    reason: str = ""  # e.g. ContainerCreating, CrashLoopBackOff, Completed, Error
    message: str = ""
    exit_code: int | None = None
    started_at: str | None = None  # RFC 3339
    finished_at: str | None = None
    restart_count: int = 0
    ready: bool = False
    last_terminated: dict[str, Any] | None = None

    def to_k8s(self) -> dict[str, Any]:
        """Render as a Kubernetes ``containerStatuses`` entry."""
        if self.state == "running":
            st: dict[str, Any] = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated":
            st = {
                "terminated": {
                    "exitCode": self.exit_code if self.exit_code is not None else 0,
                    "reason": self.reason or ("Completed" if self.exit_code == 0 else "Error"),
                    "startedAt": self.started_at,
                    "finishedAt": self.finished_at,
                    **({"message": self.message} if self.message else {}),
                }
            }
        else:
            st = {
                "waiting": {
                    "reason": self.reason or "ContainerCreating",
                    **({"message": self.message} if self.message else {}),
                }
            }
        out: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": self.image,
            "containerID": self.container_id,
            "state": st,
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": self.state == "running",
        }
        if self.last_terminated:
            out["lastState"] = {"terminated": self.last_terminated}
        return out


@dataclass
class PodRuntimeStatus:
    """What a runtime observes about one pod on this host."""

    uid: str
    name: str
    namespace: str
    tenant: str
    runtime: str
    containers: list[ContainerState] = field(default_factory=list)
    pod_ip: str | None = None
    netns: str | None = None  # path of the pod's network namespace, if any
    vm_status: dict[str, Any] | None = None  # status.virtualMachineStatus for VM pods
    sandbox_ready: bool = False
    # Set when every container has terminated and restartPolicy says not to restart.
    finished: bool = False
    message: str = ""


@dataclass
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


class Runtime(abc.ABC):
    """One way of running pods on a host."""

    name: str = "runtime"
    _grace_cuts: dict[str, float] | None = None  # uid -> monotonic time a stop must end by

    def shorten_grace(self, uid: str, grace_seconds: float) -> None:
        """A stop of this pod in progress must end within ``grace_seconds`` from now: the pod was
        force-deleted, or deleted again with a shorter grace period (kubelet shortens a running
        termination the same way). Runtimes that stop gracefully consult :meth:`stop_deadline`."""
        if self._grace_cuts is None:
            self._grace_cuts = {}
        cut = time.monotonic() + max(0.0, grace_seconds)
        self._grace_cuts[uid] = min(cut, self._grace_cuts.get(uid, math.inf))

    def stop_deadline(self, uid: str, deadline: float) -> float:
        """``deadline`` (monotonic), or earlier if the pod's grace was shortened meanwhile."""
        return min(deadline, (self._grace_cuts or {}).get(uid, math.inf))

    def forget_grace(self, uid: str) -> None:
        if self._grace_cuts:
            self._grace_cuts.pop(uid, None)

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Prepare the runtime (state dirs, connections). Idempotent."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; running pods keep running."""

    @abc.abstractmethod
    async def sync_pod(self, pod: dict[str, Any]) -> PodRuntimeStatus:
        """Converge the host towards ``pod`` (the full API object) and report."""

    @abc.abstractmethod
    async def kill_pod(self, uid: str, grace_seconds: float = 10.0) -> None:
        """Stop every container/domain of the pod and remove its sandbox. Idempotent."""

    @abc.abstractmethod
    async def list_pods(self) -> list[PodRuntimeStatus]:
        """Every pod this runtime has on the host (for adoption and orphan cleanup)."""

    @abc.abstractmethod
    async def logs(
        self,
        uid: str,
        container: str | None = None,
        follow: bool = False,
        tail: int | None = None,
        previous: bool = False,
    ) -> AsyncIterator[bytes]:
        """Stream a container's output (or a VM's console); ``previous``: the last terminated instance."""

    @abc.abstractmethod
    async def exec(
        self, uid: str, container: str | None, argv: list[str], timeout: float = 30.0
    ) -> ExecResult:
        """Run a command inside a running container."""

    async def restart_container(self, uid: str, container: str, reason: str) -> None:
        """Kill and restart one container (liveness probe failure); counts a restart."""
        raise NotSupportedError(f"{self.name} runtime cannot restart containers")

    async def action(self, uid: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Perform a VM action (reboot, snapshot, restore, stop, start); returns status fields."""
        raise NotSupportedError(f"{self.name} runtime does not support action {operation!r}")
