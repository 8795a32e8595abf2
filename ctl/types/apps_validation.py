"""Defaults and rules of the apps/v1 DaemonSet, StatefulSet and ControllerRevision.

Imported at the end of :mod:`ctl.types.validation`, whose ``validator``/``defaulter``
decorators it registers with; the schema has type-checked the object before these rules
run. The defaults are Kubernetes' own: a DaemonSet updates ``RollingUpdate`` with
``maxUnavailable: 1, maxSurge: 0``; a StatefulSet has one replica, ``OrderedReady``
pod management, ``RollingUpdate`` with ``partition: 0`` and ``Retain`` claims when deleted
and when scaled; both keep 10 revisions.
"""

from __future__ import annotations

from typing import Any

from ctl.types import meta
from ctl.types.schema import Cause
from ctl.types.validation import _sub, _workload, default_pod_spec, defaulter, validator

_DS_STRATEGIES = ("RollingUpdate", "OnDelete")
_POLICIES = ("OrderedReady", "Parallel")


def _non_negative(spec: dict[str, Any], field: str, causes: list[Cause], path: str = "spec") -> None:
    v = spec.get(field)
    if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
        causes.append(Cause(f"{path}.{field}", f"Invalid value: {v!r}: must be greater than or equal to 0"))


def _int_or_percent(v: Any, path: str, causes: list[Cause]) -> int | None:
    """The value's size as a number (percent as is), or None after adding a cause."""
    if isinstance(v, int) and not isinstance(v, bool):
        if v < 0:
            causes.append(Cause(path, f"Invalid value: {v}: must be greater than or equal to 0"))
            return None
        return v
    if isinstance(v, str) and v.endswith("%") and v[:-1].isdigit():
        n = int(v[:-1])
        if n > 100:
            causes.append(Cause(path, f"Invalid value: {v!r}: must not be greater than 100%"))
            return None
        return n
    causes.append(Cause(path, f"Invalid value: {v!r}: must be an integer or a percentage"))
    return None


def _one_of(value: Any, allowed: tuple[str, ...], path: str, causes: list[Cause]) -> bool:
    """Whether ``value`` is absent or one of ``allowed``; adds an Unsupported value cause if not."""
    if value is None or value in allowed:
        return True
    supported = ", ".join(f'"{a}"' for a in allowed)
    causes.append(Cause(path, f"Unsupported value: {value!r}: supported values: {supported}"))
    return False


def _strategy_type(st: Any, allowed: tuple[str, ...], causes: list[Cause]) -> str | None:
    if not isinstance(st, dict) or not _one_of(st.get("type"), allowed, "spec.updateStrategy.type", causes):
        return None
    t = st.get("type")
    return str(t) if t else None


def _common(obj: dict[str, Any], causes: list[Cause]) -> dict[str, Any] | None:
    """The rules both kinds share; their spec, or None when there is none to check further."""
    _workload(obj, causes)  # spec, selector, template and its pod spec, as for ReplicaSets
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return None
    for f in ("minReadySeconds", "revisionHistoryLimit"):
        _non_negative(spec, f, causes)
    return spec


@validator("DaemonSet")
def _daemonset(obj: dict[str, Any], causes: list[Cause]) -> None:
    spec = _common(obj, causes)
    if spec is None:
        return
    tpl_spec = (spec.get("template") or {}).get("spec") or {}
    if isinstance(tpl_spec, dict):
        _one_of(tpl_spec.get("restartPolicy"), ("Always",), "spec.template.spec.restartPolicy", causes)
    st = spec.get("updateStrategy")
    if _strategy_type(st, _DS_STRATEGIES, causes) == "RollingUpdate":
        ru = (st or {}).get("rollingUpdate") or {}
        base = "spec.updateStrategy.rollingUpdate"
        mu = _int_or_percent(ru.get("maxUnavailable", 1), f"{base}.maxUnavailable", causes)
        ms = _int_or_percent(ru.get("maxSurge", 0), f"{base}.maxSurge", causes)
        if mu == 0 and ms == 0:
            causes.append(
                Cause(f"{base}.maxUnavailable", "Invalid value: 0: may not be 0 when `maxSurge` is 0")
            )


def _default_update_strategy(spec: dict[str, Any], rolling: dict[str, Any]) -> None:
    """``revisionHistoryLimit: 10`` and ``updateStrategy`` RollingUpdate with ``rolling``'s defaults."""
    spec.setdefault("revisionHistoryLimit", 10)
    if spec.get("updateStrategy") is None:  # null is absent, as Kubernetes decodes it
        spec["updateStrategy"] = {"type": "RollingUpdate"}
    st = spec["updateStrategy"]
    if not isinstance(st, dict):
        return
    if st.get("type") is None:
        st["type"] = "RollingUpdate"
    if st["type"] != "RollingUpdate":
        return
    if st.get("rollingUpdate") is None:
        st["rollingUpdate"] = {}
    ru = st["rollingUpdate"]
    if isinstance(ru, dict):
        for k, v in rolling.items():
            if ru.get(k) is None:
                ru[k] = v


@defaulter("DaemonSet")
def _default_daemonset(obj: dict[str, Any]) -> None:
    spec = _sub(obj, "spec")
    if spec is None:
        return
    tpl = spec.get("template")
    if isinstance(tpl, dict) and isinstance(tpl.get("spec"), dict):
        default_pod_spec(tpl["spec"])
    _default_update_strategy(spec, {"maxUnavailable": 1, "maxSurge": 0})


@validator("StatefulSet")
def _statefulset(obj: dict[str, Any], causes: list[Cause]) -> None:
    spec = _common(obj, causes)
    if spec is None:
        return
    _one_of(spec.get("podManagementPolicy"), _POLICIES, "spec.podManagementPolicy", causes)
    retention = spec.get("persistentVolumeClaimRetentionPolicy") or {}
    for f in ("whenDeleted", "whenScaled"):
        path = f"spec.persistentVolumeClaimRetentionPolicy.{f}"
        _one_of(retention.get(f), ("Retain", "Delete"), path, causes)
    st = spec.get("updateStrategy")
    if _strategy_type(st, _DS_STRATEGIES, causes) == "RollingUpdate":
        ru = (st or {}).get("rollingUpdate") or {}
        _non_negative(ru, "partition", causes, "spec.updateStrategy.rollingUpdate")
    names: set[str] = set()
    for i, t in enumerate(spec.get("volumeClaimTemplates") or []):
        path = f"spec.volumeClaimTemplates[{i}]"
        name = ((t or {}).get("metadata") or {}).get("name") or ""
        err = meta.dns1123_label_error(name) if name else "Required value"
        if err:
            causes.append(Cause(f"{path}.metadata.name", err))
        elif name in names:
            causes.append(Cause(f"{path}.metadata.name", f"Duplicate value: {name!r}"))
        names.add(name)
        storage = (((t or {}).get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
        if storage is None:
            causes.append(Cause(f"{path}.spec.resources.requests[storage]", "Required value"))


@defaulter("StatefulSet")
def _default_statefulset(obj: dict[str, Any]) -> None:
    spec = _sub(obj, "spec")
    if spec is None:
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    tpl = spec.get("template")
    if isinstance(tpl, dict) and isinstance(tpl.get("spec"), dict):
        default_pod_spec(tpl["spec"])
    if spec.get("podManagementPolicy") is None:
        spec["podManagementPolicy"] = "OrderedReady"
    if spec.get("persistentVolumeClaimRetentionPolicy") is None:
        spec["persistentVolumeClaimRetentionPolicy"] = {}
    retention = spec["persistentVolumeClaimRetentionPolicy"]
    if isinstance(retention, dict):
        for f in ("whenDeleted", "whenScaled"):
            if retention.get(f) is None:
                retention[f] = "Retain"
    _default_update_strategy(spec, {"partition": 0})
    for t in spec.get("volumeClaimTemplates") or []:
        if isinstance(t, dict) and isinstance(t.get("spec"), dict):
            t["spec"].setdefault("accessModes", ["ReadWriteOnce"])
            t["spec"].setdefault("volumeMode", "Filesystem")


@validator("ControllerRevision")
def _controllerrevision(obj: dict[str, Any], causes: list[Cause]) -> None:
    rev = obj.get("revision")
    if not isinstance(rev, int) or isinstance(rev, bool) or rev < 0:
        causes.append(Cause("revision", f"Invalid value: {rev!r}: must be greater than or equal to 0"))
