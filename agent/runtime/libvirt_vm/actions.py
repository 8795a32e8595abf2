"""VM actions (the ``Action`` kind's operations) as the libvirt runtime performs them.

One handler per operation of :data:`~ctl.types.actions.ACTION_OPERATIONS`, in :data:`HANDLERS`;
each gets the runtime, the pod's :class:`~agent.runtime.libvirt_vm.state.PodState`, its domain
and the action's parameters, and returns the Action status fields (results or ``error``). The
runtime's ``action`` holds the pod's lock and saves the state afterwards.

* ``reboot``: an ACPI reboot; for a kernel image, a hard reset when the guest's ready banner does
  not appear on the console within ``reboot_timeout`` (a guest still booting ignores ACPI).
* ``snapshot`` / ``restore``: a kernel+initramfs guest has no disk, and QEMU's internal snapshots
  need a qcow2 disk to hold the VM state while libvirt 9.0 cannot revert external ones. So its
  snapshot is a memory-state save file (``virDomainSave`` then ``virDomainRestore``, about a second
  of pause for the tiny image) and restore is ``virDomainRestore`` of that file. Disk-image guests
  use internal snapshots of their qcow2 overlay, which include disk and memory.
* ``stop`` / ``start``: power the VM off (ACPI, then destroy after the grace period) or on, and
  record an override of ``powerSpec`` that lasts until the pod's ``powerSpec`` changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid as uuidlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import libvirt

from agent.runtime.libvirt_vm.domain import destroy_quietly, observe
from agent.runtime.libvirt_vm.state import BLOCKED, PAUSED, RUNNING, SHUTOFF, PodState
from ctl.images.vm_image import VMImageError, resolve_vm_image
from ctl.types.actions import ACTION_OPERATIONS
from ctl.types.meta import now_rfc3339

if TYPE_CHECKING:
    from agent.runtime.libvirt_vm.runtime import LibvirtRuntime

Handler = Callable[["LibvirtRuntime", PodState, libvirt.virDomain, dict[str, Any]], Awaitable[dict[str, Any]]]


def console_has(path: Path, offset: int, needle: bytes) -> bool:
    """Whether ``needle`` was written to the console log after ``offset``."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return needle in f.read()
    except OSError:
        return False


async def reboot(
    rt: LibvirtRuntime, st: PodState, dom: libvirt.virDomain, params: dict[str, Any]
) -> dict[str, Any]:
    state, _, _ = await asyncio.to_thread(observe, dom)
    if state not in (RUNNING, BLOCKED):
        return {"error": "reboot needs a running virtual machine", "rebootSuccessful": False}
    if rt.is_test:
        await asyncio.to_thread(dom.reboot, 0)
        rt._console_note(st["uid"], f"[test:///default] domain rebooted at {now_rfc3339()}")
        rt._console_note(st["uid"], rt._fake_boot_text(st))
    else:
        await asyncio.to_thread(_reboot_real, rt, st, dom)
    st["restartCount"] += 1
    st["startedAt"] = now_rfc3339()
    return {"rebootSuccessful": True}


def _reboot_real(rt: LibvirtRuntime, st: PodState, dom: libvirt.virDomain) -> None:
    """Graceful ACPI reboot; if the guest shows no sign of rebooting in time, a hard reset."""
    console = rt.console_path(st["uid"])
    offset = console.stat().st_size if console.exists() else 0
    banner = b""
    if st["kind"] == "kernel":
        with contextlib.suppress(VMImageError):
            meta = resolve_vm_image(rt.data_dir, st["image"]).meta
            # the ready banner: the guest has booted *and* handles ACPI again
            banner = str(meta.get("readyBanner") or meta.get("bootBanner") or "").encode()
    try:
        dom.reboot(libvirt.VIR_DOMAIN_REBOOT_ACPI_POWER_BTN)
    except libvirt.libvirtError:
        dom.reset(0)
        return
    if not banner:
        return
    deadline = time.monotonic() + rt.reboot_timeout
    while time.monotonic() < deadline:
        if console_has(console, offset, banner):
            return
        time.sleep(0.2)
    dom.reset(0)
    deadline = time.monotonic() + rt.reboot_timeout
    while time.monotonic() < deadline and not console_has(console, offset, banner):
        time.sleep(0.2)


async def snapshot(
    rt: LibvirtRuntime, st: PodState, dom: libvirt.virDomain, params: dict[str, Any]
) -> dict[str, Any]:
    state, _, _ = await asyncio.to_thread(observe, dom)
    if state not in (RUNNING, BLOCKED, PAUSED):
        return {"error": "snapshot needs a running or paused virtual machine"}
    snap_id = params.get("snapshotID") or params.get("snapshotName")  # the name the user asked for
    if snap_id and (
        not isinstance(snap_id, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", snap_id)
    ):
        return {"error": f"invalid snapshot name {snap_id!r}: letters, digits, '.', '_' and '-', at most 63"}
    if snap_id and any(s["id"] == snap_id for s in st["snapshots"]):
        return {"error": f"snapshot {snap_id!r} already exists"}
    snap_id = snap_id or f"snap-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuidlib.uuid4().hex[:6]}"
    rec: dict[str, Any] = {"id": snap_id, "time": now_rfc3339()}
    if st["kind"] == "disk":
        await asyncio.to_thread(
            dom.snapshotCreateXML, f"<domainsnapshot><name>{snap_id}</name></domainsnapshot>", 0
        )
        rec["kind"] = "internal"
    else:
        sdir = rt._pod_dir(st["uid"]) / "snapshots"
        sdir.mkdir(parents=True, exist_ok=True)
        path = sdir / f"{snap_id}.save"
        await asyncio.to_thread(_save_and_continue, rt, dom, path, state == PAUSED)
        rec.update(kind="save", file=str(path))
    st["snapshots"] = [*st["snapshots"], rec]
    rt._console_note(st["uid"], f"[test:///default] snapshot {snap_id} taken at {now_rfc3339()}")
    return {"snapshotID": snap_id}


def _save_and_continue(rt: LibvirtRuntime, dom: libvirt.virDomain, path: Path, paused: bool) -> None:
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
    dom.save(str(path))
    _restore_file(rt, dom, path, xml, paused)


def _restore_file(
    rt: LibvirtRuntime, dom: libvirt.virDomain, path: Path, persistent_xml: str, paused: bool
) -> None:
    conn = rt._connection()
    try:
        conn.restoreFlags(str(path), None, libvirt.VIR_DOMAIN_SAVE_PAUSED if paused else 0)
    except libvirt.libvirtError as e:
        if "unsupported flags" not in str(e):
            raise
        conn.restore(str(path))  # the test driver knows no flags
        if paused:
            conn.lookupByUUIDString(dom.UUIDString()).suspend()
    # The test driver forgets that the domain was persistent; define it again if so.
    restored = conn.lookupByUUIDString(dom.UUIDString())
    if not restored.isPersistent():
        conn.defineXML(persistent_xml)


async def restore(
    rt: LibvirtRuntime, st: PodState, dom: libvirt.virDomain, params: dict[str, Any]
) -> dict[str, Any]:
    snaps = st["snapshots"]
    want = params.get("snapshotID") or params.get("snapshotId") or params.get("snapshotName")
    rec = next((s for s in snaps if s["id"] == want), None) if want else (snaps[-1] if snaps else None)
    if rec is None:
        return {
            "error": f"snapshot {want!r} not found" if want else "the virtual machine has no snapshot",
            "restoreSuccessful": False,
        }
    paused = (st["override"] or {}).get("power", st["powerSpec"]) == "Paused"
    if rec["kind"] == "internal":
        snap = await asyncio.to_thread(dom.snapshotLookupByName, rec["id"], 0)
        flags = (
            libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED
            if paused
            else libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING
        )
        await asyncio.to_thread(dom.revertToSnapshot, snap, flags)
    else:
        path = Path(rec["file"])
        if not path.exists():
            return {"error": f"snapshot file of {rec['id']} is missing", "restoreSuccessful": False}
        await asyncio.to_thread(_restore_from, rt, dom, path, paused)
    st["everStarted"] = True
    st["stoppedByUs"] = False
    st["shutdownRequestedAt"] = None
    rt._console_note(st["uid"], f"[test:///default] restored snapshot {rec['id']} at {now_rfc3339()}")
    return {"restoreSuccessful": True, "snapshotID": rec["id"]}


def _restore_from(rt: LibvirtRuntime, dom: libvirt.virDomain, path: Path, paused: bool) -> None:
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
    destroy_quietly(dom)
    with contextlib.suppress(libvirt.libvirtError):
        if dom.hasManagedSaveImage(0):
            dom.managedSaveRemove(0)
    _restore_file(rt, dom, path, xml, paused)


async def stop(
    rt: LibvirtRuntime, st: PodState, dom: libvirt.virDomain, params: dict[str, Any]
) -> dict[str, Any]:
    st["override"] = {"power": "Shutdown", "powerSpec": st["powerSpec"]}
    grace = float(params.get("gracePeriodSeconds", rt.shutdown_grace))
    state, ms, _ = await asyncio.to_thread(observe, dom)
    if state == SHUTOFF:
        if ms:
            await asyncio.to_thread(dom.managedSaveRemove, 0)
        st["stoppedByUs"] = True
        return {}
    st["stoppedByUs"] = True
    st.d["stoppedAt"] = now_rfc3339()
    await asyncio.to_thread(_shutdown_running, dom, grace)
    st["shutdownRequestedAt"] = None
    rt._console_note(st["uid"], f"[test:///default] domain stopped at {now_rfc3339()}")
    return {}


def _shutdown_running(dom: libvirt.virDomain, grace: float) -> None:
    if dom.state(0)[0] == PAUSED:
        dom.resume()
    with contextlib.suppress(libvirt.libvirtError):
        dom.shutdown()
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and dom.isActive():
        time.sleep(0.1)
    destroy_quietly(dom)


async def start(
    rt: LibvirtRuntime, st: PodState, dom: libvirt.virDomain, params: dict[str, Any]
) -> dict[str, Any]:
    st["override"] = {"power": "Running", "powerSpec": st["powerSpec"]}
    state, _, _ = await asyncio.to_thread(observe, dom)
    if state == PAUSED:
        await asyncio.to_thread(dom.resume)
    elif state == SHUTOFF:
        await asyncio.to_thread(rt._start, dom, st)
    return {}


HANDLERS: dict[str, Handler] = {
    "reboot": reboot,
    "snapshot": snapshot,
    "restore": restore,
    "stop": stop,
    "start": start,
}
assert set(HANDLERS) == set(ACTION_OPERATIONS), "every Action operation needs a VM handler"
