"""Schema validation as a pure function: every kind's fields type-checked with a field path.

``ctl.types.validation.validate`` runs the compiled schema of :mod:`ctl.types.schema` before
the per-kind rules. These tests feed it the cases from the hardening issue, every example
manifest (which must stay valid in every ``fieldValidation`` mode) and every example
manifest with each of its fields replaced by a value of the wrong type (each must be
reported at that field's path, never raise). The same cases against a real API server are
in ``test_schema_api.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ctl.types import kinds, validation
from ctl.types.kinds import Kind

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "manifests").rglob("*.yaml"))


def _docs() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for p in MANIFESTS:
        for i, d in enumerate(yaml.safe_load_all(p.read_text())):
            if isinstance(d, dict) and d.get("kind"):
                out.append((f"{p.relative_to(ROOT)}#{i}", d))
    return out


DOCS = _docs()


def kind_of(obj: dict[str, Any]) -> Kind:
    k = kinds.by_kind(obj["apiVersion"], obj["kind"])
    assert k is not None, obj["kind"]
    return k


def causes(obj: dict[str, Any], mode: str | None = None, warnings: list[str] | None = None) -> list[str]:
    k = kind_of(obj)
    o = copy.deepcopy(obj)
    validation.default(k, o)
    return [str(c) for c in validation.validate(k, o, mode, warnings)]


def test_every_kind_has_a_schema() -> None:
    from ctl.types import schema

    assert all(schema.definition_name(k) for k in kinds.KINDS)


@pytest.mark.parametrize(("where", "doc"), DOCS, ids=[w for w, _ in DOCS])
@pytest.mark.parametrize("mode", [None, "Ignore", "Warn", "Strict"])
def test_example_manifests_are_valid_in_every_mode(where: str, doc: dict[str, Any], mode: str | None) -> None:
    warnings: list[str] = []
    assert causes(doc, mode, warnings) == []
    assert warnings == []  # the examples use only fields the schemas know


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p"},
    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
}
DEPLOY = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "d"},
    "spec": {
        "selector": {"matchLabels": {"app": "a"}},
        "template": {"metadata": {"labels": {"app": "a"}}, "spec": POD["spec"]},
    },
}
NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}}


def _with(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    o = copy.deepcopy(base)
    cur = o
    parts = path.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return o


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (
            _with(POD, "metadata.finalizers", 7),
            'metadata.finalizers: Invalid value: "integer": '
            "metadata.finalizers in body must be of type array",
        ),
        (_with(POD, "metadata.finalizers", [1]), 'metadata.finalizers[0]: Invalid value: "integer"'),
        (_with(POD, "metadata.name", True), 'metadata.name: Invalid value: "boolean"'),
        (_with(POD, "metadata.labels", ["a"]), 'metadata.labels: Invalid value: "array"'),
        (_with(POD, "metadata.labels", {"a": 1}), 'metadata.labels[a]: Invalid value: "integer"'),
        (
            _with(POD, "metadata.ownerReferences", [{"name": "x"}]),
            "metadata.ownerReferences[0].uid: Required value",
        ),
        (_with(POD, "spec.containers", {"name": "c"}), 'spec.containers: Invalid value: "object"'),
        (
            _with(POD, "spec.containers", [{"name": True, "image": "b"}]),
            'spec.containers[0].name: Invalid value: "boolean": spec.containers[0].name in body must be of type string',
        ),
        (
            _with(POD, "spec.containers", [{"name": "c", "image": "b", "env": [{"name": "A", "value": 1}]}]),
            'spec.containers[0].env[0].value: Invalid value: "integer"',
        ),
        (
            _with(
                POD,
                "spec.containers",
                [{"name": "c", "image": "b", "resources": {"limits": {"cpu": "lots"}}}],
            ),
            'spec.containers[0].resources.limits[cpu]: Invalid value: "lots": quantities must match',
        ),
        (
            _with(
                POD,
                "spec.containers",
                [{"name": "c", "image": "b", "livenessProbe": {"httpGet": {"port": 1.5}}}],
            ),
            'spec.containers[0].livenessProbe.httpGet.port: Invalid value: "number"',
        ),
        (_with(POD, "spec.tolerations", [None]), 'spec.tolerations[0]: Invalid value: "null"'),
        (
            _with(POD, "spec.terminationGracePeriodSeconds", "30"),
            "spec.terminationGracePeriodSeconds: Invalid",
        ),
        (
            _with(POD, "spec.virtualMachine", {"name": 5}),
            'spec.virtualMachine.name: Invalid value: "integer"',
        ),
        (_with(POD, "status", 7), 'status: Invalid value: "integer"'),
        (_with(DEPLOY, "spec.strategy", True), 'spec.strategy: Invalid value: "boolean"'),
        (
            _with(DEPLOY, "spec.replicas", "string"),
            'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"',
        ),
        (_with(DEPLOY, "spec.replicas", 2**40), "spec.replicas: Invalid value: 1099511627776"),
        (
            _with(DEPLOY, "spec.strategy", {"rollingUpdate": {"maxSurge": [1]}}),
            'spec.strategy.rollingUpdate.maxSurge: Invalid value: "array"',
        ),
        (_with(DEPLOY, "spec.template.spec.containers", 3), "spec.template.spec.containers: Invalid value"),
        (_with(NODE, "spec.taints", [None]), 'spec.taints[0]: Invalid value: "null"'),
        (_with(NODE, "status.conditions", 7), 'status.conditions: Invalid value: "integer"'),
        (
            _with(NODE, "status.conditions", [{"type": "Ready"}]),
            "status.conditions[0].status: Required value",
        ),
        (_with(NODE, "status.capacity", {"cpu": "two"}), 'status.capacity[cpu]: Invalid value: "two"'),
        (_with(NODE, "metadata.labels", {1: "a"}), "metadata.labels: Invalid value: 1: keys must be strings"),
        (
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}, "spec": 7},
            'spec: Invalid value: "integer"',
        ),
        (
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"a": 1}},
            'data[a]: Invalid value: "integer"',
        ),
        (
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "r"},
                "rules": [{"verbs": "get"}],
            },
            'rules[0].verbs: Invalid value: "string"',
        ),
        (
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": "l"},
                "spec": {"leaseDurationSeconds": "15"},
            },
            'spec.leaseDurationSeconds: Invalid value: "string"',
        ),
        (
            {
                "apiVersion": "mizar.centaurus.io/v1",
                "kind": "VPC",
                "metadata": {"name": "v"},
                "spec": {"vni": "x"},
            },
            'spec.vni: Invalid value: "string"',
        ),
    ],
)
def test_wrong_types_are_invalid_with_a_field_path(obj: dict[str, Any], expected: str) -> None:
    got = causes(obj)
    assert any(c.startswith(expected) for c in got), got


def test_null_is_absent_and_defaults_apply() -> None:
    d = _with(DEPLOY, "spec.strategy", {"type": "RollingUpdate", "rollingUpdate": None})
    k = kind_of(d)
    validation.default(k, d)
    assert validation.validate(k, d) == []
    assert d["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    d2 = _with(DEPLOY, "spec.strategy", None)
    validation.default(k, d2)
    assert validation.validate(k, d2) == [] and d2["spec"]["strategy"]["type"] == "RollingUpdate"
    p = _with(POD, "metadata.labels", None)
    assert validation.validate(kind_of(p), p) == [] and "labels" not in p["metadata"]
    # A zero time stays null, as Kubernetes renders it.
    p = _with(POD, "metadata.creationTimestamp", None)
    assert validation.validate(kind_of(p), p) == [] and p["metadata"]["creationTimestamp"] is None


def test_unknown_fields_follow_field_validation() -> None:
    base = _with(POD, "spec.containers", [{"name": "c", "image": "b", "colour": "red"}])
    base["spec"]["bogus"] = 1
    k = kind_of(base)
    kept = copy.deepcopy(base)
    assert validation.validate(k, kept) == [] and kept["spec"]["bogus"] == 1  # no mode: kept as before
    dropped = copy.deepcopy(base)
    assert validation.validate(k, dropped, "Ignore") == []
    assert "bogus" not in dropped["spec"] and "colour" not in dropped["spec"]["containers"][0]
    warned, warnings = copy.deepcopy(base), []
    assert validation.validate(k, warned, "Warn", warnings) == []
    assert sorted(warnings) == ['unknown field "spec.bogus"', 'unknown field "spec.containers[0].colour"']
    assert "bogus" not in warned["spec"]
    strict = [str(c) for c in validation.validate(k, copy.deepcopy(base), "Strict")]
    assert strict == [
        'spec.containers[0].colour: Invalid value: unknown field "spec.containers[0].colour"',
        'spec.bogus: Invalid value: unknown field "spec.bogus"',
    ]
    # Fields the project keeps as written (volume sources, VM fields) are not unknown.
    v = _with(POD, "spec.volumes", [{"name": "v", "nfs": {"server": "x"}}])
    assert validation.validate(k, v, "Strict") == [] and v["spec"]["volumes"][0]["nfs"]


def test_error_list_is_capped_and_values_are_cut() -> None:
    p = _with(POD, "metadata.labels", {f"k{i}": i for i in range(1000)})
    got = validation.validate(kind_of(p), p)
    assert len(got) == 101 and "too many errors" in got[-1].message
    p = _with(
        POD, "spec.containers", [{"name": "c", "image": "b", "resources": {"limits": {"cpu": "x" * 10**6}}}]
    )
    (c,) = validation.validate(kind_of(p), p)
    assert len(str(c)) < 300


def _leaves(o: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(o, dict):
        for k, v in o.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from _leaves(v, (*path, i))
    if path:
        yield path, o


def _wrong(v: Any) -> list[Any]:
    if isinstance(v, bool):
        return ["yes", 1]
    if isinstance(v, int | float):
        return [True, [v]]
    if isinstance(v, str):
        return [True, {"x": v}]
    if isinstance(v, list):
        return [7, "x", {"a": 1}]
    return [7, "x", [1]]


def _set(o: Any, path: tuple[Any, ...], value: Any) -> None:
    for p in path[:-1]:
        o = o[p]
    o[path[-1]] = value


def _mutations() -> Iterator[Any]:
    for where, doc in DOCS:
        for path, v in _leaves(doc):
            if path in (("apiVersion",), ("kind",)):
                continue
            for bad in _wrong(v):
                yield pytest.param(doc, path, bad, id=f"{where}:{'.'.join(map(str, path))}={bad!r}")


@pytest.mark.parametrize(("doc", "path", "bad"), list(_mutations()))
def test_type_mutated_manifests_are_invalid(doc: dict[str, Any], path: tuple[Any, ...], bad: Any) -> None:
    """Every field of every example with a wrong-typed value: a cause at or above that field, no crash."""
    o = copy.deepcopy(doc)
    _set(o, path, bad)
    k = kind_of(doc)
    validation.default(k, o)
    got = validation.validate(k, o)
    if not got:
        # Only values a preserve-unknown-fields object keeps as written may pass.
        pytest.skip("kept as written (x-kubernetes-preserve-unknown-fields)")
    assert all(c.field and c.message for c in got)
