"""A real guest: the tiny image under ``qemu:///system`` (QEMU TCG here, KVM where it works).

One VM pod goes through the whole life the issue asks for: it boots and its serial console shows the
user data it was given, goes active/running, reboots (restartCount 1), is snapshotted and restored,
paused, suspended and resumed, shut down through ``powerSpec`` (ACPI, the guest powers off by itself),
and is destroyed and undefined on delete. A second test checks the destroy-after-grace path with a
guest that ignores the power button (a powerSpec Shutdown issued while it is paused at boot).
Skipped with a reason when not root or libvirtd cannot be started.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import libvirt
import pytest

from agent.runtime.base import PodRuntimeStatus
from agent.runtime.libvirt_daemon import LibvirtdUnavailable, ensure_libvirtd, probe_kvm
from agent.runtime.libvirt_vm import LibvirtRuntime
from tests.helpers import eventually, spawned
from tests.vm.conftest import PUBLIC_KEY, make_vm_pod

URI = "qemu:///system"
pytestmark = [pytest.mark.e2e, pytest.mark.root]

USER_DATA = b"#!/bin/sh\necho user-data-ran-$((6*7))\n"


@pytest.fixture()
async def rt(vm_data_dir: Path) -> AsyncIterator[LibvirtRuntime]:
    if os.geteuid() != 0:
        pytest.skip("real VMs need root (libvirtd, qemu:///system)")
    try:
        await asyncio.to_thread(ensure_libvirtd, URI)
    except LibvirtdUnavailable as e:
        pytest.skip(f"libvirtd unavailable: {e}")
    r = LibvirtRuntime(URI, vm_data_dir, f"e2e-{os.getpid()}", shutdown_grace=20.0)
    await r.start()
    try:
        yield r
    finally:
        await r.remove_orphans(set())
        await r.close()


async def wait_for(rt: LibvirtRuntime, pod: dict, state: str, timeout: float = 30.0) -> PodRuntimeStatus:
    async def reached() -> PodRuntimeStatus | None:
        s = await rt.sync_pod(pod)
        return s if s.vm_status is not None and s.vm_status["state"] == state else None

    return await eventually(reached, timeout, 0.2, f"the VM to reach {state!r}")


async def wait_console(
    rt: LibvirtRuntime, uid: str, needle: str, count: int = 1, timeout: float = 60.0
) -> str:
    path = rt.console_path(uid)

    def console() -> str:
        return path.read_text(errors="replace") if path.exists() else ""

    return await eventually(
        lambda: (text := console()).count(needle) >= count and text,
        timeout,
        0.1,
        f"the console to show {needle!r} x{count}",
        diag=lambda: console()[-2000:],
    )


def domain_of(rt: LibvirtRuntime, uid: str) -> libvirt.virDomain | None:
    for d in rt._connection().listAllDomains(0):
        if uid in d.XMLDesc(0):
            return d
    return None


async def test_vm_pod_lifecycle_on_qemu(rt: LibvirtRuntime) -> None:
    pod = make_vm_pod("e2e", user_data=USER_DATA, script="echo script-ran")
    uid = pod["metadata"]["uid"]
    t0 = time.monotonic()
    s = await rt.sync_pod(pod)
    assert s.vm_status is not None and (s.vm_status["state"], s.vm_status["powerState"]) == (
        "active",
        "running",
    )
    text = await wait_console(rt, uid, "=== centaurus tiny VM: ready ===")
    boot = time.monotonic() - t0
    print(f"\nboot to ready banner: {boot:.2f}s ({rt._virt_type})")
    assert "user-data-ran-42" in text  # the user data was delivered *and* executed by the guest
    assert "=== user-data begin ===\n#!/bin/sh" in text.replace("\r\n", "\n")
    assert PUBLIC_KEY in text and "script-ran" in text
    assert "hostname: e2e" in text
    logs = b""
    async for chunk in await rt.logs(uid):
        logs += chunk
    assert b"user-data-ran-42" in logs
    dom = domain_of(rt, uid)
    assert dom is not None and dom.isActive() and dom.isPersistent()
    assert s.containers[0].state == "running" and s.containers[0].ready

    # an agent restart: a fresh runtime adopts the running guest without rebooting it
    r2 = LibvirtRuntime(URI, rt.data_dir, rt.node_name)
    await r2.start()
    try:
        assert [p.uid for p in await r2.list_pods()] == [uid]
        s2 = await r2.sync_pod(pod)
        assert s2.vm_status is not None and s2.vm_status["state"] == "active"
        assert s2.vm_status["virtualMachineId"] == s.vm_status["virtualMachineId"]
    finally:
        await r2.close()
    await asyncio.sleep(0.5)
    assert rt.console_path(uid).read_text().count("booting ===") == 1

    # reboot: the guest boots again (second banner), restartCount 1
    r = await rt.action(uid, "reboot", {})
    assert r == {"complete": True, "rebootSuccessful": True}
    await wait_console(rt, uid, "=== centaurus tiny VM: booting ===", count=2)
    s = await rt.sync_pod(pod)
    assert s.vm_status is not None and s.vm_status["restartCount"] == 1 and s.vm_status["state"] == "active"
    assert s.containers[0].restart_count == 1

    # snapshot (memory-state save) keeps it running; restore brings back that state
    snap = await rt.action(uid, "snapshot", {})
    assert "error" not in snap, snap
    assert (await wait_for(rt, pod, "active")).vm_status is not None
    booted = rt.console_path(uid).read_text().count("booting ===")
    r = await rt.action(uid, "restore", {"snapshotID": snap["snapshotID"]})
    assert r["restoreSuccessful"] is True, r
    s = await wait_for(rt, pod, "active")
    assert s.vm_status is not None and s.vm_status["powerState"] == "running"
    dom = domain_of(rt, uid)
    assert dom is not None and dom.isPersistent()
    await asyncio.sleep(0.5)
    assert rt.console_path(uid).read_text().count("booting ===") == booted  # restored, not rebooted

    # pause, suspend (managed save), resume
    pod["spec"]["virtualMachine"]["powerSpec"] = "Paused"
    s = await wait_for(rt, pod, "paused")
    assert s.vm_status is not None and s.vm_status["powerState"] == "paused" and not s.vm_status["ready"]
    pod["spec"]["virtualMachine"]["powerSpec"] = "Suspended"
    s = await wait_for(rt, pod, "suspended")
    assert dom.hasManagedSaveImage(0) == 1 and not dom.isActive()
    pod["spec"]["virtualMachine"]["powerSpec"] = "Running"
    s = await wait_for(rt, pod, "active")
    assert s.vm_status is not None and s.vm_status["powerState"] == "running" and s.vm_status["ready"]

    # shutdown through powerSpec: ACPI power button, the guest powers itself off well within the grace
    pod["spec"]["virtualMachine"]["powerSpec"] = "Shutdown"
    t1 = time.monotonic()
    s = await wait_for(rt, pod, "stopped", timeout=15)
    assert time.monotonic() - t1 < 15
    assert s.vm_status is not None and s.vm_status["powerState"] == "shutdown"
    await wait_console(rt, uid, "reboot: Power down")
    assert s.vm_status["restartCount"] == 1

    # delete: domain destroyed and undefined, files gone
    pod["spec"]["virtualMachine"]["powerSpec"] = "Running"
    await wait_for(rt, pod, "active")
    await rt.kill_pod(uid, grace_seconds=0)
    assert domain_of(rt, uid) is None
    assert not (rt.data_dir / "vms" / uid).exists()
    assert await rt.list_pods() == []


async def test_shutdown_destroys_after_grace_when_guest_ignores_acpi(rt: LibvirtRuntime) -> None:
    pod = make_vm_pod("stubborn", power="Paused")
    pod["spec"]["terminationGracePeriodSeconds"] = 2
    uid = pod["metadata"]["uid"]
    await wait_for(rt, pod, "paused")
    dom = domain_of(rt, uid)
    assert dom is not None
    # Shut down a guest that has not booted far enough to handle ACPI: the runtime resumes it, presses
    # the power button, and destroys it when the 2 s grace period is over.
    pod["spec"]["virtualMachine"]["powerSpec"] = "Shutdown"
    t0 = time.monotonic()
    await rt.sync_pod(pod)
    await eventually(lambda: not dom.isActive(), 10, 0.1, "the domain to be destroyed after the grace period")
    elapsed = time.monotonic() - t0
    assert elapsed >= 1.9, f"destroyed before the grace period was over ({elapsed:.2f}s)"
    assert "Power down" not in rt.console_path(uid).read_text(errors="replace")  # killed, not powered off
    s = await wait_for(rt, pod, "stopped", timeout=5)
    assert s.vm_status is not None and s.vm_status["powerState"] == "shutdown"
    await rt.kill_pod(uid, grace_seconds=0)
    assert domain_of(rt, uid) is None


def test_ensure_libvirtd_is_idempotent_and_kvm_probe_is_cached(vm_data_dir: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    try:
        ensure_libvirtd(URI)
    except LibvirtdUnavailable as e:
        pytest.skip(f"libvirtd unavailable: {e}")
    # counted, not timed (the timings: benchmarks/runtime_costs_bench.py)
    with spawned() as started:
        ensure_libvirtd(URI)  # already answering: no new daemons
    assert started == [], f"ensure_libvirtd started {started} although libvirtd answers"
    kernel = vm_data_dir / "images" / "vm" / "cirros-tiny" / "latest" / "vmlinuz"
    with spawned() as probing:
        first = probe_kvm(kernel, tmp_path)
    assert isinstance(first, bool)
    assert len(probing) == 1 and "qemu-system" in probing[0], probing  # /dev/kvm is there: it boots once
    cached = json.loads((tmp_path / "kvm-probe.json").read_text())
    assert cached["kvm"] is first
    with spawned() as again:
        assert probe_kvm(kernel, tmp_path) is first
    assert again == [], f"the cached probe started {again}"
