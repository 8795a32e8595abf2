"""Table columns per kind, shared by the API server's Table responses and ``centaurusctl get``.

Each kind lists (header, function) pairs; ``wide`` adds more. Functions take the
object and return a printable string. Ages are rendered like kubectl (``5s``,
``3m``, ``2h``, ``4d``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ctl.types.meta import parse_rfc3339

Column = tuple[str, Callable[[dict[str, Any]], str]]

# What a cell shows when the object's field has a wrong type (a malformed object already in the store).
INVALID = "<invalid>"


def cell(fn: Callable[[dict[str, Any]], str], obj: dict[str, Any]) -> str:
    """One table cell: the column function's result, or ``<invalid>`` if the object defeats it.

    Both the API server's Table responses and the CLI render through this, so a malformed
    object (from an older version, or written into the store directly) never ends a listing.
    """
    try:
        v = fn(obj)
    except Exception:  # any wrong type in any field the column reads
        return INVALID
    if isinstance(v, str):
        return v
    return str(v) if isinstance(v, (int, float)) else INVALID


def age(ts: str | None, now: float | None = None) -> str:
    if not ts:
        return "<unknown>"
    try:
        secs = int((now or time.time()) - parse_rfc3339(ts))
    except ValueError:
        return "<unknown>"
    secs = max(secs, 0)
    if secs < 120:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m"
    if secs < 86400 * 2:
        h, m = divmod(secs // 60, 60)
        return f"{h}h{m}m" if h < 10 and m else f"{h}h"
    return f"{secs // 86400}d"


def _g(obj: dict[str, Any], *path: str, default: Any = "") -> Any:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, dict):
            return default
        cur = cur.get(p)
    return default if cur is None else cur


def _pod_ready(o: dict[str, Any]) -> str:
    cs = _g(o, "status", "containerStatuses", default=[]) or []
    n = len(_g(o, "spec", "containers", default=[]) or []) or (1 if _g(o, "spec", "virtualMachine") else 0)
    return f"{sum(1 for c in cs if c.get('ready'))}/{n}"


def _pod_status(o: dict[str, Any]) -> str:
    if _g(o, "metadata", "deletionTimestamp"):
        return "Terminating"
    for c in _g(o, "status", "containerStatuses", default=[]) or []:
        st = c.get("state") or {}
        w = st.get("waiting")
        if w and w.get("reason") not in (None, "ContainerCreating", "PodInitializing"):
            return str(w["reason"])
        t = st.get("terminated")
        if t and _g(o, "status", "phase") == "Running":
            return str(t.get("reason") or "Error")
    reason = _g(o, "status", "reason")
    if reason:
        return str(reason)
    phase = _g(o, "status", "phase", default="Pending")
    if phase == "Pending" and _g(o, "spec", "nodeName"):
        return "ContainerCreating"
    return str(phase)


def _restarts(o: dict[str, Any]) -> str:
    cs = _g(o, "status", "containerStatuses", default=[]) or []
    return str(sum(int(c.get("restartCount", 0)) for c in cs))


def _node_status(o: dict[str, Any]) -> str:
    ready = "Unknown"
    for c in _g(o, "status", "conditions", default=[]) or []:
        if c.get("type") == "Ready":
            ready = "Ready" if c.get("status") == "True" else "NotReady"
    if _g(o, "spec", "unschedulable"):
        ready += ",SchedulingDisabled"
    return ready


def _phase(o: dict[str, Any]) -> str:
    return str(_g(o, "status", "phase"))


_AGE: Column = ("AGE", lambda o: age(_g(o, "metadata", "creationTimestamp")))

COLUMNS: dict[str, list[Column]] = {
    "Pod": [("READY", _pod_ready), ("STATUS", _pod_status), ("RESTARTS", _restarts), _AGE],
    "Node": [
        ("STATUS", _node_status),
        ("ROLES", lambda o: "<none>"),
        _AGE,
        ("VERSION", lambda o: str(_g(o, "status", "nodeInfo", "kubeletVersion"))),
    ],
    "Namespace": [("STATUS", _phase), _AGE],
    "Tenant": [("STATUS", _phase), _AGE],
    "Deployment": [
        (
            "READY",
            lambda o: f"{_g(o, 'status', 'readyReplicas', default=0)}/{_g(o, 'spec', 'replicas', default=0)}",
        ),
        ("UP-TO-DATE", lambda o: str(_g(o, "status", "updatedReplicas", default=0))),
        ("AVAILABLE", lambda o: str(_g(o, "status", "availableReplicas", default=0))),
        _AGE,
    ],
    "ReplicaSet": [
        ("DESIRED", lambda o: str(_g(o, "spec", "replicas", default=0))),
        ("CURRENT", lambda o: str(_g(o, "status", "replicas", default=0))),
        ("READY", lambda o: str(_g(o, "status", "readyReplicas", default=0))),
        _AGE,
    ],
    "Event": [
        ("TYPE", lambda o: str(_g(o, "type"))),
        ("REASON", lambda o: str(_g(o, "reason"))),
        (
            "OBJECT",
            lambda o: f"{str(_g(o, 'involvedObject', 'kind')).lower()}/{_g(o, 'involvedObject', 'name')}",
        ),
        ("MESSAGE", lambda o: str(_g(o, "message"))),
    ],
    "ConfigMap": [("DATA", lambda o: str(len(_g(o, "data", default={}) or {}))), _AGE],
    "Secret": [
        ("TYPE", lambda o: str(_g(o, "type"))),
        ("DATA", lambda o: str(len(_g(o, "data", default={}) or {}))),
        _AGE,
    ],
    "Lease": [("HOLDER", lambda o: str(_g(o, "spec", "holderIdentity"))), _AGE],
    "Action": [
        ("OPERATION", lambda o: str(_g(o, "spec", "operation"))),
        ("POD", lambda o: str(_g(o, "spec", "podName"))),
        ("COMPLETE", lambda o: str(_g(o, "status", "complete", default=False))),
        _AGE,
    ],
}

WIDE: dict[str, list[Column]] = {
    "Pod": [
        ("IP", lambda o: str(_g(o, "status", "podIP", default="<none>"))),
        ("NODE", lambda o: str(_g(o, "spec", "nodeName", default="<none>"))),
        ("RUNTIME", lambda o: "vm" if _g(o, "spec", "virtualMachine") else "container"),
    ],
    "Node": [
        (
            "INTERNAL-IP",
            lambda o: next(
                (
                    a.get("address", "")
                    for a in _g(o, "status", "addresses", default=[]) or []
                    if a.get("type") == "InternalIP"
                ),
                "<none>",
            ),
        ),
        ("RUNTIME", lambda o: str(_g(o, "status", "nodeInfo", "containerRuntimeVersion"))),
    ],
    "Deployment": [
        (
            "IMAGES",
            lambda o: ",".join(
                c.get("image", "") for c in _g(o, "spec", "template", "spec", "containers", default=[]) or []
            ),
        ),
        (
            "SELECTOR",
            lambda o: ",".join(
                f"{k}={v}" for k, v in (_g(o, "spec", "selector", "matchLabels", default={}) or {}).items()
            ),
        ),
    ],
}


def columns_for(kind: str, wide: bool = False) -> list[Column]:
    cols = list(COLUMNS.get(kind, [_AGE]))
    if wide:
        cols += WIDE.get(kind, [])
    return cols
