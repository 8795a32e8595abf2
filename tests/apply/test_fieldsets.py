"""Field sets (FieldsV1 trees), merge shapes and the managedFields bookkeeping, in process."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ctl.types import fieldsets as fs
from ctl.types import kinds, managedfields
from ctl.types.fieldshapes import ATOMIC, LIST_MAP, MAP, SET, STRUCT, shape_for
from ctl.types.kinds import Kind
from ctl.types.schema import definitions


def kind(api_version: str, plural: str) -> Kind:
    k = kinds.by_resource(api_version, plural)
    assert k is not None
    return k


POD, DEPLOY, CM = kind("v1", "pods"), kind("apps/v1", "deployments"), kind("v1", "configmaps")


def test_set_algebra_keeps_the_wire_form() -> None:
    a = {"f:spec": {"f:replicas": {}, "f:paused": {}}, "f:metadata": {"f:labels": {".": {}, "f:app": {}}}}
    b = {"f:spec": {"f:replicas": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}
    assert fs.intersection(a, b) == b
    assert fs.difference(a, b) == {"f:spec": {"f:paused": {}}, "f:metadata": {"f:labels": {}}}
    assert fs.union(b, {"f:spec": {"f:paused": {}}}) == {
        "f:spec": {"f:replicas": {}, "f:paused": {}},
        **{"f:metadata": b["f:metadata"]},
    }
    assert fs.difference(a, a) == {}
    assert list(fs.paths(b)) == [["f:metadata", "f:labels", "f:app"], ["f:spec", "f:replicas"]]
    assert fs.path_string(["f:spec", 'k:{"containerPort":80,"protocol":"TCP"}', "f:name"]) == (
        '.spec[containerPort=80,protocol="TCP"].name'
    )
    assert fs.path_string(["f:metadata", "f:finalizers", 'v:"x"']) == '.metadata.finalizers[="x"]'
    assert fs.is_tree(a) and not fs.is_tree({"f:x": 1}) and not fs.is_tree([])


def test_merge_shapes_come_from_the_schema_annotations() -> None:
    pod = shape_for(POD)
    spec = pod.child("spec")
    assert spec.kind == STRUCT
    containers = spec.child("containers")
    assert containers.kind == LIST_MAP and containers.keys == ("name",)
    ports = containers.item().child("ports")
    assert ports.keys == ("containerPort", "protocol") and ports.key_defaults == {"protocol": "TCP"}
    assert containers.item().child("command").kind == ATOMIC
    assert pod.child("metadata").child("labels").kind == MAP
    assert pod.child("metadata").child("finalizers").kind == SET
    assert pod.child("status").child("conditions").keys == ("type",)  # every conditions list
    assert shape_for(DEPLOY).child("spec").child("selector").kind == ATOMIC
    # and the OpenAPI documents publish the same annotations
    c = definitions()["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert c["x-kubernetes-list-type"] == "map" and c["x-kubernetes-list-map-keys"] == ["name"]


def test_value_set_and_compare() -> None:
    shape = shape_for(POD)
    pod = {
        "metadata": {"labels": {"a": "1"}},
        "spec": {
            "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}], "args": ["x"]}]
        },
    }
    s = fs.value_set(pod, shape)
    assert s == {
        "f:metadata": {"f:labels": {"f:a": {}}},
        "f:spec": {
            "f:containers": {
                'k:{"name":"c"}': {
                    ".": {},
                    "f:name": {},
                    "f:image": {},
                    "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}},
                    "f:args": {},
                }
            }
        },
    }
    new = copy.deepcopy(pod)
    new["spec"]["containers"][0]["image"] = "j"
    new["spec"]["containers"].append({"name": "d", "image": "k"})
    del new["metadata"]["labels"]
    changed, removed = fs.compare(pod, new, shape)
    assert changed == {
        "f:spec": {
            "f:containers": {
                'k:{"name":"c"}': {"f:image": {}},
                'k:{"name":"d"}': {".": {}, "f:name": {}, "f:image": {}},
            }
        }
    }
    assert removed == {"f:metadata": {"f:labels": {".": {}, "f:a": {}}}}
    with pytest.raises(fs.ItemKeyError):
        fs.value_set({"spec": {"containers": [{"image": "x"}]}}, shape, strict=True)
    # not strict (updates): an unkeyable list is owned as one field
    assert fs.value_set({"spec": {"containers": [{"image": "x"}]}}, shape) == {"f:spec": {"f:containers": {}}}


def cm(data: dict[str, str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": "c", "namespace": "n"}
    if labels is not None:
        md["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data}


def test_apply_prunes_only_what_nobody_else_owns() -> None:
    live = managedfields.apply(CM, None, cm({"a": "1", "b": "2"}), "one", False, "", "t1")
    assert live is not None
    live = managedfields.apply(CM, live, cm({"b": "2", "c": "3"}), "two", False, "", "t2")
    assert live is not None and live["data"] == {"a": "1", "b": "2", "c": "3"}
    live = managedfields.apply(CM, live, cm({}), "one", False, "", "t3")
    assert live is not None and live["data"] == {"b": "2", "c": "3"}  # b is still two's
    again = managedfields.apply(CM, live, cm({}), "one", False, "", "t4")
    assert again is None  # nothing would change
    with pytest.raises(managedfields.ApplyConflict) as e:
        managedfields.apply(CM, live, cm({"b": "9"}), "one", False, "", "t5")
    assert e.value.conflicts[0][1] == [".data.b"]
    forced = managedfields.apply(CM, live, cm({"b": "9"}), "one", True, "", "t5")
    assert forced is not None and forced["data"]["b"] == "9"
    by = {e["manager"]: e for e in forced["metadata"]["managedFields"]}
    assert by["one"]["fieldsV1"] == {"f:data": {"f:b": {}}} and by["two"]["fieldsV1"] == {
        "f:data": {"f:c": {}}
    }


def test_update_manager_cap_merges_the_oldest_into_ancient_changes() -> None:
    obj = cm({"k0": "v"})
    managedfields.record_write(CM, None, obj, None, "m0", "", "2024-01-01T00:00:00Z")
    for i in range(1, 14):
        new = copy.deepcopy(obj)
        new["data"][f"k{i}"] = "v"
        managedfields.record_write(
            CM, obj, new, new["metadata"]["managedFields"], f"m{i}", "", f"2024-01-01T00:00:{i:02d}Z"
        )
        obj = new
    names = [e["manager"] for e in obj["metadata"]["managedFields"]]
    assert len(names) == managedfields.MAX_UPDATE_MANAGERS and "ancient-changes" in names
    ancient = next(e for e in obj["metadata"]["managedFields"] if e["manager"] == "ancient-changes")
    assert {"f:k0", "f:k1", "f:k2", "f:k3", "f:k4"} <= set(ancient["fieldsV1"]["f:data"])
