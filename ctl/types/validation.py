"""Validation and defaulting of API objects, per kind.

The API server calls :func:`default` then :func:`validate` on every create and
update. Validation returns a list of :class:`Cause` (field path + message); the
server turns a non-empty list into a 422 ``Invalid`` Status that names every field
to fix, as Kubernetes does. Kinds without a validator get the common metadata
checks only.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ctl.types import meta
from ctl.types.kinds import Kind
from ctl.types.selectors import LabelSelector, SelectorError


@dataclass(frozen=True)
class Cause:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


Validator = Callable[[dict[str, Any], list[Cause]], None]
Defaulter = Callable[[dict[str, Any]], None]
_VALIDATORS: dict[str, Validator] = {}
_DEFAULTERS: dict[str, Defaulter] = {}
LABEL_NAMED = {"Namespace", "Tenant"}


def validator(kind: str) -> Callable[[Validator], Validator]:
    def deco(fn: Validator) -> Validator:
        _VALIDATORS[kind] = fn
        return fn

    return deco


def defaulter(kind: str) -> Callable[[Defaulter], Defaulter]:
    def deco(fn: Defaulter) -> Defaulter:
        _DEFAULTERS[kind] = fn
        return fn

    return deco


def default(kind: Kind, obj: dict[str, Any]) -> None:
    fn = _DEFAULTERS.get(kind.kind)
    if fn:
        fn(obj)


def validate_name(kind: Kind, name: str) -> str | None:
    if kind.kind in LABEL_NAMED:
        return meta.dns1123_label_error(name)
    if kind.kind == "Node":
        return meta.dns1123_subdomain_error(name)
    return meta.dns1123_subdomain_error(name)


def validate(kind: Kind, obj: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    md = obj.get("metadata")
    if not isinstance(md, dict):
        return [Cause("metadata", "Required value")]
    err = validate_name(kind, md.get("name") or "")
    if err:
        causes.append(Cause("metadata.name", f"Invalid value: {md.get('name')!r}: {err}"))
    for field in ("labels", "annotations"):
        v = md.get(field)
        if v is not None and not isinstance(v, dict):
            causes.append(Cause(f"metadata.{field}", "must be a map of string keys to string values"))
    for k, v in (md.get("labels") or {}).items():
        e = meta.label_key_error(k) or meta.label_value_error(v)
        if e:
            causes.append(Cause("metadata.labels", e))
    for k, v in (md.get("annotations") or {}).items():
        if not isinstance(v, str):
            causes.append(Cause(f"metadata.annotations[{k}]", "annotation values must be strings"))
    fn = _VALIDATORS.get(kind.kind)
    if fn:
        fn(obj, causes)
    return causes


def _req(obj: dict[str, Any], path: str, causes: list[Cause], typ: type | tuple[type, ...] = object) -> Any:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if cur is None or cur == "" or cur == [] or cur == {}:
        causes.append(Cause(path, "Required value"))
        return None
    if not isinstance(cur, typ):
        causes.append(Cause(path, f"Invalid type: expected {getattr(typ, '__name__', typ)}"))
        return None
    return cur


# ----------------------------------------------------------------------------- quantities
_SUFFIX = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "m": 1e-3,
    "": 1,
}


def parse_quantity(q: Any) -> float:
    """Kubernetes quantity ('100m', '64Mi', '2', 1.5) as a float; ValueError if malformed."""
    if isinstance(q, (int, float)) and not isinstance(q, bool):
        return float(q)
    if not isinstance(q, str) or not q:
        raise ValueError(f"quantity {q!r} must be a number or a string like '100m' or '64Mi'")
    s = q.strip()
    for suf in ("Ki", "Mi", "Gi", "Ti", "Pi", "k", "M", "G", "T", "P", "m"):
        if s.endswith(suf):
            num = s[: -len(suf)]
            try:
                return float(num) * _SUFFIX[suf]
            except ValueError:
                break
    try:
        return float(s)
    except ValueError:
        raise ValueError(
            f"quantities must match the regular expression '^[0-9.]+(m|k|M|G|Ki|Mi|Gi)?$': {q!r}"
        ) from None


def _check_resources(res: Any, path: str, causes: list[Cause]) -> None:
    if res is None:
        return
    if not isinstance(res, dict):
        causes.append(Cause(path, "must be an object with requests and limits"))
        return
    for part in ("requests", "limits"):
        for name, q in (res.get(part) or {}).items():
            try:
                if parse_quantity(q) < 0:
                    causes.append(Cause(f"{path}.{part}.{name}", "must be greater than or equal to 0"))
            except ValueError as e:
                causes.append(Cause(f"{path}.{part}.{name}", str(e)))


# ----------------------------------------------------------------------------- pods
def _validate_container(c: Any, path: str, causes: list[Cause], names: set[str]) -> None:
    if not isinstance(c, dict):
        causes.append(Cause(path, "must be an object"))
        return
    name = c.get("name")
    if not name:
        causes.append(Cause(f"{path}.name", "Required value"))
    else:
        err = meta.dns1123_label_error(name)
        if err:
            causes.append(Cause(f"{path}.name", f"Invalid value: {name!r}: {err}"))
        if name in names:
            causes.append(Cause(f"{path}.name", f"Duplicate value: {name!r}"))
        names.add(name)
    if not c.get("image"):
        causes.append(Cause(f"{path}.image", "Required value"))
    for f in ("command", "args"):
        v = c.get(f)
        if v is not None and (not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
            causes.append(Cause(f"{path}.{f}", "must be a list of strings"))
    for i, e in enumerate(c.get("env") or []):
        if not isinstance(e, dict) or not e.get("name"):
            causes.append(Cause(f"{path}.env[{i}].name", "Required value"))
    _check_resources(c.get("resources"), f"{path}.resources", causes)


def pod_spec_causes(spec: Any, path: str, causes: list[Cause], pod: dict[str, Any] | None = None) -> None:
    if not isinstance(spec, dict):
        causes.append(Cause(path, "Required value"))
        return
    vm = spec.get("virtualMachine")
    containers = spec.get("containers")
    if vm is not None:
        try:
            from ctl.types.vm_validation import validate_virtual_machine
        except ImportError:  # pragma: no cover
            validate_virtual_machine = None  # type: ignore[assignment]
        if validate_virtual_machine is not None:
            for msg in validate_virtual_machine({"spec": spec, "metadata": (pod or {}).get("metadata", {})}):
                f, _, m = msg.partition(": ")
                if not m or not (f == "spec" or f.startswith("spec.")):
                    causes.append(Cause(path, msg))
                else:
                    causes.append(Cause(path + f[len("spec") :], m))
        return
    if not containers:
        causes.append(
            Cause(f"{path}.containers", "Required value: a pod needs containers or a virtualMachine")
        )
    elif not isinstance(containers, list):
        causes.append(Cause(f"{path}.containers", "must be a list"))
    else:
        names: set[str] = set()
        for i, c in enumerate(containers):
            _validate_container(c, f"{path}.containers[{i}]", causes, names)
        for i, c in enumerate(spec.get("initContainers") or []):
            _validate_container(c, f"{path}.initContainers[{i}]", causes, names)
    rp = spec.get("restartPolicy")
    if rp not in (None, "Always", "OnFailure", "Never"):
        causes.append(
            Cause(
                f"{path}.restartPolicy",
                f'Unsupported value: {rp!r}: supported values: "Always", "OnFailure", "Never"',
            )
        )
    ns = spec.get("nodeSelector")
    if ns is not None and not isinstance(ns, dict):
        causes.append(Cause(f"{path}.nodeSelector", "must be a map of labels"))


@validator("Pod")
def _pod(obj: dict[str, Any], causes: list[Cause]) -> None:
    pod_spec_causes(obj.get("spec"), "spec", causes, obj)


@defaulter("Pod")
def _default_pod(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    default_pod_spec(spec)
    obj.setdefault("status", {}).setdefault("phase", "Pending")


def default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    for c in spec.get("containers") or []:
        if isinstance(c, dict):
            c.setdefault("imagePullPolicy", "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("resources", {})
    vm = spec.get("virtualMachine")
    if isinstance(vm, dict):
        vm.setdefault("powerSpec", "Running")


# ----------------------------------------------------------------------------- workloads
def _workload(obj: dict[str, Any], causes: list[Cause]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        causes.append(Cause("spec", "Required value"))
        return
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        causes.append(Cause("spec.replicas", f"Invalid value: {replicas!r}: must be a non-negative integer"))
    sel = spec.get("selector")
    if not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        causes.append(Cause("spec.selector", "Required value"))
        sel = None
    tpl = spec.get("template")
    if not isinstance(tpl, dict):
        causes.append(Cause("spec.template", "Required value"))
        return
    labels = (tpl.get("metadata") or {}).get("labels") or {}
    if sel is not None:
        try:
            if not LabelSelector.from_spec(sel).matches(labels):
                causes.append(
                    Cause(
                        "spec.template.metadata.labels",
                        f"Invalid value: {labels}: `selector` does not match template `labels`",
                    )
                )
        except SelectorError as e:
            causes.append(Cause("spec.selector", str(e)))
    pod_spec_causes(tpl.get("spec"), "spec.template.spec", causes, {"metadata": tpl.get("metadata") or {}})
    strategy = spec.get("strategy")
    if isinstance(strategy, dict):
        t = strategy.get("type")
        if t not in (None, "RollingUpdate", "Recreate"):
            causes.append(
                Cause(
                    "spec.strategy.type",
                    f'Unsupported value: {t!r}: supported values: "Recreate", "RollingUpdate"',
                )
            )


def _default_workload(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    tpl = spec.get("template")
    if isinstance(tpl, dict) and isinstance(tpl.get("spec"), dict):
        default_pod_spec(tpl["spec"])
    if obj.get("kind") == "Deployment":
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        st = spec.setdefault("strategy", {"type": "RollingUpdate"})
        if isinstance(st, dict):
            st.setdefault("type", "RollingUpdate")
            if st["type"] == "RollingUpdate":
                ru = st.setdefault("rollingUpdate", {})
                ru.setdefault("maxSurge", "25%")
                ru.setdefault("maxUnavailable", "25%")


for _k in ("ReplicaSet", "Deployment"):
    validator(_k)(_workload)
    defaulter(_k)(_default_workload)


# ----------------------------------------------------------------------------- config
@validator("ConfigMap")
def _configmap(obj: dict[str, Any], causes: list[Cause]) -> None:
    data = obj.get("data")
    if data is not None:
        if not isinstance(data, dict):
            causes.append(Cause("data", "must be a map of string keys to string values"))
        else:
            for k, v in data.items():
                if not isinstance(v, str):
                    causes.append(Cause(f"data[{k}]", "Invalid value: values must be strings"))


@validator("Secret")
def _secret(obj: dict[str, Any], causes: list[Cause]) -> None:
    import base64
    import binascii

    for k, v in (obj.get("data") or {}).items():
        try:
            base64.b64decode(v, validate=True)
        except (binascii.Error, TypeError):
            causes.append(Cause(f"data[{k}]", "Invalid value: must be base64 encoded"))


@defaulter("Secret")
def _default_secret(obj: dict[str, Any]) -> None:
    import base64

    obj.setdefault("type", "Opaque")
    sd = obj.pop("stringData", None)
    if isinstance(sd, dict):
        data = obj.setdefault("data", {})
        for k, v in sd.items():
            data[k] = base64.b64encode(str(v).encode()).decode()


@validator("Lease")
def _lease(obj: dict[str, Any], causes: list[Cause]) -> None:
    spec = obj.get("spec") or {}
    d = spec.get("leaseDurationSeconds")
    if d is not None and (not isinstance(d, int) or d <= 0):
        causes.append(Cause("spec.leaseDurationSeconds", "must be greater than 0"))


@validator("Event")
def _event(obj: dict[str, Any], causes: list[Cause]) -> None:
    if not isinstance(obj.get("involvedObject"), dict):
        causes.append(Cause("involvedObject", "Required value"))


@validator("Node")
def _node(obj: dict[str, Any], causes: list[Cause]) -> None:
    for i, t in enumerate((obj.get("spec") or {}).get("taints") or []):
        if t.get("effect") not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            causes.append(
                Cause(
                    f"spec.taints[{i}].effect",
                    'Unsupported value: supported values: "NoExecute", "NoSchedule", "PreferNoSchedule"',
                )
            )


@defaulter("Namespace")
def _default_namespace(obj: dict[str, Any]) -> None:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")


@defaulter("Tenant")
def _default_tenant(obj: dict[str, Any]) -> None:
    obj.setdefault("spec", {}).setdefault("storageClusterId", "0")
    obj.setdefault("status", {}).setdefault("phase", "Active")


def strip_for_compare(obj: dict[str, Any]) -> dict[str, Any]:
    """Copy without server-managed metadata (for 'unchanged' detection)."""
    o = copy.deepcopy(obj)
    md = o.get("metadata", {})
    for f in (
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "generation",
        "managedFields",
        "selfLink",
        "hashKey",
    ):
        md.pop(f, None)
    o.pop("status", None)
    return o


ACTION_OPERATIONS = ("reboot", "snapshot", "restore", "stop", "start")


@validator("Action")
def _action(obj: dict[str, Any], causes: list[Cause]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        causes.append(Cause("spec", "Required value"))
        return
    if not spec.get("nodeName"):
        causes.append(
            Cause(
                "spec.nodeName",
                "Required value: an Action must name the node that performs it; "
                "create actions with POST .../pods/NAME/action instead",
            )
        )
    if not spec.get("podName"):
        causes.append(Cause("spec.podName", "Required value"))
    op = spec.get("operation")
    if op not in ACTION_OPERATIONS:
        causes.append(
            Cause(
                "spec.operation",
                f"Unsupported value: {op!r}: supported values: {', '.join(ACTION_OPERATIONS)}",
            )
        )
