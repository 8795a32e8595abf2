"""The libvirt runtime itself: connection, per-pod locking, sync towards ``powerSpec``, kill, list, logs.

:class:`LibvirtRuntime` implements :class:`~agent.runtime.base.Runtime` for VM pods. ``sync_pod``
defines the domain on first sight (:mod:`~agent.runtime.libvirt_vm.prepare`, then
:mod:`~agent.runtime.libvirt_vm.domain`) and converges it towards ``powerSpec`` or the override of
the last ``stop``/``start`` action (the table in the package docstring); a graceful shutdown is an
ACPI request followed by a destroy once the grace period has passed, by a timer and on every sync.
``kill_pod`` removes the domain with its snapshots and managed save, and the pod's directory;
``list_pods`` rebuilds the view from the domains' metadata; ``logs`` serves the serial console
through :func:`agent.runtime.logs.follow_file`. Actions are in
:mod:`~agent.runtime.libvirt_vm.actions`.

Every libvirt call is blocking, so it runs in a worker thread; operations on one pod are serialised
by a per-pod lock, so the agent may call sync, actions and kill concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import libvirt

from agent.runtime.base import ExecResult, NotSupportedError, PodRuntimeStatus, Runtime, RuntimeError_
from agent.runtime.libvirt_daemon import ensure_libvirtd, probe_kvm
from agent.runtime.libvirt_vm.actions import HANDLERS
from agent.runtime.libvirt_vm.domain import destroy_quietly, domain_xml, meta_of, observe
from agent.runtime.libvirt_vm.prepare import KeyResolver, prepare
from agent.runtime.libvirt_vm.state import (
    BLOCKED,
    CRASHED,
    PAUSED,
    PMSUSPENDED,
    RUNNING,
    SHUTDOWN,
    SHUTOFF,
    PodState,
    domain_name,
)
from agent.runtime.libvirt_vm.status import pod_status
from agent.runtime.logs import follow_file
from ctl.images.vm_image import VMImage
from ctl.types.actions import ACTION_OPERATIONS
from ctl.types.meta import now_rfc3339
from ctl.types.vm_validation import DEFAULT_POWER_SPEC
from ctl.util.tasks import cancel_and_wait

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors arrive as exceptions; no stderr noise


class LibvirtRuntime(Runtime):
    """Runs VM pods as libvirt domains (see the package docstring)."""

    name = "libvirt"

    def __init__(
        self,
        uri: str = "qemu:///system",
        data_dir: Path = Path("/var/lib/centaurus"),
        node_name: str = "",
        *,
        virt_type: str = "auto",
        shutdown_grace: float = 30.0,
        reboot_timeout: float = 30.0,
        default_memory_mib: int = 128,
        key_resolver: KeyResolver | None = None,
        start_daemon: bool = True,
    ) -> None:
        self.uri = uri
        self.data_dir = Path(data_dir)
        self.node_name = node_name
        self.vm_dir = self.data_dir / "vms"
        self.virt_type_setting = virt_type
        self.shutdown_grace = shutdown_grace
        self.reboot_timeout = reboot_timeout
        self.default_memory_mib = default_memory_mib
        self.key_resolver = key_resolver
        self.start_daemon = start_daemon
        self.is_test = uri.startswith("test:")
        self._conn: libvirt.virConnect | None = None
        self._conn_lock = threading.Lock()
        self._locks: dict[str, asyncio.Lock] = {}
        self._grace_tasks: dict[str, asyncio.Task[None]] = {}
        self._virt_type: str | None = None

    # ------------------------------------------------------------------ plumbing

    async def start(self) -> None:
        self.vm_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.vm_dir, 0o711)
        if self.start_daemon and self.uri.startswith("qemu:///system"):
            await asyncio.to_thread(ensure_libvirtd, self.uri)
        await asyncio.to_thread(self._connection)

    async def close(self) -> None:
        await cancel_and_wait(list(self._grace_tasks.values()))
        self._grace_tasks.clear()
        with self._conn_lock:
            if self._conn is not None:
                with contextlib.suppress(libvirt.libvirtError):
                    self._conn.close()
                self._conn = None

    def _connection(self) -> libvirt.virConnect:
        with self._conn_lock:
            if self._conn is not None:
                try:
                    if self._conn.isAlive():
                        return self._conn
                except libvirt.libvirtError:
                    pass
                self._conn = None
            try:
                self._conn = libvirt.open(self.uri)
            except libvirt.libvirtError as e:
                raise RuntimeError_("LibvirtUnavailable", f"cannot connect to {self.uri}: {e}") from e
            return self._conn

    def _lock(self, uid: str) -> asyncio.Lock:
        lk = self._locks.get(uid)
        if lk is None:
            lk = self._locks[uid] = asyncio.Lock()
        return lk

    def _pod_dir(self, uid: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", uid or ""):
            raise RuntimeError_("InvalidUID", f"invalid pod uid {uid!r}")
        return self.vm_dir / uid

    def _state(self, uid: str) -> PodState | None:
        return PodState.load(self._pod_dir(uid) / "state.json")

    def console_path(self, uid: str) -> Path:
        return self._pod_dir(uid) / "console.log"

    def _console_note(self, uid: str, text: str) -> None:
        """Write to the console log ourselves (test driver only: no guest writes there)."""
        if not self.is_test:
            return
        p = self.console_path(uid)
        if p.parent.exists():
            with open(p, "a") as f:
                f.write(text if text.endswith("\n") else text + "\n")

    def _fake_boot_text(self, st: PodState) -> str:
        """What the tiny image prints, reproduced for the test driver (where no guest runs)."""
        try:
            return (self._pod_dir(st["uid"]) / "test-boot.txt").read_text()
        except OSError:
            return ""

    def _virt(self, image: VMImage) -> str:
        if self.is_test:
            return "test"
        if self._virt_type is None:
            if self.virt_type_setting in ("kvm", "qemu"):
                self._virt_type = self.virt_type_setting
            elif image.kernel is not None and probe_kvm(image.kernel, self.vm_dir):
                self._virt_type = "kvm"
            else:
                self._virt_type = "qemu"
        return self._virt_type

    # ------------------------------------------------------------------ domain lookup

    def _our_domains(self) -> list[tuple[libvirt.virDomain, dict[str, str]]]:
        out = []
        for dom in self._connection().listAllDomains(0):
            meta = meta_of(dom)
            if meta and meta.get("node", "") == self.node_name and meta.get("uid"):
                out.append((dom, meta))
        return out

    def _find(self, uid: str, st: PodState | None) -> libvirt.virDomain | None:
        conn = self._connection()
        if st is not None and st["domain"]:
            try:
                dom = conn.lookupByName(st["domain"])
                meta = meta_of(dom)
                if meta and meta.get("uid") == uid:
                    return dom
            except libvirt.libvirtError:
                pass
        for dom, meta in self._our_domains():
            if meta["uid"] == uid:
                return dom
        return None

    def _status(
        self, st: PodState, dom: libvirt.virDomain | None, error: RuntimeError_ | None = None
    ) -> PodRuntimeStatus:
        return pod_status(self.name, st, dom, error)

    # ------------------------------------------------------------------ sync

    async def sync_pod(self, pod: dict[str, Any]) -> PodRuntimeStatus:
        md = pod["metadata"]
        uid = md["uid"]
        vm = pod["spec"]["virtualMachine"]
        async with self._lock(uid):
            pod_dir = self._pod_dir(uid)
            st = self._state(uid) or PodState(
                pod_dir / "state.json",
                {
                    "uid": uid,
                    "name": md.get("name", ""),
                    "namespace": md.get("namespace", "default"),
                    "tenant": md.get("tenant", "system"),
                    "domain": domain_name(
                        md.get("tenant", "system"), md.get("namespace", "default"), md.get("name", ""), uid
                    ),
                    "vmName": vm.get("name", ""),
                    "image": vm.get("image", ""),
                },
            )
            power_spec = vm.get("powerSpec") or DEFAULT_POWER_SPEC
            st["powerSpec"] = power_spec
            ov = st["override"]
            if ov and ov.get("powerSpec") != power_spec:
                st["override"] = ov = (
                    None  # the pod's powerSpec changed after the action: the spec wins again
                )
            desired = ov["power"] if ov else power_spec
            dom = await asyncio.to_thread(self._find, uid, st)
            try:
                if dom is None:
                    image = await prepare(
                        pod,
                        st,
                        pod_dir,
                        data_dir=self.data_dir,
                        key_resolver=self.key_resolver,
                        is_test=self.is_test,
                    )
                    xml = domain_xml(
                        pod,
                        st,
                        image,
                        pod_dir,
                        node_name=self.node_name,
                        virt=self._virt(image),
                        is_test=self.is_test,
                        default_memory_mib=self.default_memory_mib,
                    )
                    st["kind"] = image.kind
                    dom = await asyncio.to_thread(self._connection().defineXML, xml)
                    st["error"] = ""
                    st.save()
                await self._converge(pod, st, dom, desired)
            except RuntimeError_ as e:
                st.save()
                return self._status(st, dom, e)
            except libvirt.libvirtError as e:
                st.save()
                return self._status(st, dom, RuntimeError_("LibvirtError", str(e)))
            st.save()
            return self._status(st, dom)

    def _start(self, dom: libvirt.virDomain, st: PodState, paused: bool = False) -> None:
        restoring = bool(dom.hasManagedSaveImage(0))
        try:
            dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED if paused else 0)
        except libvirt.libvirtError as e:
            if not paused or "unsupported flags" not in str(e):
                raise
            dom.create()  # the test driver has no START_PAUSED
            dom.suspend()
        if not paused and dom.state(0)[0] == PAUSED:
            dom.resume()  # a managed save taken while paused restores paused
        if not restoring or not st["startedAt"]:
            st["startedAt"] = now_rfc3339()
        st["everStarted"] = True
        st["stoppedByUs"] = False
        st["shutdownRequestedAt"] = None
        self._console_note(
            st["uid"],
            f"[test:///default] domain {'restored from managed save' if restoring else 'started'}{' paused' if paused else ''} at {now_rfc3339()}",
        )
        if not restoring and self.is_test:
            self._console_note(st["uid"], self._fake_boot_text(st))

    async def _converge(
        self, pod: dict[str, Any], st: PodState, dom: libvirt.virDomain, desired: str
    ) -> None:
        state, ms, _ = await asyncio.to_thread(observe, dom)
        uid = st["uid"]
        if desired != "Shutdown" and st["shutdownRequestedAt"] and state in (RUNNING, BLOCKED, SHUTDOWN):
            # A graceful shutdown is in flight: let it finish (or the grace timer destroy it) before acting.
            return
        if desired == "Running":
            if state in (RUNNING, BLOCKED):
                return
            if state == PAUSED:
                await asyncio.to_thread(dom.resume)
                self._console_note(uid, f"[test:///default] domain resumed at {now_rfc3339()}")
            elif state == PMSUSPENDED:
                await asyncio.to_thread(dom.pMWakeup, 0)
            elif state == CRASHED:
                await asyncio.to_thread(dom.destroy)
                st["restartCount"] += 1
                await asyncio.to_thread(self._start, dom, st)
            elif state == SHUTOFF:
                if st["everStarted"] and not ms and not st["stoppedByUs"]:
                    # The guest powered itself off (or crashed) while it should run: restartPolicy decides.
                    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
                    if policy == "Never":
                        st["error"] = "finished"
                        return
                    backoff = (
                        min(300.0, 10.0 * (2 ** max(0, st["autoRestarts"] - 1)))
                        if st["autoRestarts"]
                        else 0.0
                    )
                    if time.time() - st["lastAutoRestart"] < backoff:
                        return
                    st["autoRestarts"] += 1
                    st["lastAutoRestart"] = time.time()
                    st["restartCount"] += 1
                await asyncio.to_thread(self._start, dom, st)
        elif desired == "Paused":
            if state in (RUNNING, BLOCKED):
                await asyncio.to_thread(dom.suspend)
                self._console_note(uid, f"[test:///default] domain paused at {now_rfc3339()}")
            elif state == SHUTOFF:
                await asyncio.to_thread(self._start, dom, st, True)
        elif desired == "Suspended":
            if state in (RUNNING, BLOCKED, PAUSED):
                await asyncio.to_thread(dom.managedSave, 0)
                st["stoppedByUs"] = True
                st.d["stoppedAt"] = now_rfc3339()
                self._console_note(
                    uid, f"[test:///default] domain suspended (managed save) at {now_rfc3339()}"
                )
            elif state == SHUTOFF and not ms:
                await asyncio.to_thread(self._start, dom, st)
                await asyncio.to_thread(dom.managedSave, 0)
                st["stoppedByUs"] = True
                st.d["stoppedAt"] = now_rfc3339()
        elif desired == "Shutdown":
            if state == SHUTOFF:
                if ms:
                    await asyncio.to_thread(dom.managedSaveRemove, 0)
                st["shutdownRequestedAt"] = None
                st["stoppedByUs"] = True
                return
            await self._request_shutdown(dom, st, self._grace(pod))

    def _grace(self, pod: dict[str, Any] | None) -> float:
        g = ((pod or {}).get("spec") or {}).get("terminationGracePeriodSeconds")
        return float(g) if isinstance(g, int | float) and g >= 0 else self.shutdown_grace

    async def _request_shutdown(self, dom: libvirt.virDomain, st: PodState, grace: float) -> None:
        """ACPI shutdown now; destroy once ``grace`` seconds have passed (by a timer, and on every sync)."""
        state, _, _ = await asyncio.to_thread(observe, dom)
        uid = st["uid"]
        st["stoppedByUs"] = True
        st.d["stoppedAt"] = now_rfc3339()
        if state == PAUSED:
            await asyncio.to_thread(dom.resume)  # a paused guest cannot see the power button
        now = time.time()
        if st["shutdownRequestedAt"] is None or now - st.d.get("lastPowerButton", 0) >= 3.0:
            # Press the power button again every few seconds within the grace period: a guest that was
            # still booting (no ACPI handler yet) ignores the first press.
            if st["shutdownRequestedAt"] is None:
                st["shutdownRequestedAt"] = now
            st.d["lastPowerButton"] = now
            try:
                await asyncio.to_thread(dom.shutdown)
                self._console_note(uid, f"[test:///default] ACPI shutdown requested at {now_rfc3339()}")
            except libvirt.libvirtError:
                grace = 0
        if time.time() - st["shutdownRequestedAt"] >= grace:
            await asyncio.to_thread(destroy_quietly, dom)
            st["shutdownRequestedAt"] = None
            return
        if uid not in self._grace_tasks or self._grace_tasks[uid].done():
            delay = st["shutdownRequestedAt"] + grace - time.time()
            self._grace_tasks[uid] = asyncio.get_running_loop().create_task(self._grace_timer(uid, delay))

    async def _grace_timer(self, uid: str, delay: float) -> None:
        await asyncio.sleep(max(0.0, delay))
        async with self._lock(uid):
            st = self._state(uid)
            if st is None or st["shutdownRequestedAt"] is None:
                return
            dom = await asyncio.to_thread(self._find, uid, st)
            if dom is not None:
                await asyncio.to_thread(destroy_quietly, dom)
            st["shutdownRequestedAt"] = None
            st.save()

    # ------------------------------------------------------------------ kill / list / orphans

    async def kill_pod(self, uid: str, grace_seconds: float = 10.0) -> None:
        async with self._lock(uid):
            t = self._grace_tasks.pop(uid, None)
            if t is not None:
                t.cancel()  # not awaited: the timer waits for this very lock
            st = self._state(uid)
            dom = await asyncio.to_thread(self._find, uid, st)
            if dom is not None:
                await asyncio.to_thread(self._kill_domain, dom, grace_seconds, uid)
            pod_dir = self._pod_dir(uid)
            if pod_dir.exists():
                await asyncio.to_thread(shutil.rmtree, pod_dir, True)
        self._locks.pop(uid, None)
        self.forget_grace(uid)

    def _kill_domain(self, dom: libvirt.virDomain, grace: float, uid: str = "") -> None:
        try:
            if dom.isActive() and grace > 0 and dom.state(0)[0] in (RUNNING, BLOCKED):
                with contextlib.suppress(libvirt.libvirtError):
                    dom.shutdown()
                deadline = time.monotonic() + grace
                while time.monotonic() < self.stop_deadline(uid, deadline) and dom.isActive():
                    time.sleep(0.1)
            destroy_quietly(dom)
            for snap in dom.listAllSnapshots(0):
                with contextlib.suppress(libvirt.libvirtError):
                    snap.delete(0)
            if dom.isPersistent():
                try:
                    dom.undefineFlags(
                        libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                        | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                        | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
                    )
                except libvirt.libvirtError:
                    with contextlib.suppress(libvirt.libvirtError):
                        if dom.hasManagedSaveImage(0):
                            dom.managedSaveRemove(0)
                    dom.undefine()
        except libvirt.libvirtError as e:
            if e.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise RuntimeError_("KillFailed", f"cannot remove domain: {e}") from e

    async def list_pods(self) -> list[PodRuntimeStatus]:
        doms = await asyncio.to_thread(self._our_domains)
        out = []
        for dom, meta in doms:
            uid = meta["uid"]
            st = self._state(uid) or PodState(
                self._pod_dir(uid) / "state.json",
                {
                    "uid": uid,
                    "name": meta.get("name", ""),
                    "namespace": meta.get("namespace", ""),
                    "tenant": meta.get("tenant", ""),
                    "domain": dom.name(),
                    "vmName": meta.get("vmName", ""),
                    "image": meta.get("image", ""),
                    "everStarted": True,
                },
            )
            out.append(await asyncio.to_thread(self._status, st, dom))
        return out

    async def remove_orphans(self, live_uids: set[str], grace_seconds: float = 0.0) -> list[str]:
        """Kill every domain of this node whose pod uid is not in ``live_uids``; returns the removed uids."""
        removed = []
        for ps in await self.list_pods():
            if ps.uid not in live_uids:
                await self.kill_pod(ps.uid, grace_seconds)
                removed.append(ps.uid)
        # pod directories left without a domain (e.g. the domain was undefined by hand)
        if self.vm_dir.is_dir():
            for d in self.vm_dir.iterdir():
                if (
                    d.is_dir()
                    and d.name not in live_uids
                    and d.name not in removed
                    and (d / "state.json").exists()
                ):
                    await self.kill_pod(d.name, 0)
                    removed.append(d.name)
        return removed

    # ------------------------------------------------------------------ logs / exec / actions

    async def logs(
        self,
        uid: str,
        container: str | None = None,
        follow: bool = False,
        tail: int | None = None,
        previous: bool = False,
    ) -> AsyncIterator[bytes]:
        """The VM's serial console (one log across reboots, so ``previous`` shows the same)."""
        path = self.console_path(uid)
        if not path.parent.exists():
            raise RuntimeError_("NotFound", f"no virtual machine for pod {uid} on this node")
        return follow_file(
            path, follow=follow, tail=tail, done=lambda: not path.parent.exists(), interval=0.25
        )

    async def exec(
        self, uid: str, container: str | None, argv: list[str], timeout: float = 30.0
    ) -> ExecResult:
        raise NotSupportedError("exec is not supported for virtual machines; use the console (logs) or ssh")

    async def action(self, uid: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Perform a VM action; returns Action status fields (``complete`` plus results or ``error``)."""
        handler = HANDLERS.get(operation)
        if handler is None:
            return {
                "complete": True,
                "error": f"unsupported VM action {operation!r} (supported: {', '.join(ACTION_OPERATIONS)})",
            }
        async with self._lock(uid):
            st = self._state(uid)
            dom = await asyncio.to_thread(self._find, uid, st)
            if st is None or dom is None:
                return {"complete": True, "error": f"no virtual machine for pod {uid} on this node"}
            try:
                result = await handler(self, st, dom, params or {})
            except libvirt.libvirtError as e:
                result = {"error": f"{operation} failed: {e}"}
            except RuntimeError_ as e:
                result = {"error": str(e)}
            st.save()
            return {"complete": True, **result}
