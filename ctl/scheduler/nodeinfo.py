"""What the scheduler needs to know about a node, read once per node change.

:class:`NodeInfo` holds a node's labels, its *effective* taints and its allocatable
resources. Effective taints are ``spec.taints`` plus the taints Kubernetes' node
lifecycle controller would add from the node's conditions: a node whose ``Ready``
condition is ``False`` (or missing) carries ``node.kubernetes.io/not-ready:NoSchedule``
and one whose ``Ready`` is ``Unknown`` carries ``node.kubernetes.io/unreachable:NoSchedule``,
so NotReady nodes are avoided except by pods that tolerate those taints (as DaemonSet pods
do). ``spec.unschedulable`` (cordon) is kept separately, as the NodeUnschedulable
filter treats it.

:meth:`NodeInfo.fingerprint` is what filters and static scores depend on: a node update
that leaves it unchanged (a heartbeat) does not invalidate cached masks nor wake
unschedulable pods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ctl.types.validation import parse_quantity

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str

    def text(self) -> str:
        return f"{{{self.key}: {self.value}}}"


def _q(v: Any, scale: float = 1.0) -> float:
    if v is None:
        return 0.0
    try:
        return parse_quantity(v) * scale
    except ValueError:
        return 0.0


@dataclass(slots=True)
class NodeInfo:
    name: str
    labels: dict[str, str]
    taints: tuple[Taint, ...]
    unschedulable: bool
    ready: str  # "True" | "False" | "Unknown"
    cpu: float  # allocatable milli-cpu
    mem: float  # allocatable bytes
    pods: float  # allocatable pod count
    source: int = 0  # index of the node source (resource partition) it came from

    @classmethod
    def from_node(cls, node: dict[str, Any], source: int = 0) -> NodeInfo:
        md = node.get("metadata") or {}
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        alloc = status.get("allocatable") or status.get("capacity") or {}
        ready = "False"
        for c in status.get("conditions") or []:
            if isinstance(c, dict) and c.get("type") == "Ready":
                ready = str(c.get("status", "Unknown"))
        taints = []
        for t in spec.get("taints") or []:
            if isinstance(t, dict) and t.get("key"):
                taints.append(Taint(str(t["key"]), str(t.get("value") or ""), str(t.get("effect") or "")))
        keys = {t.key for t in taints}
        if ready == "False" and NOT_READY_TAINT not in keys:
            taints.append(Taint(NOT_READY_TAINT, "", "NoSchedule"))
        elif ready not in ("True", "False") and UNREACHABLE_TAINT not in keys:
            taints.append(Taint(UNREACHABLE_TAINT, "", "NoSchedule"))
        return cls(
            name=str(md.get("name", "")),
            labels={str(k): str(v) for k, v in (md.get("labels") or {}).items()},
            taints=tuple(taints),
            unschedulable=bool(spec.get("unschedulable")),
            ready=ready,
            cpu=_q(alloc.get("cpu"), 1000.0),
            mem=_q(alloc.get("memory")),
            pods=_q(alloc.get("pods", 110)),
            source=source,
        )

    def fingerprint(self) -> tuple[Any, ...]:
        return (
            tuple(sorted(self.labels.items())),
            self.taints,
            self.unschedulable,
            self.ready,
            self.cpu,
            self.mem,
            self.pods,
        )

    def static_fingerprint(self) -> tuple[Any, ...]:
        """The part cached per-signature masks depend on (not the resources)."""
        return (tuple(sorted(self.labels.items())), self.taints, self.unschedulable)
