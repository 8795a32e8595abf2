"""Every validation rule of VM pods (``ctl.types.vm_validation``), one error message at a time."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from ctl.types.vm_validation import (
    defaults,
    is_vm_pod,
    parse_quantity,
    validate_virtual_machine,
    vm_resources,
)
from tests.vm.conftest import PUBLIC_KEY

P = "spec.virtualMachine"
MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


def pod(**vm: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "vm1", "image": "cirros-tiny:latest", "publicKey": PUBLIC_KEY}
    base.update(vm)
    return {
        "metadata": {"name": "p"},
        "spec": {"virtualMachine": {k: v for k, v in base.items() if v is not None}},
    }


def test_valid_minimal_and_full() -> None:
    assert validate_virtual_machine(pod()) == []
    full = pod(
        keyPairName="my-key",
        userData=base64.b64encode(b"x" * 65535).decode(),
        cloudInitUserDataScript="echo hi",
        powerSpec="Suspended",
        imagePullPolicy="IfNotPresent",
        resources={"requests": {"cpu": "500m", "memory": "64Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
    )
    assert validate_virtual_machine(full) == []
    assert validate_virtual_machine(pod(publicKey=None, keyPairName="kp")) == []
    containers = {"spec": {"containers": [{"name": "c", "image": "busybox:latest"}]}}
    assert validate_virtual_machine(containers) == []  # container pods are not this function's business


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        ("not a pod", "pod: must be an object"),
        ({"spec": []}, "spec: must be an object"),
        ({"spec": {}}, "spec: one of containers or virtualMachine is required"),
        ({"spec": {"containers": []}}, "spec: one of containers or virtualMachine is required"),
        (
            {
                "spec": {
                    "containers": [{"name": "c", "image": "busybox"}],
                    "virtualMachine": pod()["spec"]["virtualMachine"],
                }
            },
            "spec: containers and virtualMachine are mutually exclusive; a pod runs either containers or one virtual machine",
        ),
        (
            {"spec": {"initContainers": [{"name": "i"}], "virtualMachine": pod()["spec"]["virtualMachine"]}},
            "spec.initContainers: not allowed in a virtual machine pod",
        ),
        ({"spec": {"virtualMachine": "vm"}}, f"{P}: must be an object"),
        (pod(name=None), f"{P}.name: required"),
        (pod(name=""), f"{P}.name: required"),
        (pod(name="Bad_Name"), f"{P}.name: 'Bad_Name' must be a DNS label"),
        (pod(name="a" * 64), f"{P}.name: '{'a' * 64}' must be a DNS label"),
        (pod(image=None), f"{P}.image: required"),
        (pod(image=""), f"{P}.image: required"),
        (pod(image="Ubuntu Latest"), f"{P}.image: 'Ubuntu Latest' is not a valid image reference"),
        (pod(image=7), f"{P}.image: 7 is not a valid image reference"),
        (pod(publicKey=None), f"{P}: one of keyPairName or publicKey is required"),
        (
            pod(publicKey=None, keyPairName="Not Valid"),
            f"{P}.keyPairName: 'Not Valid' must be a DNS subdomain name",
        ),
        (pod(publicKey="hello"), f"{P}.publicKey: must be one OpenSSH public key line"),
        (pod(publicKey="ssh-ed25519 !!!notbase64"), f"{P}.publicKey: must be one OpenSSH public key line"),
        (
            pod(publicKey="ssh-rsa " + PUBLIC_KEY.split()[1]),
            f"{P}.publicKey: must be one OpenSSH public key line",
        ),
        (
            pod(publicKey=PUBLIC_KEY + "\n" + PUBLIC_KEY),
            f"{P}.publicKey: must be one OpenSSH public key line",
        ),
        (pod(publicKey=["k"]), f"{P}.publicKey: must be a string"),
        (pod(userData="not base64!!"), f"{P}.userData: must be base64-encoded"),
        (pod(userData=12), f"{P}.userData: must be a base64-encoded string"),
        (
            pod(userData=base64.b64encode(b"x" * 65536).decode()),
            f"{P}.userData: must be at most 65535 bytes (got 65536)",
        ),
        (pod(cloudInitUserDataScript=["echo"]), f"{P}.cloudInitUserDataScript: must be a string"),
        (
            pod(cloudInitUserDataScript="é" * 40000),
            f"{P}.cloudInitUserDataScript: must be at most 65535 bytes (got 80000)",
        ),
        (
            pod(powerSpec="Off"),
            f"{P}.powerSpec: unsupported value 'Off' (allowed: Running, Paused, Shutdown, Suspended)",
        ),
        (pod(powerSpec="running"), f"{P}.powerSpec: unsupported value 'running'"),
        (pod(imagePullPolicy="Sometimes"), f"{P}.imagePullPolicy: unsupported value 'Sometimes'"),
        (pod(powerstate="Running"), f"{P}.powerstate: unknown field (allowed: name, image"),
        (pod(resources="big"), f"{P}.resources: must be an object with requests and/or limits"),
        (pod(resources={"max": {}}), f"{P}.resources.max: unknown field (allowed: requests, limits)"),
        (
            pod(resources={"limits": ["cpu"]}),
            f"{P}.resources.limits: must be a map of resource name to quantity",
        ),
        (
            pod(resources={"limits": {"gpu": 1}}),
            f"{P}.resources.limits.gpu: unsupported resource for a virtual machine",
        ),
        (pod(resources={"limits": {"cpu": "lots"}}), f"{P}.resources.limits.cpu: invalid quantity 'lots'"),
        (pod(resources={"limits": {"cpu": True}}), f"{P}.resources.limits.cpu: invalid quantity True"),
        (pod(resources={"limits": {"cpu": "0"}}), f"{P}.resources.limits.cpu: must be greater than 0"),
        (pod(resources={"limits": {"cpu": "65"}}), f"{P}.resources.limits.cpu: must be at most 64"),
        (
            pod(resources={"limits": {"memory": "16Mi"}}),
            f"{P}.resources.limits.memory: must be at least 32Mi",
        ),
        (
            pod(resources={"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}),
            f"{P}.resources.requests.memory: must be less than or equal to limits.memory",
        ),
        (
            pod(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}}),
            f"{P}.resources.requests.cpu: must be less than or equal to limits.cpu",
        ),
    ],
)
def test_each_error(p: Any, expected: str) -> None:
    errs = validate_virtual_machine(p)
    assert any(e.startswith(expected) for e in errs), errs
    for e in errs:
        assert "\n" not in e and ": " in e  # one line, starts with a field path


def test_all_errors_reported_at_once() -> None:
    errs = validate_virtual_machine(
        {"spec": {"containers": [{"name": "c"}], "virtualMachine": {"powerSpec": "Off", "userData": "%%"}}}
    )
    assert len(errs) == 6, errs  # exclusive, name, image, key, userData, powerSpec


def test_userdata_limit_is_on_decoded_bytes_and_whitespace_is_allowed() -> None:
    b64 = base64.b64encode(b"y" * 65535).decode()
    wrapped = "\n".join(b64[i : i + 76] for i in range(0, len(b64), 76))
    assert validate_virtual_machine(pod(userData=wrapped)) == []


def test_defaults_fill_power_spec_only_for_vm_pods() -> None:
    p = pod()
    out = defaults(p)
    assert out is p and p["spec"]["virtualMachine"]["powerSpec"] == "Running"
    p2 = pod(powerSpec="Paused")
    assert defaults(p2)["spec"]["virtualMachine"]["powerSpec"] == "Paused"
    c = {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    assert defaults(copy.deepcopy(c)) == c
    assert defaults({"spec": None}) == {"spec": None}
    assert is_vm_pod(pod()) and not is_vm_pod(c)


def test_quantities_and_vm_resources() -> None:
    assert parse_quantity("128Mi") == 128 * 2**20
    assert parse_quantity("1.5") == parse_quantity("1500m")
    assert parse_quantity("1e3") == 1000 and parse_quantity("2G") == 2 * 10**9
    with pytest.raises(ValueError):
        parse_quantity("1.5x")
    assert vm_resources({}) == (1, 128)
    assert vm_resources({"resources": {"limits": {"cpu": "1500m", "memory": "1Gi"}}}) == (2, 1024)
    assert vm_resources({"resources": {"requests": {"cpu": "250m", "memory": "100M"}}}) == (1, 96)


@pytest.mark.parametrize("name", ["vm-pod.yaml", "vm-deployment.yaml", "mixed-namespace.yaml"])
def test_example_manifests_are_valid(name: str) -> None:
    docs = [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]
    pods = []
    for d in docs:
        if d["kind"] == "Pod":
            pods.append(d)
        elif d["kind"] == "Deployment":
            assert d["apiVersion"] == "apps/v1"
            pods.append(
                {"metadata": d["spec"]["template"]["metadata"], "spec": d["spec"]["template"]["spec"]}
            )
    assert pods
    for p in pods:
        assert validate_virtual_machine(p) == [], (name, p["metadata"])
        if is_vm_pod(p):
            ud = base64.b64decode(p["spec"]["virtualMachine"]["userData"])
            assert ud.startswith(b"#!/bin/sh\necho"), ud
    if name == "mixed-namespace.yaml":
        assert {d["kind"] for d in docs} == {"Namespace", "Pod"}
        assert sum(is_vm_pod(p) for p in pods) == 1 and len(pods) == 2
