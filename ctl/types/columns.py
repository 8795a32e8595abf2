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
        ("ERROR", lambda o: str(_g(o, "status", "error", default="") or "")),  # a failed Action says why
        _AGE,
    ],
}


# The network kinds (ctl/network): what an operator reads at a glance - addresses, VNI,
# placement (placed/wanted) and the phase the operator wrote (Failed shows its reason).
def _net_status(o: dict[str, Any]) -> str:
    phase = str(_g(o, "status", "phase", default="Init"))
    reason = _g(o, "status", "reason")
    return f"{phase}({reason})" if phase == "Failed" and reason else phase


def _droplet_status(o: dict[str, Any]) -> str:
    """The transit daemon's reachability, and ``(NodeNotReady)`` while excluded from placement."""
    phase = str(_g(o, "status", "phase", default="Unknown"))
    reason = _g(o, "status", "reason")
    return f"{phase}({reason})" if reason else phase


def _placed(o: dict[str, Any], field: str) -> str:
    return f"{len(_g(o, 'status', field, default=[]) or [])}/{_g(o, 'spec', field, default=1)}"


def _either(o: dict[str, Any], field: str) -> str:
    return str(_g(o, "status", field) or _g(o, "spec", field) or "<none>")


COLUMNS.update(
    {
        "Network": [
            ("TYPE", lambda o: str(_g(o, "spec", "type"))),
            ("CIDR", lambda o: str(_g(o, "status", "cidr") or _g(o, "spec", "cidr") or "<default>")),
            ("VPC", lambda o: str(_g(o, "status", "vpc", default="<none>"))),
            ("STATUS", _net_status),
            _AGE,
        ],
        "VPC": [
            ("CIDR", lambda o: str(_g(o, "spec", "cidr"))),
            ("VNI", lambda o: _either(o, "vni")),
            ("DIVIDERS", lambda o: _placed(o, "dividers")),
            ("STATUS", _net_status),
            _AGE,
        ],
        "Subnet": [
            ("VPC", lambda o: str(_g(o, "spec", "vpc"))),
            ("CIDR", lambda o: str(_g(o, "spec", "cidr"))),
            ("VNI", lambda o: _either(o, "vni")),
            ("BOUNCERS", lambda o: _placed(o, "bouncers")),
            ("STATUS", _net_status),
            _AGE,
        ],
        "Endpoint": [
            ("IP", lambda o: _either(o, "ip")),
            ("SUBNET", lambda o: str(_g(o, "spec", "subnet"))),
            ("DROPLET", lambda o: str(_g(o, "spec", "droplet", default="<none>"))),
            ("STATUS", _net_status),
            _AGE,
        ],
        "Droplet": [
            ("IP", lambda o: str(_g(o, "spec", "ip"))),
            ("MAC", lambda o: str(_g(o, "spec", "mac"))),
            ("ITF", lambda o: str(_g(o, "spec", "itf"))),
            ("STATUS", _droplet_status),
            _AGE,
        ],
        "Bouncer": [
            ("SUBNET", lambda o: str(_g(o, "spec", "subnet"))),
            ("DROPLET", lambda o: str(_g(o, "spec", "droplet"))),
            ("IP", lambda o: str(_g(o, "spec", "ip"))),
            _AGE,
        ],
        "Divider": [
            ("VPC", lambda o: str(_g(o, "spec", "vpc"))),
            ("DROPLET", lambda o: str(_g(o, "spec", "droplet"))),
            ("IP", lambda o: str(_g(o, "spec", "ip"))),
            _AGE,
        ],
    }
)


# The batch kinds, as kubectl prints them.
def _job_completions(o: dict[str, Any]) -> str:
    succeeded = _g(o, "status", "succeeded", default=0)
    completions = _g(o, "spec", "completions", default=None)
    if completions is None:
        return f"{succeeded}/1 of {_g(o, 'spec', 'parallelism', default=1)}"
    return f"{succeeded}/{completions}"


def _duration(secs: int) -> str:
    secs = max(secs, 0)
    if secs < 120:
        return f"{secs}s"
    if secs < 3600:
        m, s = divmod(secs, 60)
        return f"{m}m{s}s" if m < 10 and s else f"{m}m"
    h, m = divmod(secs // 60, 60)
    return f"{h}h{m}m" if h < 10 and m else f"{h}h"


def _job_duration(o: dict[str, Any]) -> str:
    start = _g(o, "status", "startTime")
    if not start:
        return ""
    end = _g(o, "status", "completionTime")
    t1 = parse_rfc3339(end) if end else time.time()
    return _duration(int(t1 - parse_rfc3339(start)))


COLUMNS.update(
    {
        "Job": [("COMPLETIONS", _job_completions), ("DURATION", _job_duration), _AGE],
        "CronJob": [
            ("SCHEDULE", lambda o: str(_g(o, "spec", "schedule"))),
            ("TIMEZONE", lambda o: str(_g(o, "spec", "timeZone", default="<none>"))),
            ("SUSPEND", lambda o: "True" if _g(o, "spec", "suspend", default=False) else "False"),
            ("ACTIVE", lambda o: str(len(_g(o, "status", "active", default=[]) or []))),
            (
                "LAST SCHEDULE",
                lambda o: (
                    age(_g(o, "status", "lastScheduleTime"))
                    if _g(o, "status", "lastScheduleTime")
                    else "<none>"
                ),
            ),
            _AGE,
        ],
    }
)


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


WIDE.update(
    {
        "Endpoint": [
            ("MAC", lambda o: _either(o, "mac")),
            ("VNI", lambda o: _either(o, "vni")),
            ("POD", lambda o: str(_g(o, "spec", "pod", default="<none>"))),
            ("PROGRAMMED", lambda o: ",".join(_g(o, "status", "programmed", default=[]) or []) or "<none>"),
        ],
        "Subnet": [
            ("GATEWAY", lambda o: str(_g(o, "status", "gateway", default="<none>"))),
            ("ON", lambda o: ",".join(_g(o, "status", "bouncers", default=[]) or []) or "<none>"),
        ],
        "VPC": [("ON", lambda o: ",".join(_g(o, "status", "dividers", default=[]) or []) or "<none>")],
        "Droplet": [("TRANSITD", lambda o: str(_g(o, "spec", "transitd", default="<none>")))],
    }
)


def columns_for(kind: str, wide: bool = False) -> list[Column]:
    cols = list(COLUMNS.get(kind, [_AGE]))
    if wide:
        cols += WIDE.get(kind, [])
    return cols


# DaemonSet, StatefulSet, ControllerRevision (and PersistentVolumeClaim unless the storage
# kinds print it already): the columns kubectl prints for them.
def _n(o: dict[str, Any], *path: str) -> str:
    return str(_g(o, *path, default=0))


def _images(o: dict[str, Any]) -> str:
    return ",".join(
        c.get("image", "") for c in _g(o, "spec", "template", "spec", "containers", default=[]) or []
    )


def _containers(o: dict[str, Any]) -> str:
    return ",".join(
        c.get("name", "") for c in _g(o, "spec", "template", "spec", "containers", default=[]) or []
    )


def _owner(o: dict[str, Any]) -> str:
    for r in _g(o, "metadata", "ownerReferences", default=[]) or []:
        if r.get("controller"):
            return f"{str(r.get('kind', '')).lower()}.{str(r.get('apiVersion', '')).split('/')[0]}/{r.get('name')}"
    return "<none>"


def _selector_text(o: dict[str, Any]) -> str:
    return ",".join(
        f"{k}={v}" for k, v in (_g(o, "spec", "selector", "matchLabels", default={}) or {}).items()
    )


COLUMNS.update(
    {
        "DaemonSet": [
            ("DESIRED", lambda o: _n(o, "status", "desiredNumberScheduled")),
            ("CURRENT", lambda o: _n(o, "status", "currentNumberScheduled")),
            ("READY", lambda o: _n(o, "status", "numberReady")),
            ("UP-TO-DATE", lambda o: _n(o, "status", "updatedNumberScheduled")),
            ("AVAILABLE", lambda o: _n(o, "status", "numberAvailable")),
            (
                "NODE SELECTOR",
                lambda o: (
                    ",".join(
                        f"{k}={v}"
                        for k, v in (
                            _g(o, "spec", "template", "spec", "nodeSelector", default={}) or {}
                        ).items()
                    )
                    or "<none>"
                ),
            ),
            _AGE,
        ],
        "StatefulSet": [
            ("READY", lambda o: f"{_n(o, 'status', 'readyReplicas')}/{_n(o, 'spec', 'replicas')}"),
            _AGE,
        ],
        "ControllerRevision": [
            ("CONTROLLER", _owner),
            ("REVISION", lambda o: _n(o, "revision")),
            _AGE,
        ],
    }
)
COLUMNS.setdefault(
    "PersistentVolumeClaim",
    [
        ("STATUS", lambda o: str(_g(o, "status", "phase", default="Pending"))),
        ("VOLUME", lambda o: str(_g(o, "spec", "volumeName"))),
        ("CAPACITY", lambda o: str(_g(o, "status", "capacity", "storage"))),
        ("ACCESS MODES", lambda o: ",".join(_g(o, "status", "accessModes", default=[]) or [])),
        ("STORAGECLASS", lambda o: str(_g(o, "spec", "storageClassName"))),
        _AGE,
    ],
)
WIDE.update(
    {
        "DaemonSet": [("CONTAINERS", _containers), ("IMAGES", _images), ("SELECTOR", _selector_text)],
        "StatefulSet": [("CONTAINERS", _containers), ("IMAGES", _images)],
    }
)


# -o wide for the batch kinds (kubectl's CONTAINERS, IMAGES, SELECTOR).
def _job_selector(o: dict[str, Any]) -> str:
    """The selector, or the label the Job controller puts on its pods (no selector is defaulted)."""
    return _selector_text(o) or f"batch.kubernetes.io/controller-uid={_g(o, 'metadata', 'uid')}"


def _cronjob_template(o: dict[str, Any]) -> dict[str, Any]:
    return {"spec": _g(o, "spec", "jobTemplate", "spec", default={})}


WIDE.update(
    {
        "Job": [("CONTAINERS", _containers), ("IMAGES", _images), ("SELECTOR", _job_selector)],
        "CronJob": [
            ("CONTAINERS", lambda o: _containers(_cronjob_template(o))),
            ("IMAGES", lambda o: _images(_cronjob_template(o))),
            ("SELECTOR", lambda o: _selector_text(_cronjob_template(o)) or "<none>"),
        ],
    }
)
