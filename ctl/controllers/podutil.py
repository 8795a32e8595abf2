"""Pod and workload helpers shared by the controllers (readiness, availability, ranking, ownership)."""

from __future__ import annotations

import time
from typing import Any

from ctl.types import meta
from ctl.types.selectors import LabelSelector, SelectorError


def condition(obj: dict[str, Any], typ: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == typ:
            return c
    return None


def is_active(pod: dict[str, Any]) -> bool:
    """Counts toward a ReplicaSet: not finished and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def is_ready(pod: dict[str, Any]) -> bool:
    c = condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


def ready_since(pod: dict[str, Any]) -> float | None:
    c = condition(pod, "Ready")
    if c is None or c.get("status") != "True":
        return None
    ts = c.get("lastTransitionTime")
    if not ts:
        return None
    try:
        return meta.parse_rfc3339(ts)
    except ValueError:
        return None


def is_available(pod: dict[str, Any], min_ready_seconds: int, now: float | None = None) -> bool:
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready_since(pod)
    now = time.time() if now is None else now
    return since is not None and since + min_ready_seconds <= now


def restarts(pod: dict[str, Any]) -> int:
    return sum(
        int(cs.get("restartCount") or 0) for cs in (pod.get("status") or {}).get("containerStatuses") or []
    )


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def deletion_rank(pod: dict[str, Any]) -> tuple[Any, ...]:
    """Sort key: pods to delete first come first (as Kubernetes' ActivePods ordering)."""
    spec = pod.get("spec") or {}
    st = pod.get("status") or {}
    ready = is_ready(pod)
    since = ready_since(pod) or 0.0
    created = pod["metadata"].get("creationTimestamp") or ""
    return (
        1 if spec.get("nodeName") else 0,  # unscheduled first
        _PHASE_RANK.get(st.get("phase", "Pending"), 0),  # pending < unknown < running
        1 if ready else 0,  # not ready first
        -since if ready else 0.0,  # ready for less time first
        -restarts(pod),  # more restarts first
        _neg(created),  # newer first
    )


def _neg(ts: str) -> float:
    try:
        return -meta.parse_rfc3339(ts)
    except ValueError:
        return 0.0


def selector_of(obj: dict[str, Any]) -> LabelSelector | None:
    """The object's spec.selector, or None when empty or invalid (matches nothing)."""
    spec = (obj.get("spec") or {}).get("selector")
    try:
        sel = LabelSelector.from_spec(spec)
    except SelectorError:
        return None
    return None if sel.empty else sel


def owned_by(obj: dict[str, Any], owner_uid: str) -> bool:
    ref = meta.controller_of(obj)
    return ref is not None and ref.get("uid") == owner_uid


def same_namespace(a: dict[str, Any], b: dict[str, Any]) -> bool:
    am, bm = a["metadata"], b["metadata"]
    return am.get("tenant", "") == bm.get("tenant", "") and am.get("namespace") == bm.get("namespace")
