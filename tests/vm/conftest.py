"""Fixtures for the VM tests: a VM image store with the tiny image, and VM pod objects."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from ctl.images.vm_image import build_default_vm_images

PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE06F3UcPpyaRGZAVr2fzYTwR0mNFAwj8mJiZrlPnqdK tester@centaurus"
)


@pytest.fixture(scope="session")
def vm_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding cirros-tiny:latest (built once per session; skip if the host cannot build it)."""
    d = tmp_path_factory.mktemp("vmdata")
    os.chmod(d, 0o755)
    try:
        build_default_vm_images(d)
    except Exception as e:  # noqa: BLE001 - any build failure means the host lacks kernel/busybox
        pytest.skip(f"cannot build the tiny VM image here: {e}")
    return d


def make_vm_pod(
    name: str = "vm1",
    *,
    power: str | None = "Running",
    user_data: bytes | None = b"#!/bin/sh\necho hello-from-user-data\n",
    image: str = "cirros-tiny:latest",
    uid: str | None = None,
    namespace: str = "default",
    tenant: str = "system",
    restart_policy: str | None = None,
    script: str | None = None,
    memory: str = "128Mi",
) -> dict[str, Any]:
    vm: dict[str, Any] = {
        "name": name,
        "image": image,
        "publicKey": PUBLIC_KEY,
        "resources": {"limits": {"cpu": "1", "memory": memory}},
    }
    if power is not None:
        vm["powerSpec"] = power
    if user_data is not None:
        vm["userData"] = base64.b64encode(user_data).decode()
    if script is not None:
        vm["cloudInitUserDataScript"] = script
    spec: dict[str, Any] = {"virtualMachine": vm, "nodeName": "n1"}
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{name}-pod",
            "namespace": namespace,
            "tenant": tenant,
            "uid": uid or str(uuid.uuid4()),
        },
        "spec": spec,
    }
