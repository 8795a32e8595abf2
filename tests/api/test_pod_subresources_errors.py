"""Bad input on the paths that reach past the store: the Action API, log/exec proxying, protobuf bodies.

Each case checks the Status the server answers (code, reason, a message that says what to
fix) and that nothing was stored.
"""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Http, pod, status_of

PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE06F3UcPpyaRGZAVr2fzYTwR0mNFAwj8mJiZrlPnqdK t@c"


def vm_pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"virtualMachine": {"name": "vm", "image": "cirros-tiny:latest", "publicKey": PUBKEY}},
    }


def bind(http: Http, ns: str, name: str, node: str) -> None:
    body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name}, "target": {"name": node}}
    r = http.post(f"/api/v1/namespaces/{ns}/pods/{name}/binding", body)
    assert r.status_code == 201, r.text


def actions(http: Http, ns: str) -> list[dict[str, Any]]:
    r = http.get(f"/api/v1/namespaces/{ns}/actions")
    assert r.status_code == 200
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def test_action_api_bad_input(http: Http, ns: str) -> None:
    pods = f"/api/v1/namespaces/{ns}/pods"
    assert http.post(pods, vm_pod("vm1")).status_code == 201
    act = {"kind": "CustomAction", "apiVersion": "v1", "operation": "reboot"}
    # not scheduled yet
    r = http.post(f"{pods}/vm1/action", act)
    assert (
        r.status_code == 409
        and status_of(r)["reason"] == "Conflict"
        and "not scheduled" in status_of(r)["message"]
    )
    bind(http, ns, "vm1", "node-a")
    # unknown operation
    r = http.post(f"{pods}/vm1/action", {**act, "operation": "explode"})
    st = status_of(r)
    assert r.status_code == 400 and st["reason"] == "BadRequest" and "reboot" in st["message"]
    # a container pod has no actions
    assert http.post(pods, pod("plain")).status_code == 201
    bind(http, ns, "plain", "node-a")
    r = http.post(f"{pods}/plain/action", act)
    assert r.status_code == 400 and "virtual machine" in status_of(r)["message"]
    # wrong method, missing pod
    assert http.get(f"{pods}/vm1/action").status_code == 405
    assert http.post(f"{pods}/nope/action", act).status_code == 404
    assert actions(http, ns) == []
    # a good one creates exactly one Action naming the node, pod and operation
    r = http.post(f"{pods}/vm1/action", {**act, "operation": "snapshot"})
    assert r.status_code == 201, r.text
    ok = r.json()
    assert ok["kind"] == "Status" and ok["status"] == "Success"
    name = ok["details"]["name"]
    [a] = actions(http, ns)
    assert a["metadata"]["name"] == name and name.startswith("snapshot-")
    assert (
        a["spec"]["nodeName"] == "node-a"
        and a["spec"]["podName"] == "vm1"
        and a["spec"]["operation"] == "snapshot"
    )


def test_action_created_directly_needs_node_and_operation(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/actions"
    body = {
        "apiVersion": "v1",
        "kind": "Action",
        "metadata": {"name": "a1"},
        "spec": {"podName": "p", "operation": "reboot"},
    }
    r = http.post(path, body)
    st = status_of(r)
    assert r.status_code == 422 and st["reason"] == "Invalid" and "spec.nodeName" in st["message"]
    body["spec"] = {"nodeName": "n", "podName": "p", "operation": "dance"}
    r = http.post(path, body)
    assert r.status_code == 422 and "spec.operation" in status_of(r)["message"]
    assert actions(http, ns) == []


def test_log_and_exec_proxy_bad_input(http: Http, ns: str) -> None:
    pods = f"/api/v1/namespaces/{ns}/pods"
    assert http.post(pods, pod("p1")).status_code == 201
    # not scheduled: nothing to read
    r = http.get(f"{pods}/p1/log")
    assert r.status_code == 400 and "not scheduled" in status_of(r)["message"]
    # a command that is not a list of strings
    for bad in ({"command": "ls"}, {"command": []}, {"command": [1, 2]}, {}):
        r = http.post(f"{pods}/p1/exec", bad)
        assert r.status_code == 400 and "command" in status_of(r)["message"], bad
    # bound to a node that never registered
    bind(http, ns, "p1", "ghost-node")
    r = http.get(f"{pods}/p1/log")
    assert r.status_code == 404 and "ghost-node" in status_of(r)["message"]
    # a registered node without an agent endpoint
    assert (
        http.post(
            "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "quiet-node"}}
        ).status_code
        == 201
    )
    assert http.post(pods, pod("p2")).status_code == 201
    bind(http, ns, "p2", "quiet-node")
    r = http.post(f"{pods}/p2/exec", {"command": ["true"]})
    assert r.status_code == 503 and status_of(r)["reason"] == "ServiceUnavailable"


def _field(num: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (numbers and lengths below 128 here)."""
    return bytes([num << 3 | 2, len(payload)]) + payload


def test_protobuf_bodies_that_cannot_be_decoded_are_415_and_nothing_is_stored(http: Http, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    ct = "application/vnd.kubernetes.protobuf"
    # a kind the decoder does not know (a PriorityClass), in a well-formed envelope
    type_meta = _field(1, b"scheduling.k8s.io/v1") + _field(2, b"PriorityClass")
    raw = _field(1, _field(1, b"r1"))  # metadata.name
    envelope = b"k8s\x00" + _field(1, type_meta) + _field(2, raw)
    r = http.post(path, data=envelope, ct=ct)
    st = status_of(r)
    assert (
        r.status_code == 415
        and st["reason"] == "UnsupportedMediaType"
        and "application/json" in st["message"]
    )
    # no magic, and a truncated envelope
    for body in (b"\x0a\x02hi", b"k8s\x00\x0a\x7f"):
        r = http.post(path, data=body, ct=ct)
        assert r.status_code == 415 and status_of(r)["reason"] == "UnsupportedMediaType", body
    assert http.get(path).json()["items"] == []
    # the same envelope carrying a ConfigMap is understood
    type_meta = _field(1, b"v1") + _field(2, b"ConfigMap")
    raw = _field(1, _field(1, b"pb")) + _field(2, _field(1, b"k") + _field(2, b"v"))
    r = http.post(path, data=b"k8s\x00" + _field(1, type_meta) + _field(2, raw), ct=ct)
    assert r.status_code == 201, r.text
    got = http.get(f"{path}/pb").json()
    assert got["kind"] == "ConfigMap" and got["data"] == {"k": "v"}
