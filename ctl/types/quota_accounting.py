"""ResourceQuota accounting shared by quota admission and the quota controller.

Both the API server (:mod:`ctl.apiserver.quota`, which refuses objects that would exceed a
quota) and the controller manager (:mod:`ctl.controllers.quota`, which keeps
``status.used`` up to date) must count a namespace's usage the same way, so the pure
rules live here, below both layers. They are Kubernetes' quota evaluators:

* **compute resources** of pods: ``requests.cpu``, ``requests.memory``,
  ``requests.ephemeral-storage`` (aliases ``cpu``, ``memory``, ``ephemeral-storage``) and
  ``limits.cpu``, ``limits.memory``, ``limits.ephemeral-storage``. A pod uses the sum over
  its containers, or its largest init container when that is more, plus
  ``spec.overhead``; a container that states only a limit requests that limit (the API's
  defaulting). A pod counts while it has not finished (phase other than Succeeded/Failed).
* **pods** (alias ``count/pods``): pods that have not finished.
* **object counts**: ``count/<resource>[.<group>]`` (``count/configmaps``,
  ``count/deployments.apps``, ``count/poddisruptionbudgets.policy``) and the older names
  ``configmaps``, ``secrets``, ``services``, ``replicationcontrollers``, ``resourcequotas``,
  ``persistentvolumeclaims``: every object of that resource in the namespace, terminating
  ones included (as Kubernetes counts them). Only resources the server serves are tracked;
  ``services`` becomes tracked when the Service kind exists.

:func:`tracked` maps a key of ``spec.hard`` to the resource it stands for (or None when
nothing counts it), :func:`counted_kind` gives the kind an object count counts, and
:func:`quota_status` builds a quota's ``status`` (``hard`` copied from ``spec.hard``,
``used`` for every tracked key, under that same key). Amounts are written as Kubernetes
writes quantities (:func:`format_amount`): CPU in whole cores (``2``) or millicores
(``1500m``), memory and storage with the largest exact binary or decimal suffix (``256Mi``,
``1Gi``, ``500M``), counts as integers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from ctl.types import kinds
from ctl.types.validation import parse_quantity

COMPUTE = (
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
)
TRACKED = ("pods", *COMPUTE)  # what a pod uses; object counts come on top
ALIASES = {
    "count/pods": "pods",
    "cpu": "requests.cpu",
    "memory": "requests.memory",
    "ephemeral-storage": "requests.ephemeral-storage",
}
# The names Kubernetes counted objects by before count/<resource> existed.
LEGACY_COUNTS = (
    "configmaps",
    "secrets",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "persistentvolumeclaims",
)
TERMINAL_PHASES = ("Succeeded", "Failed")
_MEMORY_SUFFIXES = (
    ("Ti", 1 << 40),
    ("Gi", 1 << 30),
    ("Mi", 1 << 20),
    ("Ki", 1 << 10),
    ("T", 10**12),
    ("G", 10**9),
    ("M", 10**6),
    ("k", 10**3),
)


def counted_kind(resource: str) -> kinds.Kind | None:
    """The namespaced kind ``count/<plural>[.<group>]`` counts (None if the server serves no such kind)."""
    if not resource.startswith("count/"):
        return None
    plural, _, group = resource[len("count/") :].partition(".")
    for k in kinds.KINDS:
        if k.plural == plural and k.group == group and k.namespaced and k.kind != "Pod":
            return k
    return None


def count_resource(kind: kinds.Kind) -> str:
    """The ``count/...`` name of a kind's object count."""
    return f"count/{kind.plural}" + (f".{kind.group}" if kind.group else "")


def tracked(name: str) -> str | None:
    """The tracked resource a ``spec.hard`` key stands for, or None when it is not counted."""
    r = ALIASES.get(name, name)
    if r in TRACKED:
        return r
    if r in LEGACY_COUNTS:
        r = f"count/{r}"
    return r if counted_kind(r) is not None else None


def counts(pod: dict[str, Any]) -> bool:
    """Whether the pod uses quota: it has not finished."""
    return (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES


def _amount(resources: dict[str, Any], what: str, name: str) -> float:
    """One container's ``requests``/``limits`` of ``name`` (a request defaults to the limit)."""
    own = (resources.get(what) or {}).get(name)
    if own is None and what == "requests":
        own = (resources.get("limits") or {}).get(name)
    return parse_quantity(own) if own is not None else 0.0


def pod_requests(pod: dict[str, Any]) -> dict[str, float]:
    """What one pod uses of each tracked compute resource, plus one ``pods`` (malformed amounts count as 0)."""
    spec = pod.get("spec") or {}
    out = {"pods": 1.0}
    for r in COMPUTE:
        what, name = r.split(".", 1)
        try:
            main = sum(_amount(c.get("resources") or {}, what, name) for c in spec.get("containers") or [])
            init = max(
                (_amount(c.get("resources") or {}, what, name) for c in spec.get("initContainers") or []),
                default=0.0,
            )
            overhead = (spec.get("overhead") or {}).get(name)
            out[r] = max(main, init) + (parse_quantity(overhead) if overhead is not None else 0.0)
        except (ValueError, TypeError, AttributeError):
            out[r] = 0.0
    return out


def states_request(pod: dict[str, Any], resource: str) -> bool:
    """Whether every container states ``resource`` (``requests.cpu``, ``limits.memory``...; a limit states its request)."""
    what, name = resource.split(".", 1)

    def states(c: dict[str, Any]) -> bool:
        res = c.get("resources") or {}
        return name in (res.get(what) or {}) or (what == "requests" and name in (res.get("limits") or {}))

    spec = pod.get("spec") or {}
    return all(states(c) for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])])


def total(pods: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Usage of every tracked pod resource by the pods that count."""
    used: dict[str, float] = dict.fromkeys(TRACKED, 0.0)
    for p in pods:
        if counts(p):
            for r, v in pod_requests(p).items():
                used[r] += v
    return used


def format_amount(resource: str, v: float) -> str:
    """An amount of a tracked resource as a Kubernetes quantity string."""
    if resource.endswith(".cpu"):
        m = round(v * 1000)
        return str(m // 1000) if m % 1000 == 0 else f"{m}m"
    if resource.endswith((".memory", ".ephemeral-storage")):
        for suf, mult in _MEMORY_SUFFIXES:
            if v >= mult and v % mult == 0:
                return f"{int(v // mult)}{suf}"
        return str(int(v))
    return str(int(v))


def quota_status(
    hard: dict[str, Any], pods: Iterable[dict[str, Any]], objects: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """``status`` of a quota with ``spec.hard`` over the namespace's pods and object counts.

    ``objects`` maps a ``count/...`` resource to the number of such objects in the namespace;
    untracked keys get no ``used``.
    """
    used: dict[str, float] = defaultdict(float, total(pods))
    for r, n in (objects or {}).items():
        used[r] = float(n)
    out: dict[str, str] = {}
    for key in hard:
        res = tracked(key)
        if res is not None:
            out[key] = format_amount(res, used[res])
    return {"hard": dict(hard), "used": out}
