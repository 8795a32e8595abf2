"""ResourceQuota accounting shared by quota admission and the quota controller.

Both the API server (:mod:`ctl.apiserver.quota`, which refuses pods that would exceed a
quota) and the controller manager (:mod:`ctl.controllers.quota`, which keeps
``status.used`` up to date) must count a namespace's usage the same way, so the pure
rules live here, below both layers:

* the tracked resources are ``pods`` (alias ``count/pods``), ``requests.cpu`` (alias
  ``cpu``) and ``requests.memory`` (alias ``memory``); :func:`tracked` maps a key of
  ``spec.hard`` to one of them or to None;
* a pod counts while it has not finished (phase other than Succeeded/Failed), and uses
  one ``pods`` plus the sums of its containers' CPU and memory requests
  (:func:`pod_requests`, :func:`total`);
* amounts are written as Kubernetes writes quantities (:func:`format_amount`): CPU in
  whole cores (``2``) or millicores (``1500m``), memory with the largest binary or
  decimal suffix that is exact (``256Mi``, ``1Gi``, ``500M``) or in plain bytes;
* :func:`quota_status` builds a quota's ``status`` (``hard`` copied from ``spec.hard``,
  ``used`` for every key of ``spec.hard`` that is tracked, under that same key).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ctl.types.validation import parse_quantity

TRACKED = ("pods", "requests.cpu", "requests.memory")
ALIASES = {"count/pods": "pods", "cpu": "requests.cpu", "memory": "requests.memory"}
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


def tracked(name: str) -> str | None:
    """The tracked resource a ``spec.hard`` key stands for, or None when it is not counted."""
    r = ALIASES.get(name, name)
    return r if r in TRACKED else None


def counts(pod: dict[str, Any]) -> bool:
    """Whether the pod uses quota: it has not finished."""
    return (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES


def pod_requests(pod: dict[str, Any]) -> dict[str, float]:
    """What one pod uses of each tracked resource (malformed requests count as 0)."""
    cpu = mem = 0.0
    for c in (pod.get("spec") or {}).get("containers") or []:
        req = (c.get("resources") or {}).get("requests") or {}
        try:
            cpu += parse_quantity(req["cpu"]) if "cpu" in req else 0.0
            mem += parse_quantity(req["memory"]) if "memory" in req else 0.0
        except ValueError:
            pass
    return {"pods": 1.0, "requests.cpu": cpu, "requests.memory": mem}


def states_request(pod: dict[str, Any], resource: str) -> bool:
    """Whether every container states the request ``resource`` (``requests.cpu``/``requests.memory``)."""
    what = resource.split(".", 1)[1]
    return all(
        what in ((c.get("resources") or {}).get("requests") or {})
        for c in (pod.get("spec") or {}).get("containers") or []
    )


def total(pods: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Usage of every tracked resource by the pods that count."""
    used = dict.fromkeys(TRACKED, 0.0)
    for p in pods:
        if counts(p):
            for r, v in pod_requests(p).items():
                used[r] += v
    return used


def format_amount(resource: str, v: float) -> str:
    """An amount of a tracked resource as a Kubernetes quantity string."""
    if resource == "requests.cpu":
        m = round(v * 1000)
        return str(m // 1000) if m % 1000 == 0 else f"{m}m"
    if resource == "requests.memory":
        for suf, mult in _MEMORY_SUFFIXES:
            if v >= mult and v % mult == 0:
                return f"{int(v // mult)}{suf}"
        return str(int(v))
    return str(int(v))


def quota_status(hard: dict[str, Any], pods: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """``status`` of a quota with ``spec.hard`` over the namespace's pods; untracked keys get no ``used``."""
    used = total(pods)
    out: dict[str, str] = {}
    for key in hard:
        r = tracked(key)
        if r is not None:
            out[key] = format_amount(r, used[r])
    return {"hard": dict(hard), "used": out}
