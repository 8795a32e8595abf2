"""The CLI's printers survive malformed objects: a wrong type in any field is ``<invalid>``, not a traceback.

Objects already in the store may predate schema validation or have been written straight
into it. Each case puts one such object through the same functions ``get``, ``describe``
and ``status`` print with, next to a well-formed object whose output must stay exact (so
the tolerance cannot hide by printing ``<invalid>`` everywhere).
"""

from __future__ import annotations

from typing import Any

import pytest

from ctl.cli import output
from ctl.cli.cluster_cmd import node_summary
from ctl.cli.describe_cmd import describe_object
from ctl.types import kinds
from ctl.types.kinds import Kind


def kind(word: str) -> Kind:
    k = kinds.resolve(word)
    assert k is not None
    return k


GOOD_NODE = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {"name": "good", "labels": {"zone": "a"}, "creationTimestamp": "2020-01-01T00:00:00Z"},
    "status": {
        "conditions": [{"type": "Ready", "status": "True"}],
        "nodeInfo": {"kubeletVersion": "v1.32", "containerRuntimeVersion": "runc"},
        "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
    },
}

# One wrong type in each field the node columns read.
BAD_NODES: list[dict[str, Any]] = [
    {"metadata": {"name": "c7"}, "status": {"conditions": 7}},
    {"metadata": {"name": "cstr"}, "status": {"conditions": ["Ready"]}},
    {"metadata": {"name": "st"}, "status": 7},
    {"metadata": {"name": "addr"}, "status": {"addresses": [None, 3]}},
    {"metadata": {"name": "info"}, "status": {"nodeInfo": "x"}},
    {"metadata": {"name": "ts", "creationTimestamp": 7}},
    {"metadata": {"name": "ts2", "creationTimestamp": "yesterday"}},
    {"metadata": {"name": "lbl", "labels": ["a", "b"]}},
    {"metadata": {"name": 5}},
    {"metadata": "not a map"},
    {"metadata": {"name": "spec"}, "spec": {"unschedulable": {"a": 1}}, "status": {"conditions": []}},
]

BAD_PODS: list[dict[str, Any]] = [
    {"metadata": {"name": "p1"}, "status": {"containerStatuses": 7}},
    {"metadata": {"name": "p2"}, "status": {"containerStatuses": [None]}, "spec": {"containers": 3}},
    {"metadata": {"name": "p3"}, "status": {"containerStatuses": [{"restartCount": "many"}]}},
    {"metadata": {"name": "p4"}, "status": {"containerStatuses": [{"state": {"waiting": "x"}}]}},
    {"metadata": {"name": "p5", "deletionTimestamp": ["x"]}, "spec": []},
]


def test_good_node_prints_exactly() -> None:
    k = kind("nodes")
    lines = output.table(k, [GOOD_NODE], wide=True, show_labels=True).splitlines()
    assert lines[0].split() == [
        "NAME",
        "STATUS",
        "ROLES",
        "AGE",
        "VERSION",
        "INTERNAL-IP",
        "RUNTIME",
        "LABELS",
    ]
    cells = lines[1].split()
    assert cells[:2] == ["good", "Ready"] and cells[-4:] == ["v1.32", "10.0.0.1", "runc", "zone=a"]
    assert output.INVALID not in lines[1]


@pytest.mark.parametrize("wide", [False, True])
def test_malformed_nodes_in_a_table(wide: bool) -> None:
    k = kind("nodes")
    text = output.table(k, [GOOD_NODE, *BAD_NODES], wide=wide, show_labels=True)
    lines = text.splitlines()
    assert len(lines) == 2 + len(BAD_NODES)
    assert output.INVALID not in lines[1]  # the good node is untouched by its neighbours
    by_name = {ln.split()[0]: ln for ln in lines[2:]}
    assert output.INVALID in by_name["c7"] and "Ready" not in by_name["c7"]
    assert output.INVALID in by_name["cstr"]
    assert output.INVALID in by_name["lbl"]  # the LABELS cell
    assert output.INVALID in by_name["ts"] and "<unknown>" in by_name["ts2"]  # AGE
    if wide:
        assert output.INVALID in by_name["addr"] and by_name["info"].split()[1] == "Unknown"
    # a number as name prints as the number; metadata that is not a map has no valid name
    assert "5" in by_name and output.INVALID in by_name


@pytest.mark.parametrize("fmt", ["name", "json", "yaml"])
def test_malformed_nodes_in_other_formats(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    output.emit(kind("nodes"), [GOOD_NODE, *BAD_NODES], fmt)
    out = capsys.readouterr().out
    if fmt == "name":
        assert out.splitlines()[:2] == ["node/good", "node/c7"]
        assert "node/<invalid>" in out.splitlines()
    else:
        assert '"conditions": 7' in out or "conditions: 7" in out  # shown as stored


def test_malformed_pods_in_a_table() -> None:
    k = kind("pods")
    lines = output.table(k, BAD_PODS, wide=True, show_namespace=True).splitlines()
    assert len(lines) == 1 + len(BAD_PODS)
    for ln in lines[1:5]:
        assert output.INVALID in ln, ln
    assert "Terminating" in lines[5]  # a spec that is a list reads as empty; the pod still prints


def test_every_kind_survives_garbage_in_every_top_level_field() -> None:
    garbage: list[Any] = [7, "x", [1], {"a": {"b": None}}, True, None]
    for k in kinds.KINDS:
        for g in garbage:
            obj = {"metadata": {"name": "o", "labels": g}, "spec": g, "status": g, "data": g, "type": g}
            for wide in (False, True):
                assert "o" in output.table(k, [obj], wide=wide, show_labels=True)
            assert describe_object(k, obj).startswith("Name:         o")


def test_describe_good_and_malformed() -> None:
    k = kind("secrets")
    good = {
        "metadata": {
            "name": "s",
            "namespace": "default",
            "labels": {"a": "1", "b": "2"},
            "ownerReferences": [{"kind": "Deployment", "name": "web"}],
        },
        "data": {"k": "c2VjcmV0"},
    }
    d = describe_object(k, good)
    assert "Labels:       a=1\n              b=2" in d
    assert "Controlled By: Deployment/web" in d and "k: <8 bytes>" in d and "c2VjcmV0" not in d
    bad = {
        "metadata": {
            "name": "s",
            "labels": "a=1",
            "annotations": [1],
            "ownerReferences": 7,
            "creationTimestamp": {"t": 1},
            "uid": ["u"],
        },
        "data": {"k": 7, "j": "eA=="},
    }
    d = describe_object(k, bad)
    assert "Labels:       <invalid>" in d and "Annotations:  <invalid>" in d
    assert "Controlled By: <invalid>" in d and "UID:          <invalid>" in d
    assert "k: <invalid>" in d and "j: <4 bytes>" in d and "(<unknown> ago)" in d
    assert "<invalid>" in describe_object(k, {"metadata": {"name": "s"}, "data": ["x"]})
    assert describe_object(kind("nodes"), {"metadata": 3}).startswith("Name:         <invalid>")


def test_status_node_summary() -> None:
    assert node_summary([GOOD_NODE, GOOD_NODE]) == "2/2 ready"
    assert node_summary([GOOD_NODE, *BAD_NODES]) == f"1/{1 + len(BAD_NODES)} ready"
    assert node_summary([7, None, "x"]) == "0/3 ready"
    assert node_summary({"items": []}) == ""


def test_one_output_vocabulary() -> None:
    assert output.check_format("wide") == "wide"
    assert output.check_format("text", output.PACKET_FORMATS) == "text"
    for fmt, allowed in (
        ("xml", output.OBJECT_FORMATS),
        ("wide", output.DATA_FORMATS),
        ("name", output.PACKET_FORMATS),
    ):
        with pytest.raises(Exception) as e:
            output.check_format(fmt, allowed)
        msg = str(e.value)
        assert "\n" not in msg and f"output format {fmt!r}" in msg and ",".join(allowed) in msg
