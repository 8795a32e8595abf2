"""Validation and defaulting of API objects, per kind.

The API server calls :func:`default` then :func:`validate` on every create, update and
patch. Validation first type-checks the whole object against its kind's schema
(:mod:`ctl.types.schema`, the same schema the OpenAPI document publishes), so a value of
the wrong type anywhere (``metadata.finalizers: 7``, ``spec.strategy: true``, a taint that
is ``null``) is a 422 with its field path before any per-kind rule or controller sees it;
only a well-typed object goes on to the per-kind rules below. Validation returns a list of
:class:`Cause` (field path + message); the server turns a non-empty list into a 422
``Invalid`` Status that names every field to fix, as Kubernetes does.

Unknown fields follow ``fieldValidation`` (the request's query parameter, passed in by the
server): ``None`` keeps them as before, ``Ignore`` drops them, ``Warn`` drops them and
appends a warning to ``warnings``, ``Strict`` makes each one a cause.

Quantities are parsed by :mod:`ctl.types.quantity` (``parse_quantity`` here is its float
form, kept for the importers that do arithmetic with it).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ctl.types import meta, schema
from ctl.types.actions import ACTION_OPERATIONS
from ctl.types.kinds import Kind
from ctl.types.quantity import quantity_float
from ctl.types.quantity import quantity_float as parse_quantity
from ctl.types.schema import Cause
from ctl.types.selectors import LabelSelector, SelectorError

__all__ = [
    "ACTION_OPERATIONS",
    "Cause",
    "default",
    "parse_quantity",
    "pod_spec_causes",
    "strip_for_compare",
    "validate",
    "validate_name",
]


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
    """Fill the kind's defaults in place; parts of the wrong type are left for :func:`validate`."""
    fn = _DEFAULTERS.get(kind.kind)
    if fn:
        try:
            fn(obj)
        except (AttributeError, TypeError, KeyError):
            pass  # a malformed object: validate() reports the field, nothing is stored


def validate_name(kind: Kind, name: str) -> str | None:
    if kind.kind in LABEL_NAMED:
        return meta.dns1123_label_error(name)
    if kind.kind == "Node":
        return meta.dns1123_subdomain_error(name)
    return meta.dns1123_subdomain_error(name)


def validate(
    kind: Kind,
    obj: dict[str, Any],
    field_validation: str | None = None,
    warnings: list[str] | None = None,
) -> list[Cause]:
    """Every problem with ``obj`` as a ``kind`` (empty if valid); see the module docstring."""
    md = obj.get("metadata")
    if not isinstance(md, dict):
        return [Cause("metadata", "Required value")]
    causes = schema.check(kind, obj, field_validation, warnings)
    if causes:
        return causes  # the per-kind rules below may assume well-typed fields
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


def _sub(obj: dict[str, Any], key: str) -> dict[str, Any] | None:
    """``obj[key]`` as a dict, created when absent or null (null is absent); None if another type."""
    if obj.get(key) is None:
        obj[key] = {}
    v = obj[key]
    return v if isinstance(v, dict) else None


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
def _check_resources(res: Any, path: str, causes: list[Cause]) -> None:
    if res is None:
        return
    if not isinstance(res, dict):
        causes.append(Cause(path, "must be an object with requests and limits"))
        return
    for part in ("requests", "limits"):
        for name, q in (res.get(part) or {}).items():
            try:
                if quantity_float(q) < 0:
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
    spec = _sub(obj, "spec")
    if spec is None:
        return
    default_pod_spec(spec)
    status = _sub(obj, "status")
    if status is not None:
        status.setdefault("phase", "Pending")


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
    spec = _sub(obj, "spec")
    if spec is None:
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    tpl = spec.get("template")
    if isinstance(tpl, dict) and isinstance(tpl.get("spec"), dict):
        default_pod_spec(tpl["spec"])
    if obj.get("kind") == "Deployment":
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        if spec.get("strategy") is None:  # null is absent, as Kubernetes decodes it
            spec["strategy"] = {"type": "RollingUpdate"}
        st = spec["strategy"]
        if isinstance(st, dict):
            if st.get("type") is None:
                st["type"] = "RollingUpdate"
            if st["type"] == "RollingUpdate":
                if st.get("rollingUpdate") is None:
                    st["rollingUpdate"] = {}
                ru = st["rollingUpdate"]
                if isinstance(ru, dict):
                    for f in ("maxSurge", "maxUnavailable"):
                        if ru.get(f) is None:
                            ru[f] = "25%"


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
    spec, status = _sub(obj, "spec"), _sub(obj, "status")
    if spec is not None:
        spec.setdefault("finalizers", ["kubernetes"])
    if status is not None:
        status.setdefault("phase", "Active")


@defaulter("Tenant")
def _default_tenant(obj: dict[str, Any]) -> None:
    spec, status = _sub(obj, "spec"), _sub(obj, "status")
    if spec is not None:
        spec.setdefault("storageClusterId", "0")
    if status is not None:
        status.setdefault("phase", "Active")


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


# DaemonSet, StatefulSet and ControllerRevision rules (issue #14) register themselves.
from ctl.types import apps_validation as _apps_validation  # noqa: E402, F401

# The batch and network kinds' rules register themselves with the decorators above.
from ctl.types import batch_validation as _batch_validation  # noqa: E402, F401
from ctl.types import network_validation as _network_validation  # noqa: E402, F401
