"""Issue 5 end to end: VM pods on a real QEMU guest, through every real component.

One cluster for the module: ``centaurusctl init --detach --vm-runtime-uri qemu:///system`` (the
node agent starts libvirtd itself through ``ensure_libvirtd``; init builds the tiny VM image into
the cluster's data dir). A VM pod applied with the CLI is scheduled, booted by the agent under
libvirt (QEMU TCG here, KVM where it works), shows its user data on the console (``logs``), goes
Running with ``active``/``running``, reboots through the Action API (``vm reboot``: restartCount 1),
is snapshotted and restored (``vm snapshot``/``vm restore``), shuts down through ``powerSpec`` and
is destroyed and undefined on delete. A Deployment of three VM pods (``manifests/vm-deployment.yaml``)
rolls out. The last test deletes everything, runs ``down`` and checks that no domain is left.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import time
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import ROOT, E2ECluster, is_ready, require_root_runc, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.root]

URI = "qemu:///system"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE06F3UcPpyaRGZAVr2fzYTwR0mNFAwj8mJiZrlPnqdK e2e@centaurus"
USER_DATA = b"#!/bin/sh\necho e2e-user-data-ran-$((6*7)) on $(hostname)\n"


@pytest.fixture(scope="module")
def cluster(cluster_factory: Any) -> E2ECluster:
    require_root_runc()
    try:
        import libvirt  # noqa: F401
    except ImportError:
        pytest.skip("the libvirt Python binding is not installed (python3-libvirt)")
    if not shutil.which("qemu-system-x86_64") or not shutil.which("libvirtd"):
        pytest.skip("QEMU or libvirtd is not installed (./setup.sh installs them)")
    from agent.runtime.libvirt_daemon import LibvirtdUnavailable, ensure_libvirtd

    try:
        ensure_libvirtd(URI)
    except LibvirtdUnavailable as e:
        pytest.skip(f"libvirtd cannot serve {URI}: {e}")
    c: E2ECluster = cluster_factory(["--runtime", "runc", "--vm-runtime-uri", URI])
    if "VM images not built" in c.init_output:
        pytest.skip(f"the tiny VM image cannot be built here: {c.init_output}")
    assert f"VMs via {URI}" in c.init_output, c.init_output
    node = c.api.get("nodes", c.node)
    assert os.path.isdir(c.data_dir / "images" / "vm"), "init did not build the VM images into the data dir"
    assert node["metadata"]["name"] == c.node
    return c


def vm_pod(name: str, power: str = "Running") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 10,
            "virtualMachine": {
                "name": "e2evm",
                "image": "cirros-tiny:latest",
                "powerSpec": power,
                "resources": {"limits": {"cpu": "1", "memory": "128Mi"}},
                "publicKey": PUBLIC_KEY,
                "userData": base64.b64encode(USER_DATA).decode(),
                "cloudInitUserDataScript": "echo e2e-script-ran",
            },
        },
    }


def vm_status(c: E2ECluster, name: str) -> dict[str, Any]:
    p = c.pod("default", name)
    return dict(((p or {}).get("status") or {}).get("virtualMachineStatus") or {})


def console(c: E2ECluster, name: str) -> str:
    return c.ctl("logs", name, check=False).stdout


def wait_console(c: E2ECluster, name: str, needle: str, count: int = 1, timeout: float = 60) -> str:
    return wait_for(
        lambda: (t := console(c, name)).count(needle) >= count and t,
        timeout,
        f"the console of {name} to show {needle!r} x{count}",
        interval=0.5,
        diag=lambda: console(c, name)[-2000:],
    )


def wait_vm(c: E2ECluster, name: str, state: str, power: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(
        lambda: (s := vm_status(c, name)).get("state") == state and s.get("powerState") == power and s,
        timeout,
        f"VM {name} to be {state}/{power}",
        diag=lambda: repr(vm_status(c, name)),
    )


def domain(c: E2ECluster, uid: str) -> Any:
    import libvirt

    conn = libvirt.open(URI)
    try:
        for d in conn.listAllDomains(0):
            if uid in d.XMLDesc(0):
                return {"name": d.name(), "active": bool(d.isActive()), "persistent": bool(d.isPersistent())}
        return None
    finally:
        conn.close()


def action_fields(out: str) -> dict[str, str]:
    """``  complete=True, snapshotID=snap-..., ...`` -> dict."""
    line = out.strip().splitlines()[-1]
    return dict(kv.split("=", 1) for kv in line.strip().split(", ") if "=" in kv)


def test_vm_pod_lifecycle(cluster: E2ECluster) -> None:
    c = cluster
    t0 = time.monotonic()
    c.apply(vm_pod("vm1"))
    p = wait_for(lambda: (x := c.pod("default", "vm1")) and is_ready(x) and x, 90, "the VM pod to run")
    uid = p["metadata"]["uid"]
    assert p["spec"]["nodeName"] == c.node
    st = wait_vm(c, "vm1", "active", "running")
    assert st["restartCount"] == 0 and st["ready"] is True
    text = wait_console(c, "vm1", "=== centaurus tiny VM: ready ===")
    boot = time.monotonic() - t0
    # The guest received the user data and ran it: the console shows both.
    assert "=== user-data begin ===\n#!/bin/sh" in text.replace("\r\n", "\n"), text
    assert "e2e-user-data-ran-42 on e2evm" in text, text
    assert "e2e-script-ran" in text and PUBLIC_KEY in text
    d = domain(c, uid)
    assert d is not None and d["active"] and d["persistent"], d
    got = c.ctl("get", "pod", "vm1", "-o", "wide").stdout
    assert re.search(r"vm1\s+1/1\s+Running", got), got

    # Reboot through the Action API: the guest boots again, restartCount 1.
    r = c.ctl("vm", "reboot", "vm1", timeout=90)
    assert action_fields(r.stdout).get("rebootSuccessful") == "True", r.stdout
    wait_console(c, "vm1", "=== centaurus tiny VM: booting ===", count=2)
    st = wait_for(lambda: (s := vm_status(c, "vm1")).get("restartCount") == 1 and s, 30, "restartCount 1")
    assert st["state"] == "active" and st["powerState"] == "running"
    p = c.pod("default", "vm1")
    assert p is not None and p["status"]["containerStatuses"][0]["restartCount"] == 1
    wait_console(c, "vm1", "=== centaurus tiny VM: ready ===", count=2)

    # Snapshot, then restore it: the VM keeps running and is not rebooted by the restore.
    r = c.ctl("vm", "snapshot", "vm1", timeout=90)
    snap = action_fields(r.stdout).get("snapshotID", "")
    assert snap, r.stdout
    wait_vm(c, "vm1", "active", "running")
    booted = console(c, "vm1").count("booting ===")
    r = c.ctl("vm", "restore", "vm1", "--snapshot-id", snap, timeout=90)
    assert action_fields(r.stdout).get("restoreSuccessful") == "True", r.stdout
    wait_vm(c, "vm1", "active", "running")
    d = domain(c, uid)
    assert d is not None and d["active"] and d["persistent"], d
    time.sleep(1)
    assert console(c, "vm1").count("booting ===") == booted, "restore rebooted the guest"
    acts = c.ctl("get", "actions").stdout
    assert "reboot" in acts and "snapshot" in acts and "restore" in acts, acts

    # Shut down through powerSpec: the guest powers itself off (ACPI).
    off = vm_pod("vm1", power="Shutdown")
    c.apply(off)
    st = wait_vm(c, "vm1", "stopped", "shutdown", timeout=40)
    assert st["restartCount"] == 1
    wait_console(c, "vm1", "reboot: Power down", timeout=10)
    d = domain(c, uid)
    assert d is not None and not d["active"], d

    # Delete: the domain is destroyed and undefined, its files are gone.
    c.ctl("delete", "pod", "vm1", "--wait", timeout=60)
    wait_for(lambda: domain(c, uid) is None, 20, "the domain to be undefined")
    assert not (c.data_dir / "vms" / uid).exists()
    print(f"\nVM pod: boot to ready banner {boot:.1f}s after apply")


def test_vm_deployment_rolls_out(cluster: E2ECluster) -> None:
    c = cluster
    manifest = ROOT / "manifests" / "vm-deployment.yaml"
    doc = yaml.safe_load(manifest.read_text())
    t0 = time.monotonic()
    c.ctl("apply", "-f", str(manifest))
    r = c.ctl("rollout", "status", "deployment/vm-fleet", "--timeout", "120", timeout=150)
    assert "successfully rolled out" in r.stdout + r.stderr, r.stdout + r.stderr
    took = time.monotonic() - t0
    pods = c.pods("default", "app=vm-fleet")
    assert len(pods) == 3 and all(is_ready(p) for p in pods), c.describe_pods("default")
    for p in pods:
        st = p["status"]["virtualMachineStatus"]
        assert (st["state"], st["powerState"]) == ("active", "running"), st
        d = domain(c, p["metadata"]["uid"])
        assert d is not None and d["active"], d
    for p in pods:
        wait_console(c, p["metadata"]["name"], "hello from a Centaurus VM pod: vm", timeout=60)
    assert doc["spec"]["replicas"] == 3
    print(f"\n3 VM pods rolled out in {took:.1f}s")
    uids = [p["metadata"]["uid"] for p in pods]
    c.ctl("delete", "-f", str(manifest))
    wait_for(lambda: not c.pods("default", "app=vm-fleet"), 60, "the VM pods to be deleted")
    wait_for(lambda: all(domain(c, u) is None for u in uids), 30, "every fleet domain to be undefined")


def test_teardown_leaves_nothing_behind(cluster: E2ECluster) -> None:
    assert cluster.pod_uids
    cluster.teardown()
    assert not cluster.libvirt_domains()
