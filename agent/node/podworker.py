"""A pod worker's record (kubelet's pod workers) and the predicates the agent's event handling uses.

Each pod bound to a node gets one :class:`PodWorker`: the latest pod object seen, a wake-up event,
the status computed but not yet confirmed by the API, and a few flags (gone from the API, a
graceful stop in progress, admitted). The worker task itself lives in
:class:`~agent.node.agent.NodeAgent`; the status writer (:mod:`agent.node.statuswriter`), the
agent endpoint and the actions find pods through these records.

:func:`needs_sync` decides whether an update must wake the worker at all (status-only updates are
mostly the echo of the agent's own writes), and :func:`runtime_signature` is what a change of must
wake it after a runtime relist (the PLEG).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from agent.runtime.base import PodRuntimeStatus
from ctl.client.aio import Client
from ctl.types.meta import object_key


@dataclass(eq=False)
class PodWorker:
    uid: str
    key: str
    pod: dict[str, Any]
    client: Client
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    gone: bool = False
    task: asyncio.Task[None] | None = None
    failures: int = 0
    syncs: int = 0
    desired: dict[str, Any] | None = None  # latest status computed, not yet confirmed by the API
    queued: bool = False
    killing: bool = False  # a graceful stop is in progress
    admitted: bool = False  # passed node admission (agent/node/admission.py)


def pod_rv(obj: dict[str, Any]) -> int:
    """The object's resourceVersion as a number (0 when missing or not a number)."""
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def pod_key(pod: dict[str, Any]) -> str:
    """``tenant/namespace/name`` of a pod (the agent endpoint's and the actions' lookup key).

    The API server always stores a pod's tenant and namespace, so this is the informers'
    :func:`ctl.types.meta.object_key`.
    """
    return object_key(pod)


def runtime_signature(rs: PodRuntimeStatus) -> tuple[Any, ...]:
    """What a change of which must wake the pod's worker (PLEG events)."""
    return (
        rs.pod_ip,
        rs.finished,
        *((c.name, c.state, c.container_id, c.restart_count, c.reason) for c in rs.containers),
    )


_BOOKKEEPING = frozenset(("resourceVersion", "managedFields"))


def needs_sync(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether an update can change what a pod worker does: anything but status and bookkeeping.

    Status-only updates are mostly the echo of the agent's own writes; waking the worker for them
    cost a full ``sync_pod`` per write and, worse, used to push its transition resync back.
    """
    if old.get("spec") != new.get("spec"):
        return True
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    return any(om.get(k) != nm.get(k) for k in om.keys() | nm.keys() if k not in _BOOKKEEPING)


def has_probes(pod: dict[str, Any]) -> bool:
    return any(
        c.get(p)
        for c in (pod.get("spec") or {}).get("containers") or []
        for p in ("livenessProbe", "readinessProbe", "startupProbe")
    )
