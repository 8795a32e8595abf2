"""Label and field selectors, parsed once and matched many times.

Label selectors accept the Kubernetes string syntax: ``a=b``, ``a==b``, ``a!=b``,
``a in (x,y)``, ``a notin (x)``, ``a`` (exists) and ``!a`` (does not exist), joined by
commas; and the structured form (``matchLabels`` / ``matchExpressions``) used in
object specs. Field selectors accept ``path=value``, ``path==value`` and
``path!=value`` on dotted paths such as ``metadata.name``, ``spec.nodeName`` and
``status.phase``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class SelectorError(ValueError):
    pass


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # =, !=, in, notin, exists, !
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!":
            return self.key not in labels
        if self.op in ("=", "in"):
            return labels.get(self.key) in self.values
        if self.op in ("!=", "notin"):
            return labels.get(self.key) not in self.values
        return False


_SET_RE = re.compile(r"^\s*([^\s!=,()]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")


def _split_top(s: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


class LabelSelector:
    def __init__(self, reqs: list[Requirement]) -> None:
        self.reqs = reqs

    @property
    def empty(self) -> bool:
        return not self.reqs

    def matches(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.reqs)

    def equality_value(self, key: str) -> str | None:
        for r in self.reqs:
            if r.key == key and r.op == "=":
                return r.values[0]
        return None

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        reqs: list[Requirement] = []
        for part in _split_top(text or ""):
            m = _SET_RE.match(part)
            if m:
                vals = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
                reqs.append(Requirement(m.group(1), m.group(2), vals))
            elif "!=" in part:
                k, v = part.split("!=", 1)
                reqs.append(Requirement(k.strip(), "!=", (v.strip(),)))
            elif "==" in part or "=" in part:
                k, v = part.split("==", 1) if "==" in part else part.split("=", 1)
                reqs.append(Requirement(k.strip(), "=", (v.strip(),)))
            elif part.startswith("!"):
                reqs.append(Requirement(part[1:].strip(), "!"))
            elif re.match(r"^[A-Za-z0-9][-A-Za-z0-9_./]*$", part):
                reqs.append(Requirement(part, "exists"))
            else:
                raise SelectorError(f"unable to parse requirement {part!r} in label selector")
            if not reqs[-1].key:
                raise SelectorError(f"empty key in label selector requirement {part!r}")
        return cls(reqs)

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | None) -> LabelSelector:
        """From a structured selector (``matchLabels`` and ``matchExpressions``)."""
        spec = spec or {}
        reqs = [Requirement(k, "=", (str(v),)) for k, v in (spec.get("matchLabels") or {}).items()]
        ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
        for e in spec.get("matchExpressions") or []:
            op = ops.get(e.get("operator", ""))
            if op is None:
                raise SelectorError(f"unknown selector operator {e.get('operator')!r}")
            reqs.append(Requirement(e.get("key", ""), op, tuple(e.get("values") or ())))
        return cls(reqs)

    def __str__(self) -> str:
        out = []
        for r in self.reqs:
            if r.op in ("=", "!="):
                out.append(f"{r.key}{r.op}{r.values[0]}")
            elif r.op in ("in", "notin"):
                out.append(f"{r.key} {r.op} ({','.join(r.values)})")
            elif r.op == "exists":
                out.append(r.key)
            else:
                out.append(f"!{r.key}")
        return ",".join(out)


def get_path(obj: dict[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


class FieldSelector:
    def __init__(self, reqs: list[tuple[str, str, str]]) -> None:
        self.reqs = reqs

    @property
    def empty(self) -> bool:
        return not self.reqs

    def equality_value(self, path: str) -> str | None:
        for p, op, v in self.reqs:
            if p == path and op == "=":
                return v
        return None

    def matches(self, obj: dict[str, Any]) -> bool:
        for path, op, value in self.reqs:
            actual = get_path(obj, path)
            actual_s = "" if actual is None else str(actual)
            if (actual_s == value) != (op == "="):
                return False
        return True

    @classmethod
    def parse(cls, text: str | None, allowed: Callable[[str], bool] | None = None) -> FieldSelector:
        reqs = []
        for part in _split_top(text or ""):
            if "!=" in part:
                k, v = part.split("!=", 1)
                op = "!="
            elif "==" in part:
                k, v = part.split("==", 1)
                op = "="
            elif "=" in part:
                k, v = part.split("=", 1)
                op = "="
            else:
                raise SelectorError(f"invalid field selector {part!r}: expected FIELD=VALUE or FIELD!=VALUE")
            k = k.strip()
            if allowed is not None and not allowed(k):
                raise SelectorError(f"field label not supported: {k}")
            reqs.append((k, op, v.strip()))
        return cls(reqs)


# Field selectors each kind supports, as kube-apiserver's field label conversion allows them
# (metadata.name and metadata.namespace everywhere; Arktos adds metadata.tenant).
COMMON_FIELDS = frozenset({"metadata.name", "metadata.namespace", "metadata.tenant"})
KIND_FIELDS: dict[str, frozenset[str]] = {
    "Pod": frozenset(
        {
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        }
    ),
    "Event": frozenset(
        {
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        }
    ),
    "Node": frozenset({"spec.unschedulable"}),
    "Namespace": frozenset({"status.phase"}),
    "Secret": frozenset({"type"}),
    "ReplicaSet": frozenset({"status.replicas"}),
    "Action": frozenset({"spec.nodeName"}),
}


def field_supported(kind: str) -> Callable[[str], bool]:
    """The ``allowed`` test of :meth:`FieldSelector.parse` for one kind."""
    fields = COMMON_FIELDS | KIND_FIELDS.get(kind, frozenset())
    return fields.__contains__
