"""Deployment conditions and the progress deadline (Kubernetes' ``deployment/progress.go``).

A Deployment carries two conditions: ``Available`` (at least ``replicas - maxUnavailable``
pods available) and ``Progressing``. While a rollout makes progress (more updated, ready
or available pods, fewer old ones) ``Progressing`` is True/ReplicaSetUpdated and the
controller looks again ``progressDeadlineSeconds`` later; once the rollout is complete it
is True/NewReplicaSetAvailable; if no progress was seen for ``progressDeadlineSeconds``
it turns False/ProgressDeadlineExceeded (and the controller records a Warning Event).
Pausing and resuming set it Unknown/DeploymentPaused and DeploymentResumed.

Everything here is a pure function of the Deployment and the statuses, with the time
passed in, so the deadline arithmetic is tested without waiting.
"""

from __future__ import annotations

from typing import Any

from ctl.controllers.deployment.util import replicas_of
from ctl.types import meta


def get_condition(status: dict[str, Any], typ: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == typ), None)


def set_condition(
    status: dict[str, Any],
    typ: str,
    cstatus: str,
    reason: str,
    message: str,
    keep_transition_from: dict[str, Any] | None = None,
) -> None:
    cur = get_condition(status, typ)
    if cur is not None and cur.get("status") == cstatus and cur.get("reason") == reason:
        return
    now = meta.now_rfc3339()
    cond = {
        "type": typ,
        "status": cstatus,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }
    if cur is not None and cur.get("status") == cstatus:
        cond["lastTransitionTime"] = cur.get("lastTransitionTime", now)
    if keep_transition_from is not None and keep_transition_from.get("status") == cstatus:
        cond["lastTransitionTime"] = keep_transition_from.get("lastTransitionTime", now)
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != typ] + [cond]


def deployment_complete(d: dict[str, Any], s: dict[str, Any]) -> bool:
    n = replicas_of(d)
    return (
        int(s.get("updatedReplicas") or 0) == n
        and int(s.get("replicas") or 0) == n
        and int(s.get("availableReplicas") or 0) == n
        and int(s.get("observedGeneration") or 0) >= int(d["metadata"].get("generation") or 1)
    )


def progressing(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether ``new`` shows progress over ``old``: more updated, ready or available pods, or fewer old ones."""

    def g(s: dict[str, Any], f: str) -> int:
        return int(s.get(f) or 0)

    old_old = g(old, "replicas") - g(old, "updatedReplicas")
    new_old = g(new, "replicas") - g(new, "updatedReplicas")
    return (
        g(new, "updatedReplicas") > g(old, "updatedReplicas")
        or new_old < old_old
        or g(new, "readyReplicas") > g(old, "readyReplicas")
        or g(new, "availableReplicas") > g(old, "availableReplicas")
    )


def update_progressing(
    d: dict[str, Any], new: dict[str, Any], rs_name: str, now: float
) -> tuple[float | None, bool]:
    """Set the Progressing condition in ``new`` (the freshly calculated status of ``d``).

    Returns (seconds after which to look again or None, whether the deadline was exceeded
    just now). Nothing changes without ``progressDeadlineSeconds`` or while paused.
    """
    old = d.get("status") or {}
    spec = d.get("spec") or {}
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is None or spec.get("paused"):
        return None, False
    cond = get_condition(new, "Progressing")
    if deployment_complete(d, new):
        set_condition(
            new,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{rs_name}" has successfully progressed.',
        )
        return None, False
    if progressing(old, new):
        keep = cond if cond and cond.get("status") == "True" else None
        new["conditions"] = [c for c in new.get("conditions") or [] if c.get("type") != "Progressing"]
        set_condition(
            new,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            f'ReplicaSet "{rs_name}" is progressing.',
            keep_transition_from=keep,
        )
        return float(deadline) + 1, False
    if cond is None or cond.get("reason") in ("NewReplicaSetAvailable", "ProgressDeadlineExceeded"):
        return None, False
    since = meta.parse_rfc3339(cond.get("lastUpdateTime") or meta.rfc3339(now))
    left = since + float(deadline) - now
    if left > 0:
        return left + 1, False
    set_condition(
        new,
        "Progressing",
        "False",
        "ProgressDeadlineExceeded",
        f'ReplicaSet "{rs_name}" has timed out progressing.',
    )
    return None, True
