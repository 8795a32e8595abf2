"""Pod Events from the node agent, as kubelet reports them in ``describe pod``.

The events are derived from what the agent already observes, so every runtime (runc
containers, libvirt VMs, hollow pods) gets them without runtime code:

* ``Started`` (Normal) when a container (or the VM) runs, or has run, under a container
  id not seen before: the first start and every restart;
* ``BackOff`` (Warning) each time a container enters ``CrashLoopBackOff``;
* the runtime's error reason (Warning, e.g. ``ErrImageNeverPull``) when ``sync_pod`` fails,
  once per distinct error;
* ``Unhealthy`` (Warning) for every failed probe attempt, and ``Killing`` (Normal) before a
  liveness restart and when the containers of a deleted pod are stopped.

What was seen is seeded from the pod's status in the API on the first observation, so an
agent that restarts and adopts running pods does not report them as started again.
Repeats aggregate into one Event with a growing count (:mod:`ctl.client.events`). Events
go to the API server the pod came from (its tenant partition), through one recorder per
client, as component ``kubelet`` with the node name as host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.runtime.base import PodRuntimeStatus
from ctl.client.aio import Client
from ctl.client.events import NORMAL, WARNING, EventRecorder

COMPONENT = "kubelet"


@dataclass
class _Seen:
    """Per pod and container: the last (container id, state, reason) seen and the container
    id last reported as Started; and the last sync error."""

    containers: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    started: dict[str, str] = field(default_factory=dict)
    error: tuple[str, str] | None = None


def _has_run(state: str, reason: str) -> bool:
    """Whether a container in this state has been started (a short run may only be seen ended)."""
    return state in ("running", "terminated") or reason == "CrashLoopBackOff"


def _from_api(pod: dict[str, Any]) -> _Seen:
    seen = _Seen()
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        state = cs.get("state") or {}
        kind = next(iter(state), "waiting")
        name, cid = str(cs.get("name", "")), str(cs.get("containerID") or "")
        reason = str((state.get(kind) or {}).get("reason") or "")
        seen.containers[name] = (cid, kind, reason)
        if cid and _has_run(kind, reason):
            seen.started[name] = cid
    return seen


def _what(pod: dict[str, Any]) -> str:
    return "virtual machine" if (pod.get("spec") or {}).get("virtualMachine") else "container"


class PodEvents:
    """Turns what one node agent observes about its pods into Events."""

    def __init__(self, node: str, enabled: bool = True) -> None:
        self.node = node
        self.enabled = enabled
        self._recorders: dict[int, EventRecorder] = {}
        self._seen: dict[str, _Seen] = {}

    def _emit(self, client: Client, pod: dict[str, Any], type_: str, reason: str, message: str) -> None:
        if not self.enabled:
            return
        rec = self._recorders.get(id(client))
        if rec is None:
            rec = self._recorders[id(client)] = EventRecorder(client, COMPONENT, host=self.node)
        rec.event(pod, type_, reason, message)

    def observed(
        self,
        client: Client,
        pod: dict[str, Any],
        rs: PodRuntimeStatus | None,
        error: tuple[str, str] | None,
    ) -> None:
        """After a sync: report new starts, back-offs and (changed) runtime errors."""
        uid = str(pod["metadata"]["uid"])
        seen = self._seen.get(uid)
        if seen is None:
            seen = self._seen[uid] = _from_api(pod)
        if error is not None:
            if seen.error != error:
                seen.error = error
                self._emit(client, pod, WARNING, error[0], error[1])
            return
        seen.error = None
        if rs is None:
            return
        what = _what(pod)
        for c in rs.containers:
            cur = (c.container_id, c.state, c.reason)
            prev = seen.containers.get(c.name)
            if prev == cur:
                continue
            seen.containers[c.name] = cur
            if c.container_id and seen.started.get(c.name) != c.container_id and _has_run(c.state, c.reason):
                seen.started[c.name] = c.container_id
                self._emit(client, pod, NORMAL, "Started", f"Started {what} {c.name}")
            if c.state == "waiting" and c.reason == "CrashLoopBackOff":
                self._emit(client, pod, WARNING, "BackOff", f"Back-off restarting failed {what} {c.name}")

    def stopping(self, client: Client, pod: dict[str, Any]) -> None:
        """The pod is being deleted: one Killing per container that was running."""
        seen = self._seen.get(str(pod["metadata"]["uid"])) or _from_api(pod)
        what = _what(pod)
        for name, (_, state, _) in seen.containers.items():
            if state == "running":
                self._emit(client, pod, NORMAL, "Killing", f"Stopping {what} {name}")

    def probe_failed(self, client: Client, pod: dict[str, Any], message: str) -> None:
        self._emit(client, pod, WARNING, "Unhealthy", message)

    def liveness_restart(self, client: Client, pod: dict[str, Any], container: str) -> None:
        self._emit(
            client,
            pod,
            NORMAL,
            "Killing",
            f"Container {container} failed liveness probe, will be restarted",
        )

    def forget(self, uid: str) -> None:
        """The pod's worker ended: drop what was seen and the aggregation state."""
        self._seen.pop(uid, None)
        for rec in self._recorders.values():
            rec.forget(uid)

    async def stop(self, drain_timeout: float = 1.0) -> None:
        for rec in self._recorders.values():
            await rec.stop(drain_timeout)
