"""VM pods and the Action API through the agent, on libvirt's ``test:///default`` driver.

A real agent subprocess (hollow container runtime, libvirt VM runtime on the in-process test driver)
runs a VM pod to Running with ``virtualMachineStatus``, then performs v1 Action objects naming its
node -- reboot, snapshot, restore, stop, start -- and writes their results to the Action status.
Actions naming another node are left alone; actions on an unknown pod or with an unknown operation
complete with an error.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ctl.client import Client
from tests.agent.conftest import AgentProcess, wait_for
from tests.cluster import ApiServerProcess

NODE = "vm-node"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE06F3UcPpyaRGZAVr2fzYTwR0mNFAwj8mJiZrlPnqdK tester@centaurus"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServerProcess, AgentProcess]]:
    try:
        import libvirt  # noqa: F401

        from agent.runtime.libvirt_vm import LibvirtRuntime  # noqa: F401
        from ctl.images.vm_image import build_default_vm_images
    except ImportError as e:
        pytest.skip(f"the libvirt VM runtime is not available: {e}")
    d: Path = tmp_path_factory.mktemp("vmagent")
    os.chmod(d, 0o755)
    try:
        build_default_vm_images(d / "data")
    except Exception as e:  # noqa: BLE001 - any build failure means the host lacks kernel/busybox
        pytest.skip(f"cannot build the tiny VM image here: {e}")
    api = ApiServerProcess(d / "api").start()
    agent = AgentProcess(
        [
            "--server",
            api.url,
            "--node-name",
            NODE,
            "--runtime",
            "hollow",
            "--vm-runtime-uri",
            "test:///default",
            "--data-dir",
            str(d / "data"),
            "--endpoint-port",
            "0",
        ],
        d / "agent.log",
    ).start()
    try:
        yield api, agent
    finally:
        agent.stop()
        api.stop()


@pytest.fixture()
async def client(cluster: tuple[ApiServerProcess, AgentProcess]) -> AsyncIterator[Client]:
    c = cluster[0].client()
    yield c
    await c.close()


def vm_pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "virtualMachine": {
                "name": "vm",
                "image": "cirros-tiny:latest",
                "publicKey": KEY,
                "userData": base64.b64encode(b"#!/bin/sh\necho hi\n").decode(),
                "resources": {"limits": {"cpu": "1", "memory": "128Mi"}},
            }
        },
    }


async def _act(
    c: Client, name: str, op: str, pod: str = "vm1", node: str = NODE, **extra: Any
) -> dict[str, Any]:
    return await c.create(
        {
            "apiVersion": "v1",
            "kind": "Action",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "podName": pod, "operation": op, **extra},
        }
    )


async def _done(c: Client, name: str) -> dict[str, Any] | None:
    a = await c.get("actions", name)
    return a if (a.get("status") or {}).get("complete") else None


async def test_vm_pod_and_actions(cluster: tuple[ApiServerProcess, AgentProcess], client: Client) -> None:
    log = cluster[1].log
    p = await client.create(vm_pod("vm1"))
    await client.bind(p, NODE)

    async def vm_running() -> dict | None:
        x = await client.get("pods", "vm1")
        vs = x["status"].get("virtualMachineStatus") or {}
        return x if x["status"].get("phase") == "Running" and vs.get("powerState") == "running" else None

    x = await wait_for(vm_running, 30, what="VM pod Running", log=log)
    vs = x["status"]["virtualMachineStatus"]
    assert vs["state"] == "active" and vs["name"] == "vm" and vs["virtualMachineId"]
    assert {c["type"]: c["status"] for c in x["status"]["conditions"]}["Ready"] == "True"
    restarts = vs["restartCount"]

    # the real entry point: POST pods/NAME/action creates the Action, the agent performs it
    r = await client.request(
        "POST",
        "/api/v1/namespaces/default/pods/vm1/action",
        {"kind": "CustomAction", "apiVersion": "v1", "operation": "reboot"},
    )
    reboot = r["details"]["name"]
    a = await wait_for(lambda: _done(client, reboot), 30, what="reboot action complete", log=log)
    assert a["status"]["rebootSuccessful"] is True and not a["status"].get("error")
    assert a["spec"]["nodeName"] == NODE and a["spec"]["podID"] == x["metadata"]["uid"]

    async def restarted() -> bool:
        vs = (await client.get("pods", "vm1"))["status"]["virtualMachineStatus"]
        return vs["restartCount"] == restarts + 1

    await wait_for(restarted, 20, what="restartCount after reboot", log=log)

    await _act(client, "snap-1", "snapshot")
    a = await wait_for(lambda: _done(client, "snap-1"), 30, what="snapshot action complete", log=log)
    snap = a["status"]["snapshotID"]
    assert snap and not a["status"].get("error")

    await _act(client, "restore-1", "restore", snapshotID=snap)
    a = await wait_for(lambda: _done(client, "restore-1"), 30, what="restore action complete", log=log)
    assert a["status"]["restoreSuccessful"] is True and a["status"]["snapshotID"] == snap

    await _act(client, "stop-1", "stop", gracePeriodSeconds=0)
    await wait_for(lambda: _done(client, "stop-1"), 30, what="stop action complete", log=log)

    async def power(state: str) -> bool:
        vs = (await client.get("pods", "vm1"))["status"].get("virtualMachineStatus") or {}
        return vs.get("powerState") == state

    await wait_for(lambda: power("shutdown"), 20, what="VM powered off in pod status", log=log)
    await _act(client, "start-1", "start")
    await wait_for(lambda: _done(client, "start-1"), 30, what="start action complete", log=log)
    await wait_for(lambda: power("running"), 20, what="VM running again in pod status", log=log)


async def test_action_errors_and_other_nodes(
    cluster: tuple[ApiServerProcess, AgentProcess], client: Client
) -> None:
    log = cluster[1].log
    # a container pod on the same node: its runtime has no actions
    p = await client.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "plain", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }
    )
    await client.bind(p, NODE)

    async def plain_running() -> bool:
        return (await client.get("pods", "plain"))["status"].get("phase") == "Running"

    await wait_for(plain_running, 20, what="container pod Running", log=log)
    await _act(client, "on-container", "reboot", pod="plain")
    a = await wait_for(
        lambda: _done(client, "on-container"), 20, what="action on a container pod complete", log=log
    )
    assert "does not support action" in a["status"]["error"]
    await _act(client, "no-pod", "reboot", pod="missing")
    a = await wait_for(lambda: _done(client, "no-pod"), 20, what="action on missing pod complete", log=log)
    assert "not running on node" in a["status"]["error"]
    # an action for another node is not this agent's business
    await _act(client, "elsewhere", "reboot", node="some-other-node")
    import asyncio

    await asyncio.sleep(2)
    assert not (await client.get("actions", "elsewhere")).get("status", {}).get("complete")
