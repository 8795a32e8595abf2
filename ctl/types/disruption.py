"""PodDisruptionBudget arithmetic: which pods a budget covers and what its ``status`` says.

Shared by the two places that keep a budget's numbers: the API server's eviction
(:mod:`ctl.apiserver.eviction`, which judges ``pods/eviction`` and spends a disruption) and the
disruption controller (:mod:`ctl.controllers.disruption`, which keeps ``status`` current as pods
come, go and change readiness), so that both count the same way, as Kubernetes' disruption
controller does: ``expectedPods`` (pods the selector matches that have not finished),
``currentHealthy`` (those Ready, not being deleted, not recently evicted), ``desiredHealthy``
(from ``minAvailable``, or ``expectedPods - maxUnavailable``; percentages round up) and
``disruptionsAllowed``. Evicted pods stay in ``disruptedPods`` until they are gone or for
:data:`DISRUPTED_TTL` seconds at most.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ctl.types import meta
from ctl.types.selectors import LabelSelector, SelectorError

DISRUPTED_TTL = 120.0


def pod_ready(pod: dict[str, Any]) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def scaled(value: Any, total: int) -> int:
    """An int-or-percent of ``total``, rounded up (as the disruption controller does)."""
    if isinstance(value, str) and value.endswith("%"):
        try:
            return math.ceil(int(value[:-1]) * total / 100)
        except ValueError:
            return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def budget_selector(pdb: dict[str, Any]) -> LabelSelector | None:
    """The budget's selector (None selects no pods, ``{}`` all of the namespace)."""
    sel = (pdb.get("spec") or {}).get("selector")
    if not isinstance(sel, dict):
        return None
    try:
        return LabelSelector.from_spec(sel)
    except SelectorError:
        return None


def selects(pdb: dict[str, Any], pod: dict[str, Any]) -> bool:
    sel = budget_selector(pdb)
    return sel is not None and sel.matches((pod.get("metadata") or {}).get("labels") or {})


def budget_status(
    pdb: dict[str, Any], pods: list[dict[str, Any]], now: float | None = None
) -> dict[str, Any]:
    """The ``status`` of a budget over its namespace's ``pods`` (see the module docstring)."""
    now = time.time() if now is None else now
    spec = pdb.get("spec") or {}
    old = pdb.get("status") or {}
    matched = [
        p
        for p in pods
        if selects(pdb, p) and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    ]
    by_name = {p["metadata"]["name"]: p for p in matched}
    disrupted: dict[str, str] = {}
    for name, ts in (old.get("disruptedPods") or {}).items():
        p = by_name.get(name)
        try:
            fresh = now - meta.parse_rfc3339(ts) < DISRUPTED_TTL
        except (TypeError, ValueError):
            fresh = False
        if p is not None and fresh:
            disrupted[name] = ts
    healthy = sum(
        1
        for p in matched
        if pod_ready(p)
        and not p["metadata"].get("deletionTimestamp")
        and p["metadata"]["name"] not in disrupted
    )
    expected = len(matched)
    if spec.get("maxUnavailable") is not None:
        desired = max(0, expected - scaled(spec["maxUnavailable"], expected))
    elif spec.get("minAvailable") is not None:
        desired = scaled(spec["minAvailable"], expected)
    else:  # neither set: minAvailable 1, policy/v1beta1's default
        desired = min(1, expected)
    allowed = max(0, healthy - desired)
    out: dict[str, Any] = {
        "observedGeneration": (pdb.get("metadata") or {}).get("generation") or 1,
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": [
            {
                "type": "DisruptionAllowed",
                "status": "True" if allowed > 0 else "False",
                "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
                "message": "",
                "observedGeneration": (pdb.get("metadata") or {}).get("generation") or 1,
                "lastTransitionTime": meta.rfc3339(now),
            }
        ],
    }
    if disrupted:
        out["disruptedPods"] = disrupted
    prev = {c.get("type"): c for c in old.get("conditions") or [] if isinstance(c, dict)}.get(
        "DisruptionAllowed"
    )
    if prev and prev.get("status") == out["conditions"][0]["status"] and prev.get("lastTransitionTime"):
        out["conditions"][0]["lastTransitionTime"] = prev["lastTransitionTime"]
    return out


__all__ = ["DISRUPTED_TTL", "budget_selector", "budget_status", "pod_ready", "scaled", "selects"]
