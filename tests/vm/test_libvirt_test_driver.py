"""The libvirt VM runtime against libvirt's mock driver (``test:///default``): fast, no guest runs.

Covers every powerSpec transition, guest-initiated power-off with each restart policy, every action,
adoption of domains by a fresh runtime instance, orphan removal, console logs, and disk-image VMs
(internal snapshots). The real-QEMU path is in ``test_qemu_e2e.py``.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from agent.runtime.base import NotSupportedError, PodRuntimeStatus
from agent.runtime.libvirt_vm import META_NS, LibvirtRuntime, domain_name
from ctl.images.vm_image import import_vm_disk_image
from tests.vm.conftest import PUBLIC_KEY, make_vm_pod

URI = "test:///default"


@pytest.fixture()
async def rt(vm_data_dir: Path) -> AsyncIterator[LibvirtRuntime]:
    r = LibvirtRuntime(URI, vm_data_dir, f"node-{uuid.uuid4().hex[:6]}", shutdown_grace=2.0)
    await r.start()
    try:
        yield r
    finally:
        await r.remove_orphans(set())
        await r.close()


def vmst(s: PodRuntimeStatus) -> tuple[str, str]:
    assert s.vm_status is not None
    return s.vm_status["state"], s.vm_status["powerState"]


def raw_domain(r: LibvirtRuntime, uid: str) -> libvirt.virDomain:
    doms = [d for d in r._connection().listAllDomains(0) if uid in d.XMLDesc(0)]
    assert len(doms) == 1, f"expected exactly one domain for {uid}, found {len(doms)}"
    return doms[0]


async def read_logs(r: LibvirtRuntime, uid: str, **kw: Any) -> str:
    out = b""
    async for chunk in await r.logs(uid, **kw):
        out += chunk
    return out.decode()


async def test_create_runs_and_reports_active_running(rt: LibvirtRuntime) -> None:
    pod = make_vm_pod("web")
    s = await rt.sync_pod(pod)
    assert vmst(s) == ("active", "running")
    assert s.vm_status is not None
    assert s.vm_status["name"] == "web" and s.vm_status["image"] == "cirros-tiny:latest"
    assert s.vm_status["ready"] is True and s.vm_status["restartCount"] == 0
    c = s.containers[0]
    assert (c.name, c.state, c.ready, c.restart_count) == ("web", "running", True, 0)
    assert c.to_k8s()["state"]["running"]["startedAt"]
    dom = raw_domain(rt, pod["metadata"]["uid"])
    assert s.vm_status["virtualMachineId"] == dom.UUIDString()
    assert c.container_id == f"libvirt://{dom.UUIDString()}"
    assert dom.name() == domain_name("system", "default", "web-pod", pod["metadata"]["uid"])
    assert dom.name().startswith("cx-system-default-web-pod-")
    assert dom.isPersistent()
    meta = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, META_NS)
    assert pod["metadata"]["uid"] in meta and rt.node_name in meta
    # level-triggered and idempotent: syncing again changes nothing and never duplicates the domain
    s2 = await rt.sync_pod(pod)
    assert vmst(s2) == ("active", "running")
    raw_domain(rt, pod["metadata"]["uid"])


async def test_paused_then_running(rt: LibvirtRuntime) -> None:
    pod = make_vm_pod()
    await rt.sync_pod(pod)
    pod["spec"]["virtualMachine"]["powerSpec"] = "Paused"
    s = await rt.sync_pod(pod)
    assert vmst(s) == ("paused", "paused")
    assert s.containers[0].state == "running" and not s.containers[0].ready
    assert raw_domain(rt, pod["metadata"]["uid"]).state()[0] == libvirt.VIR_DOMAIN_PAUSED
    pod["spec"]["virtualMachine"]["powerSpec"] = "Running"
    s = await rt.sync_pod(pod)
    assert vmst(s) == ("active", "running") and s.containers[0].ready
    assert s.vm_status is not None and s.vm_status["restartCount"] == 0


async def test_suspended_then_running_restores_managed_save(rt: LibvirtRuntime) -> None:
    pod = make_vm_pod()
    started = (await rt.sync_pod(pod)).containers[0].started_at
    pod["spec"]["virtualMachine"]["powerSpec"] = "Suspended"
    s = await rt.sync_pod(pod)
    assert vmst(s) == ("suspended", "suspended")
    assert s.containers[0].state == "terminated" and s.containers[0].reason == "Suspended"
    assert not s.finished
    dom = raw_domain(rt, pod["metadata"]["uid"])
    assert dom.hasManagedSaveImage(0) == 1
    pod["spec"]["virtualMachine"]["powerSpec"] = "Running"
    s = await rt.sync_pod(pod)
    assert vmst(s) == ("active", "running")
    assert s.containers[0].started_at == started  # resumed from memory, not rebooted
    assert dom.hasManagedSaveImage(0) == 0


async def test_shutdown_then_running(rt: LibvirtRuntime) -> None:
    pod = make_vm_pod()
    await rt.sync_pod(pod)
    pod["spec"]["virtualMachine"]["powerSpec"] = "Shutdown"
    s = await rt.sync_pod(pod)
    # the test driver powers off at once on ACPI shutdown
    assert vmst(s) == ("stopped", "shutdown")
    c = s.containers[0]
    assert (c.state, c.reason, c.exit_code, c.ready) == ("terminated", "Shutdown", 0, False)
    assert not s.finished
    s = await rt.sync_pod(pod)  # stays down
    assert vmst(s) == ("stopped", "shutdown")
    pod["spec"]["virtualMachine"]["powerSpec"] = "Running"
    s = await rt.sync_pod(pod)
    assert vmst(s) == ("active", "running")
    assert s.vm_status is not None and s.vm_status["restartCount"] == 0  # an ordered stop is not a restart


@pytest.mark.parametrize(
    ("first", "second", "expect"),
    [
        ("Paused", "Suspended", ("suspended", "suspended")),
        ("Paused", "Shutdown", ("stopped", "shutdown")),
        ("Suspended", "Shutdown", ("stopped", "shutdown")),
        ("Suspended", "Paused", ("paused", "paused")),
        ("Shutdown", "Paused", ("paused", "paused")),
        ("Shutdown", "Suspended", ("suspended", "suspended")),
    ],
)
async def test_transitions_between_non_running_states(
    rt: LibvirtRuntime, first: str, second: str, expect: tuple[str, str]
) -> None:
    pod = make_vm_pod()
    await rt.sync_pod(pod)
    pod["spec"]["virtualMachine"]["powerSpec"] = first
    await rt.sync_pod(pod)
    pod["spec"]["virtualMachine"]["powerSpec"] = second
    s = await rt.sync_pod(pod)
    assert vmst(s) == expect
    dom = raw_domain(rt, pod["metadata"]["uid"])
    if second == "Shutdown":
        assert dom.hasManagedSaveImage(0) == 0 and not dom.isActive()


@pytest.mark.parametrize(
    ("power", "expect", "active"),
    [
        ("Paused", ("paused", "paused"), True),
        ("Suspended", ("suspended", "suspended"), False),
        ("Shutdown", ("stopped", "shutdown"), False),
    ],
)
async def test_created_directly_in_power_state(
    rt: LibvirtRuntime, power: str, expect: tuple[str, str], active: bool
) -> None:
    pod = make_vm_pod(power=power)
    s = await rt.sync_pod(pod)
    assert vmst(s) == expect
    assert bool(raw_domain(rt, pod["metadata"]["uid"]).isActive()) is active


async def test_default_power_spec_is_running(rt: LibvirtRuntime) -> None:
    s = await rt.sync_pod(make_vm_pod(power=None))
    assert vmst(s) == ("active", "running")


async def test_guest_poweroff_restarts_with_restart_policy_always(rt: LibvirtRuntime) -> None:
    pod = make_vm_pod()
    await rt.sync_pod(pod)
    raw_domain(rt, pod["metadata"]["uid"]).destroy()  # the guest went away on its own
    s = await rt.sync_pod(pod)
    assert vmst(s) == ("active", "running")
    assert s.vm_status is not None and s.vm_status["restartCount"] == 1
    assert s.containers[0].restart_count == 1


async def test_guest_poweroff_with_restart_policy_never_finishes(rt: LibvirtRuntime) -> None:
    pod = make_vm_pod(restart_policy="Never")
    await rt.sync_pod(pod)
    raw_domain(rt, pod["metadata"]["uid"]).destroy()
    s = await rt.sync_pod(pod)
    assert vmst(s) == ("stopped", "shutdown")
    assert s.finished
    assert s.vm_status is not None and s.vm_status["restartCount"] == 0


async def test_missing_image_reports_error_and_defines_nothing(rt: LibvirtRuntime) -> None:
    pod = make_vm_pod(image="no-such-image:v9")
    s = await rt.sync_pod(pod)
    assert vmst(s) == ("error", "nostate")
    c = s.containers[0]
    assert c.state == "waiting" and c.reason == "ErrImagePull" and "no-such-image:v9" in c.message
    assert not [d for d in rt._connection().listAllDomains(0) if pod["metadata"]["uid"] in d.XMLDesc(0)]


async def test_actions_reboot_snapshot_restore(rt: LibvirtRuntime) -> None:
    pod = make_vm_pod()
    uid = pod["metadata"]["uid"]
    await rt.sync_pod(pod)
    r = await rt.action(uid, "reboot", {})
    assert r == {"complete": True, "rebootSuccessful": True}
    s = await rt.sync_pod(pod)
    assert vmst(s) == ("active", "running")
    assert s.vm_status is not None and s.vm_status["restartCount"] == 1
    assert s.containers[0].restart_count == 1

    snap = await rt.action(uid, "snapshot", {})
    assert snap["complete"] is True and "error" not in snap
    sid = snap["snapshotID"]
    assert sid.startswith("snap-")
    assert vmst(await rt.sync_pod(pod)) == ("active", "running")  # snapshotting keeps the VM running
    snap2 = await rt.action(uid, "snapshot", {})
    assert snap2["snapshotID"] != sid

    r = await rt.action(uid, "restore", {"snapshotID": sid})
    assert r == {"complete": True, "restoreSuccessful": True, "snapshotID": sid}
    dom = raw_domain(rt, uid)
    assert dom.isActive() and dom.isPersistent()
    r = await rt.action(uid, "restore", {})  # latest
    assert r["restoreSuccessful"] is True and r["snapshotID"] == snap2["snapshotID"]
    s = await rt.sync_pod(pod)
    assert vmst(s) == ("active", "running")
    assert s.vm_status is not None and s.vm_status["restartCount"] == 1

    bad = await rt.action(uid, "restore", {"snapshotID": "snap-nope"})
    assert bad["complete"] is True and "not found" in bad["error"] and bad["restoreSuccessful"] is False


async def test_restore_keeps_paused_power_spec(rt: LibvirtRuntime) -> None:
    pod = make_vm_pod()
    uid = pod["metadata"]["uid"]
    await rt.sync_pod(pod)
    sid = (await rt.action(uid, "snapshot", {}))["snapshotID"]
    pod["spec"]["virtualMachine"]["powerSpec"] = "Paused"
    await rt.sync_pod(pod)
    snap_paused = await rt.action(uid, "snapshot", {})  # snapshot of a paused VM keeps it paused
    assert "snapshotID" in snap_paused
    assert vmst(await rt.sync_pod(pod)) == ("paused", "paused")
    assert (await rt.action(uid, "restore", {"snapshotID": sid}))["restoreSuccessful"] is True
    assert vmst(await rt.sync_pod(pod)) == ("paused", "paused")


async def test_actions_stop_start_override_until_power_spec_changes(rt: LibvirtRuntime) -> None:
    pod = make_vm_pod()
    uid = pod["metadata"]["uid"]
    await rt.sync_pod(pod)
    assert await rt.action(uid, "stop", {}) == {"complete": True}
    s = await rt.sync_pod(pod)  # powerSpec is still Running, but the stop action is more recent
    assert vmst(s) == ("stopped", "shutdown")
    assert await rt.action(uid, "stop", {}) == {"complete": True}  # idempotent
    assert await rt.action(uid, "start", {}) == {"complete": True}
    assert vmst(await rt.sync_pod(pod)) == ("active", "running")
    # stop, then a powerSpec change: the spec wins again
    await rt.action(uid, "stop", {})
    pod["spec"]["virtualMachine"]["powerSpec"] = "Paused"
    assert vmst(await rt.sync_pod(pod)) == ("paused", "paused")
    assert await rt.action(uid, "start", {}) == {"complete": True}
    assert vmst(await rt.sync_pod(pod)) == ("active", "running")
    s = await rt.sync_pod(pod)
    assert s.vm_status is not None and s.vm_status["restartCount"] == 0


async def test_action_errors(rt: LibvirtRuntime) -> None:
    pod = make_vm_pod(power="Shutdown")
    uid = pod["metadata"]["uid"]
    await rt.sync_pod(pod)
    r = await rt.action(uid, "reboot", {})
    assert r["complete"] is True and "running" in r["error"] and r["rebootSuccessful"] is False
    r = await rt.action(uid, "snapshot", {})
    assert "running or paused" in r["error"]
    r = await rt.action(uid, "restore", {})
    assert "no snapshot" in r["error"]
    r = await rt.action(uid, "migrate", {})
    assert "unsupported VM action 'migrate'" in r["error"]
    r = await rt.action(str(uuid.uuid4()), "reboot", {})
    assert "no virtual machine" in r["error"]
    with pytest.raises(NotSupportedError):
        await rt.exec(uid, None, ["true"])


async def test_adoption_by_fresh_runtime(rt: LibvirtRuntime, vm_data_dir: Path) -> None:
    pod = make_vm_pod("adopted")
    uid = pod["metadata"]["uid"]
    await rt.sync_pod(pod)
    await rt.action(uid, "reboot", {})
    dom_uuid = raw_domain(rt, uid).UUIDString()
    # an agent restart: a new runtime instance on the same node and data dir, nothing in memory
    r2 = LibvirtRuntime(URI, vm_data_dir, rt.node_name)
    await r2.start()
    try:
        pods = await r2.list_pods()
        assert [p.uid for p in pods] == [uid]
        p = pods[0]
        assert (p.name, p.namespace, p.tenant, p.runtime) == ("adopted-pod", "default", "system", "libvirt")
        assert p.vm_status is not None
        assert p.vm_status["restartCount"] == 1 and p.vm_status["state"] == "active"
        assert p.vm_status["virtualMachineId"] == dom_uuid
        s = await r2.sync_pod(pod)
        assert vmst(s) == ("active", "running")
        assert s.vm_status is not None and s.vm_status["virtualMachineId"] == dom_uuid
        assert s.vm_status["restartCount"] == 1
        raw_domain(r2, uid)  # still exactly one domain
        assert (await r2.action(uid, "reboot", {}))["rebootSuccessful"]
        assert (await r2.sync_pod(pod)).containers[0].restart_count == 2
        # another node's runtime sees none of it
        other = LibvirtRuntime(URI, vm_data_dir, "some-other-node")
        await other.start()
        assert await other.list_pods() == []
        await other.close()
    finally:
        await r2.close()


async def test_orphan_removal_and_kill(rt: LibvirtRuntime, vm_data_dir: Path) -> None:
    keep, gone = make_vm_pod("keep"), make_vm_pod("gone")
    await rt.sync_pod(keep)
    await rt.sync_pod(gone)
    gone_uid = gone["metadata"]["uid"]
    await rt.action(gone_uid, "snapshot", {})
    pod_dir = vm_data_dir / "vms" / gone_uid
    assert (pod_dir / "console.log").exists() and list((pod_dir / "snapshots").iterdir())
    removed = await rt.remove_orphans({keep["metadata"]["uid"]})
    assert removed == [gone_uid]
    assert [p.uid for p in await rt.list_pods()] == [keep["metadata"]["uid"]]
    assert not pod_dir.exists()
    assert not [d for d in rt._connection().listAllDomains(0) if gone_uid in d.XMLDesc(0)]
    # kill_pod destroys, undefines and removes files; a second kill is a no-op
    await rt.kill_pod(keep["metadata"]["uid"])
    await rt.kill_pod(keep["metadata"]["uid"])
    assert await rt.list_pods() == []
    assert not (vm_data_dir / "vms" / keep["metadata"]["uid"]).exists()


async def test_console_logs(rt: LibvirtRuntime) -> None:
    pod = make_vm_pod(user_data=b"#cloud-config\nhostname: logs-test\n", script="echo from-script")
    uid = pod["metadata"]["uid"]
    await rt.sync_pod(pod)
    text = await read_logs(rt, uid)
    assert "=== user-data begin ===\n#cloud-config\nhostname: logs-test" in text
    assert PUBLIC_KEY in text and "from-script" in text
    assert (await read_logs(rt, uid, tail=1)).strip() == "=== centaurus tiny VM: ready ==="
    assert await read_logs(rt, uid, tail=0) == ""

    async def follow() -> str:
        got = b""
        async for chunk in await rt.logs(uid, follow=True):
            got += chunk
            if b"rebooted" in got:
                return got.decode()
        return got.decode()

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.3)
    await rt.action(uid, "reboot", {})
    followed = await asyncio.wait_for(task, 5)
    assert followed.startswith("[test:///default] domain")  # the whole console first...
    assert "rebooted" in followed  # ...then what was appended while following
    with pytest.raises(Exception, match="no virtual machine"):
        await rt.logs(str(uuid.uuid4()))


async def test_disk_image_vm_uses_overlay_config_drive_and_internal_snapshots(
    rt: LibvirtRuntime, vm_data_dir: Path, tmp_path: Path
) -> None:
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "16M"], check=True)
    img = import_vm_disk_image(vm_data_dir, "disky:1.0", base)
    assert img.kind == "disk" and img.disk_format == "qcow2"
    pod = make_vm_pod(image="disky:1.0")
    uid = pod["metadata"]["uid"]
    s = await rt.sync_pod(pod)
    assert vmst(s) == ("active", "running")
    pod_dir = vm_data_dir / "vms" / uid
    info = subprocess.run(
        ["qemu-img", "info", str(pod_dir / "disk.qcow2")], capture_output=True, text=True
    ).stdout
    assert str(img.disk) in info  # a copy-on-write overlay over the stored image
    iso = (pod_dir / "config.iso").read_bytes()
    assert b"CIDATA" in iso.upper() and b"hello-from-user-data" in iso
    xml = raw_domain(rt, uid).XMLDesc(0)
    assert "disk.qcow2" in xml and "config.iso" in xml and "<kernel>" not in xml
    sid = (await rt.action(uid, "snapshot", {}))["snapshotID"]
    assert [x.getName() for x in raw_domain(rt, uid).listAllSnapshots(0)] == [sid]
    assert (await rt.action(uid, "restore", {"snapshotID": sid}))["restoreSuccessful"] is True
    await rt.kill_pod(uid)
    assert not pod_dir.exists()


async def test_domain_names_are_unique_and_bounded() -> None:
    long = "x" * 200
    a = domain_name("t" * 50, long, long, "0123456789abcdef")
    b = domain_name("t" * 50, long, long, "fedcba9876543210")
    assert a != b and len(a) <= 100
    assert domain_name("acme", "prod", "my/pod", "abcd1234-x") == "cx-acme-prod-my_pod-abcd1234"


async def test_kill_during_shutdown_grace_and_sync_after_kill(rt: LibvirtRuntime) -> None:
    pod = make_vm_pod()
    uid = pod["metadata"]["uid"]
    await rt.sync_pod(pod)
    await rt.kill_pod(uid, grace_seconds=0)
    assert await rt.list_pods() == []
    # a sync after the pod was killed (a late event) recreates it; the agent only syncs live pods
    s = await rt.sync_pod(pod)
    assert vmst(s) == ("active", "running")


async def test_example_manifest_pod_runs(rt: LibvirtRuntime) -> None:
    import yaml

    from ctl.types.vm_validation import defaults, validate_virtual_machine

    manifest = Path(__file__).resolve().parents[2] / "manifests" / "vm-pod.yaml"
    pod = defaults(yaml.safe_load(manifest.read_text()))
    assert validate_virtual_machine(pod) == []
    pod["metadata"].update(uid=str(uuid.uuid4()), tenant="system")
    s = await rt.sync_pod(pod)
    assert vmst(s) == ("active", "running")
    text = await read_logs(rt, pod["metadata"]["uid"])
    assert 'echo "hello from a Centaurus VM pod: $(hostname)"' in text
    assert "cloudInitUserDataScript ran at boot" in text


async def test_concurrent_syncs_never_duplicate_the_domain(rt: LibvirtRuntime) -> None:
    pod = make_vm_pod()
    results = await asyncio.gather(*(rt.sync_pod(pod) for _ in range(5)))
    assert all(vmst(s) == ("active", "running") for s in results)
    raw_domain(rt, pod["metadata"]["uid"])  # exactly one
    ids = {s.vm_status["virtualMachineId"] for s in results if s.vm_status}
    assert len(ids) == 1
