"""The VM runtime: pods with ``spec.virtualMachine`` run as libvirt domains.

One pod is one persistent libvirt domain, named ``cx-<tenant>-<namespace>-<pod>-<uid8>`` (recognisable in
``virsh list``, unique through the uid prefix, sanitised and bounded in length). The domain XML carries a
``<centaurus:pod>`` metadata element (namespace :data:`META_NS`) with the pod's uid, name, namespace,
tenant, VM name, image and node, so a restarted agent rebuilds its view from libvirt alone
(:meth:`LibvirtRuntime.list_pods`) and a domain whose pod is gone can be found and removed.

Per-pod files live in ``DATA_DIR/vms/<uid>/``: ``state.json`` (restart count, start time, snapshots, the
last action override -- what adoption needs besides the domain itself), ``console.log``, the pod's
``initrd.img`` (the image's initramfs with a seed archive carrying user data, public key and script, see
:mod:`ctl.images.vm_image`), ``snapshots/`` and, for disk images, ``disk.qcow2`` (a copy-on-write overlay)
and ``config.iso`` (a NoCloud config drive).

URIs: ``qemu:///system`` runs real guests (KVM if :func:`probe_kvm` finds it usable, else QEMU TCG);
``test:///default`` is libvirt's in-process mock driver: every API works on in-memory domains and no guest
runs, so the whole state machine is testable in milliseconds. Under the test driver the runtime writes the
console log itself (lifecycle lines plus the user data, as the tiny image would print it).

``sync_pod`` converges the domain towards ``powerSpec`` (or towards the most recent ``stop``/``start``
action, until the pod's ``powerSpec`` changes):

==============  ================================================================================
``Running``     define + start; resume a paused domain; restore a suspended one; restart one the
                guest powered off (per ``restartPolicy``) or that crashed (``restartCount`` + 1)
``Paused``      ``virDomainSuspend`` (vCPUs stopped, memory kept)
``Suspended``   ``virDomainManagedSave`` (memory saved to disk, QEMU gone; ``Running`` restores it)
``Shutdown``    ACPI ``virDomainShutdown``; ``virDomainDestroy`` once the grace period has passed
==============  ================================================================================

Snapshots: a kernel+initramfs guest has no disk, and QEMU's internal snapshots need a qcow2 disk to
hold the VM state while libvirt 9.0 cannot revert external ones. So a snapshot is a memory-state save
file (``virDomainSave`` then ``virDomainRestore``, about a second of pause for the tiny image) and
restore is ``virDomainRestore`` of that file. Disk-image guests use internal snapshots of their qcow2
overlay (``virDomainSnapshotCreateXML``/``virDomainRevertToSnapshot``), which include disk and memory.

Every libvirt call is blocking, so it runs in a worker thread; operations on one pod are serialised by
a per-pod lock, so the agent may call sync, actions and kill concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid as uuidlib
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import libvirt

from agent.runtime.base import (
    ContainerState,
    ExecResult,
    NotSupportedError,
    PodRuntimeStatus,
    Runtime,
    RuntimeError_,
)
from agent.runtime.libvirt_daemon import ensure_libvirtd, probe_kvm
from ctl.images.vm_image import (
    VMImage,
    VMImageError,
    build_config_drive_iso,
    initrd_with_seed,
    resolve_vm_image,
    seed_cpio,
)
from ctl.types.meta import now_rfc3339
from ctl.types.vm_validation import DEFAULT_POWER_SPEC, decode_user_data, vm_resources

META_NS = "https://centaurus.io/xmlns/vm/1"
META_KEY = "centaurus"
ACTIONS = ("reboot", "snapshot", "restore", "stop", "start")

# libvirt's virDomainState values
_NOSTATE, _RUNNING, _BLOCKED, _PAUSED, _SHUTDOWN, _SHUTOFF, _CRASHED, _PMSUSPENDED = range(8)

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors arrive as exceptions; no stderr noise

KeyResolver = Callable[[str, str, str], Awaitable[str | None]]  # (tenant, namespace, keyPairName) -> key


def domain_name(tenant: str, namespace: str, name: str, uid: str) -> str:
    """The libvirt domain name of a pod: recognisable, unique (uid prefix), at most 100 characters."""

    def clean(s: str, n: int) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]", "_", s)[:n]

    return f"cx-{clean(tenant or 'system', 20)}-{clean(namespace or 'default', 24)}-{clean(name, 40)}-{clean(uid, 8)}"


class _PodState:
    """What ``state.json`` remembers about one VM pod across agent restarts."""

    FIELDS = {
        "uid": "",
        "name": "",
        "namespace": "",
        "tenant": "",
        "domain": "",
        "vmName": "",
        "image": "",
        "powerSpec": DEFAULT_POWER_SPEC,
        "restartCount": 0,
        "startedAt": None,
        "everStarted": False,
        "stoppedByUs": False,
        "shutdownRequestedAt": None,
        "override": None,  # {"power": "Shutdown"|"Running", "powerSpec": <pod powerSpec when set>}
        "lastAutoRestart": 0.0,
        "autoRestarts": 0,
        "snapshots": [],  # [{"id", "time", "kind": "save"|"internal", "file"}]
        "kind": "kernel",
        "error": "",
    }

    def __init__(self, path: Path, data: dict[str, Any] | None = None) -> None:
        self.path = path
        self.d: dict[str, Any] = {k: (list(v) if isinstance(v, list) else v) for k, v in self.FIELDS.items()}
        if data:
            self.d.update(data)

    @classmethod
    def load(cls, path: Path) -> _PodState | None:
        try:
            return cls(path, json.loads(path.read_text()))
        except (OSError, ValueError):
            return None

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.d, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def __getitem__(self, k: str) -> Any:
        return self.d[k]

    def __setitem__(self, k: str, v: Any) -> None:
        self.d[k] = v


class LibvirtRuntime(Runtime):
    """Runs VM pods as libvirt domains (see the module docstring)."""

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
        for t in self._grace_tasks.values():
            t.cancel()
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

    def _state(self, uid: str) -> _PodState | None:
        return _PodState.load(self._pod_dir(uid) / "state.json")

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

    # ------------------------------------------------------------------ domain lookup and XML

    def _meta_of(self, dom: libvirt.virDomain) -> dict[str, str] | None:
        try:
            xml = dom.XMLDesc(0)
        except libvirt.libvirtError:
            return None
        try:
            root = ET.fromstring(xml)
        except ET.ParseError:
            return None
        el = root.find(f"metadata/{{{META_NS}}}pod")
        if el is None:
            return None
        return dict(el.attrib)

    def _our_domains(self) -> list[tuple[libvirt.virDomain, dict[str, str]]]:
        out = []
        for dom in self._connection().listAllDomains(0):
            meta = self._meta_of(dom)
            if meta and meta.get("node", "") == self.node_name and meta.get("uid"):
                out.append((dom, meta))
        return out

    def _find(self, uid: str, st: _PodState | None) -> libvirt.virDomain | None:
        conn = self._connection()
        if st is not None and st["domain"]:
            try:
                dom = conn.lookupByName(st["domain"])
                meta = self._meta_of(dom)
                if meta and meta.get("uid") == uid:
                    return dom
            except libvirt.libvirtError:
                pass
        for dom, meta in self._our_domains():
            if meta["uid"] == uid:
                return dom
        return None

    def _domain_xml(self, pod: dict[str, Any], st: _PodState, image: VMImage, pod_dir: Path) -> str:
        md = pod["metadata"]
        vm = pod["spec"]["virtualMachine"]
        vcpus, mem = vm_resources(vm, self.default_memory_mib)
        mem = max(mem, int(image.meta.get("minMemoryMiB", 0)))
        virt = self._virt(image)
        meta_attrs = {
            "uid": md["uid"],
            "name": md.get("name", ""),
            "namespace": md.get("namespace", "default"),
            "tenant": md.get("tenant", "system"),
            "vmName": vm["name"],
            "image": vm["image"],
            "node": self.node_name,
            "kind": image.kind,
        }
        meta_xml = " ".join(f"{k}={quoteattr(v)}" for k, v in meta_attrs.items())
        console = pod_dir / "console.log"
        if image.kind == "kernel":
            assert image.kernel is not None
            cmdline = image.cmdline or "console=ttyS0"
            os_xml = (
                f"<kernel>{escape(str(image.kernel))}</kernel><initrd>{escape(str(pod_dir / 'initrd.img'))}</initrd>"
                f"<cmdline>{escape(cmdline)}</cmdline>"
            )
            disks = ""
        else:
            os_xml = "<boot dev='hd'/>"
            disks = (
                f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                f"<source file={quoteattr(str(pod_dir / 'disk.qcow2'))}/><target dev='vda' bus='virtio'/></disk>"
                f"<disk type='file' device='cdrom' snapshot='no'><driver name='qemu' type='raw'/>"
                f"<source file={quoteattr(str(pod_dir / 'config.iso'))}/><target dev='hdc' bus='ide'/><readonly/></disk>"
            )
        cpu = "<cpu mode='host-passthrough'/>" if virt == "kvm" else ""
        machine = "" if self.is_test else " machine='pc'"
        # qemu runs as root with no relabelling: the image store is shared by many domains and must not be
        # chowned by libvirt's DAC driver, and the data dir may sit under a 0700 parent. The agent is root anyway.
        seclabel = (
            ""
            if self.is_test
            else "<seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>"
        )
        return f"""<domain type='{virt}'>
  <name>{escape(st["domain"])}</name>
  <title>{escape(f"{meta_attrs['tenant']}/{meta_attrs['namespace']}/{meta_attrs['name']}")}</title>
  <description>Centaurus VM pod {escape(meta_attrs["uid"])} ({escape(vm["name"])}, image {escape(vm["image"])})</description>
  <metadata><{META_KEY}:pod xmlns:{META_KEY}="{META_NS}" {meta_xml}/></metadata>
  <memory unit='MiB'>{mem}</memory>
  <vcpu>{vcpus}</vcpu>
  <os><type arch='x86_64'{machine}>hvm</type>{os_xml}</os>
  <features><acpi/><apic/></features>
  {cpu}
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
  {seclabel}
  <devices>
    {disks}
    <serial type='pty'><log file={quoteattr(str(console))} append='on'/><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>"""

    # ------------------------------------------------------------------ create

    async def _prepare(self, pod: dict[str, Any], st: _PodState, pod_dir: Path) -> VMImage:
        """Resolve the image and write the pod's seed (initrd or config drive)."""
        md, vm = pod["metadata"], pod["spec"]["virtualMachine"]
        try:
            image = resolve_vm_image(self.data_dir, vm["image"])
        except VMImageError as e:
            raise RuntimeError_("ErrImagePull", str(e)) from e
        user_data = decode_user_data(vm["userData"]) if vm.get("userData") else b""
        public_key = vm.get("publicKey") or ""
        if not public_key and vm.get("keyPairName") and self.key_resolver is not None:
            public_key = (
                await self.key_resolver(
                    md.get("tenant", "system"), md.get("namespace", "default"), vm["keyPairName"]
                )
                or ""
            )
        script = vm.get("cloudInitUserDataScript") or ""
        meta = {
            "instance-id": md["uid"],
            "hostname": vm["name"],
            "pod": md.get("name", ""),
            "namespace": md.get("namespace", "default"),
            "tenant": md.get("tenant", "system"),
            "keyPairName": vm.get("keyPairName", ""),
        }
        pod_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(pod_dir, 0o700)
        if image.kind == "kernel":
            assert image.initrd is not None
            data = initrd_with_seed(image.initrd.read_bytes(), seed_cpio(user_data, public_key, script, meta))
            (pod_dir / "initrd.img").write_bytes(data)
        else:
            assert image.disk is not None
            ud = user_data or (script.encode() if script else b"")
            await asyncio.to_thread(
                build_config_drive_iso, pod_dir / "config.iso", ud, public_key, md["uid"], vm["name"]
            )
            overlay = pod_dir / "disk.qcow2"
            if not overlay.exists():
                r = await asyncio.to_thread(
                    subprocess.run,
                    [
                        "qemu-img",
                        "create",
                        "-q",
                        "-f",
                        "qcow2",
                        "-F",
                        image.disk_format,
                        "-b",
                        str(image.disk),
                        str(overlay),
                    ],
                    capture_output=True,
                    text=True,
                )
                if r.returncode != 0:
                    raise RuntimeError_("CreateDiskFailed", f"qemu-img create failed: {r.stderr.strip()}")
        if self.is_test:
            lines = ["=== centaurus tiny VM: booting ==="]
            if public_key:
                lines += ["=== public-key begin ===", public_key, "=== public-key end ==="]
            if user_data:
                lines += [
                    "=== user-data begin ===",
                    user_data.decode(errors="replace"),
                    "=== user-data end ===",
                ]
            if script:
                lines += ["=== script begin ===", script, "=== script end ==="]
            (pod_dir / "test-boot.txt").write_text(
                "\n".join([*lines, "=== centaurus tiny VM: ready ==="]) + "\n"
            )
            with open(pod_dir / "console.log", "a") as f:
                f.write(
                    f"[test:///default] domain {st['domain']} defined; the test driver runs no guest, "
                    "this log records lifecycle events\n"
                )
        return image

    # ------------------------------------------------------------------ observation

    def _observe(self, dom: libvirt.virDomain | None) -> tuple[int, bool, str]:
        if dom is None:
            return _NOSTATE, False, ""
        try:
            state, _reason = dom.state(0)
            ms = bool(dom.hasManagedSaveImage(0)) if state == _SHUTOFF else False
            return state, ms, dom.UUIDString()
        except libvirt.libvirtError:
            return _NOSTATE, False, ""

    def _status(
        self,
        pod: dict[str, Any] | None,
        st: _PodState,
        dom: libvirt.virDomain | None,
        error: RuntimeError_ | None = None,
    ) -> PodRuntimeStatus:
        state, ms, dom_uuid = self._observe(dom)
        vm_state, power = "building", "nostate"
        cs = ContainerState(name=st["vmName"], image=st["image"], restart_count=st["restartCount"])
        cs.container_id = f"libvirt://{dom_uuid}" if dom_uuid else ""
        cs.started_at = st["startedAt"]
        finished = False
        if error is not None:
            vm_state, power = "error", "nostate"
            cs.state, cs.reason, cs.message = "waiting", error.reason, str(error)
        elif dom is None:
            cs.state, cs.reason = "waiting", "ContainerCreating"
        elif state in (_RUNNING, _BLOCKED):
            vm_state, power = "active", "running"
            cs.state, cs.ready = "running", True
        elif state == _PAUSED:
            vm_state, power = "paused", "paused"
            cs.state, cs.reason = "running", "Paused"
        elif state == _SHUTDOWN:
            vm_state, power = "active", "shutdown"
            cs.state, cs.reason = "running", "ShuttingDown"
        elif state == _PMSUSPENDED:
            vm_state, power = "suspended", "suspended"
            cs.state, cs.reason = "running", "Suspended"
        elif state == _CRASHED:
            vm_state, power = "error", "crashed"
            cs.state, cs.reason, cs.exit_code = "terminated", "Crashed", 1
        elif state == _SHUTOFF and ms:
            vm_state, power = "suspended", "suspended"
            cs.state, cs.reason, cs.exit_code = "terminated", "Suspended", 0
        elif state == _SHUTOFF and (st["everStarted"] or st["stoppedByUs"] or st["powerSpec"] == "Shutdown"):
            vm_state, power = "stopped", "shutdown"
            cs.state, cs.reason, cs.exit_code = "terminated", "Shutdown", 0
            if st["error"] == "finished":
                finished = True
        elif state == _SHUTOFF:
            vm_state, power = "building", "shutdown"
            cs.state, cs.reason = "waiting", "ContainerCreating"
        if cs.state == "terminated":
            cs.finished_at = st.d.get("stoppedAt") or now_rfc3339()
        vm_status = {
            "name": st["vmName"],
            "virtualMachineId": dom_uuid,
            "image": st["image"],
            "imageId": st["image"],
            "state": vm_state,
            "powerState": power,
            "ready": cs.ready,
            "restartCount": st["restartCount"],
        }
        if cs.message:
            vm_status["message"] = cs.message
        return PodRuntimeStatus(
            uid=st["uid"],
            name=st["name"],
            namespace=st["namespace"],
            tenant=st["tenant"],
            runtime=self.name,
            containers=[cs],
            vm_status=vm_status,
            sandbox_ready=dom is not None and error is None,
            finished=finished,
            message=cs.message,
        )

    # ------------------------------------------------------------------ sync

    async def sync_pod(self, pod: dict[str, Any]) -> PodRuntimeStatus:
        md = pod["metadata"]
        uid = md["uid"]
        vm = pod["spec"]["virtualMachine"]
        async with self._lock(uid):
            pod_dir = self._pod_dir(uid)
            st = self._state(uid) or _PodState(
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
                    image = await self._prepare(pod, st, pod_dir)
                    xml = self._domain_xml(pod, st, image, pod_dir)
                    st["kind"] = image.kind
                    dom = await asyncio.to_thread(self._connection().defineXML, xml)
                    st["error"] = ""
                    st.save()
                await self._converge(pod, st, dom, desired)
            except RuntimeError_ as e:
                st.save()
                return self._status(pod, st, dom, e)
            except libvirt.libvirtError as e:
                st.save()
                return self._status(pod, st, dom, RuntimeError_("LibvirtError", str(e)))
            st.save()
            return self._status(pod, st, dom)

    def _start(self, dom: libvirt.virDomain, st: _PodState, paused: bool = False) -> None:
        restoring = bool(dom.hasManagedSaveImage(0))
        try:
            dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED if paused else 0)
        except libvirt.libvirtError as e:
            if not paused or "unsupported flags" not in str(e):
                raise
            dom.create()  # the test driver has no START_PAUSED
            dom.suspend()
        if not paused and dom.state(0)[0] == _PAUSED:
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

    def _fake_boot_text(self, st: _PodState) -> str:
        """What the tiny image prints, reproduced for the test driver (where no guest runs)."""
        try:
            return (self._pod_dir(st["uid"]) / "test-boot.txt").read_text()
        except OSError:
            return ""

    async def _converge(
        self, pod: dict[str, Any], st: _PodState, dom: libvirt.virDomain, desired: str
    ) -> None:
        state, ms, _ = await asyncio.to_thread(self._observe, dom)
        uid = st["uid"]
        if desired != "Shutdown" and st["shutdownRequestedAt"] and state in (_RUNNING, _BLOCKED, _SHUTDOWN):
            # A graceful shutdown is in flight: let it finish (or the grace timer destroy it) before acting.
            return
        if desired == "Running":
            if state in (_RUNNING, _BLOCKED):
                return
            if state == _PAUSED:
                await asyncio.to_thread(dom.resume)
                self._console_note(uid, f"[test:///default] domain resumed at {now_rfc3339()}")
            elif state == _PMSUSPENDED:
                await asyncio.to_thread(dom.pMWakeup, 0)
            elif state == _CRASHED:
                await asyncio.to_thread(dom.destroy)
                st["restartCount"] += 1
                await asyncio.to_thread(self._start, dom, st)
            elif state == _SHUTOFF:
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
            if state in (_RUNNING, _BLOCKED):
                await asyncio.to_thread(dom.suspend)
                self._console_note(uid, f"[test:///default] domain paused at {now_rfc3339()}")
            elif state == _SHUTOFF:
                await asyncio.to_thread(self._start, dom, st, True)
        elif desired == "Suspended":
            if state in (_RUNNING, _BLOCKED, _PAUSED):
                await asyncio.to_thread(dom.managedSave, 0)
                st["stoppedByUs"] = True
                st.d["stoppedAt"] = now_rfc3339()
                self._console_note(
                    uid, f"[test:///default] domain suspended (managed save) at {now_rfc3339()}"
                )
            elif state == _SHUTOFF and not ms:
                await asyncio.to_thread(self._start, dom, st)
                await asyncio.to_thread(dom.managedSave, 0)
                st["stoppedByUs"] = True
                st.d["stoppedAt"] = now_rfc3339()
        elif desired == "Shutdown":
            if state == _SHUTOFF:
                if ms:
                    await asyncio.to_thread(dom.managedSaveRemove, 0)
                st["shutdownRequestedAt"] = None
                st["stoppedByUs"] = True
                return
            await self._request_shutdown(dom, st, self._grace(pod))

    def _grace(self, pod: dict[str, Any] | None) -> float:
        g = ((pod or {}).get("spec") or {}).get("terminationGracePeriodSeconds")
        return float(g) if isinstance(g, int | float) and g >= 0 else self.shutdown_grace

    async def _request_shutdown(self, dom: libvirt.virDomain, st: _PodState, grace: float) -> None:
        """ACPI shutdown now; destroy once ``grace`` seconds have passed (by a timer, and on every sync)."""
        state, _, _ = await asyncio.to_thread(self._observe, dom)
        uid = st["uid"]
        st["stoppedByUs"] = True
        st.d["stoppedAt"] = now_rfc3339()
        if state == _PAUSED:
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
            await asyncio.to_thread(self._destroy_quietly, dom)
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
                await asyncio.to_thread(self._destroy_quietly, dom)
            st["shutdownRequestedAt"] = None
            st.save()

    @staticmethod
    def _destroy_quietly(dom: libvirt.virDomain) -> None:
        with contextlib.suppress(libvirt.libvirtError):
            if dom.isActive():
                dom.destroy()

    # ------------------------------------------------------------------ kill / list / orphans

    async def kill_pod(self, uid: str, grace_seconds: float = 10.0) -> None:
        async with self._lock(uid):
            t = self._grace_tasks.pop(uid, None)
            if t is not None:
                t.cancel()
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
            if dom.isActive() and grace > 0 and dom.state(0)[0] in (_RUNNING, _BLOCKED):
                with contextlib.suppress(libvirt.libvirtError):
                    dom.shutdown()
                deadline = time.monotonic() + grace
                while time.monotonic() < self.stop_deadline(uid, deadline) and dom.isActive():
                    time.sleep(0.1)
            self._destroy_quietly(dom)
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
            st = self._state(uid) or _PodState(
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
            out.append(await asyncio.to_thread(self._status, None, st, dom))
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

    # ------------------------------------------------------------------ logs / exec

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
        return self._stream_console(path, follow, tail)

    async def _stream_console(self, path: Path, follow: bool, tail: int | None) -> AsyncIterator[bytes]:
        pos = 0
        if path.exists():
            data = path.read_bytes()
            if tail is not None:
                lines = data.splitlines(keepends=True)
                out = b"".join(lines[-tail:]) if tail > 0 else b""
            else:
                out = data
            pos = len(data)
            if out:
                yield out
        while follow:
            await asyncio.sleep(0.25)
            if not path.parent.exists():
                return
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size < pos:  # rotated or truncated
                pos = 0
            if size > pos:
                with open(path, "rb") as f:
                    f.seek(pos)
                    chunk = f.read(size - pos)
                pos += len(chunk)
                yield chunk

    async def exec(
        self, uid: str, container: str | None, argv: list[str], timeout: float = 30.0
    ) -> ExecResult:
        raise NotSupportedError("exec is not supported for virtual machines; use the console (logs) or ssh")

    # ------------------------------------------------------------------ actions

    async def action(self, uid: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Perform a VM action; returns Action status fields (``complete`` plus results or ``error``)."""
        if operation not in ACTIONS:
            return {
                "complete": True,
                "error": f"unsupported VM action {operation!r} (supported: {', '.join(ACTIONS)})",
            }
        async with self._lock(uid):
            st = self._state(uid)
            dom = await asyncio.to_thread(self._find, uid, st)
            if st is None or dom is None:
                return {"complete": True, "error": f"no virtual machine for pod {uid} on this node"}
            try:
                result = await getattr(self, f"_act_{operation}")(st, dom, params or {})
            except libvirt.libvirtError as e:
                result = {"error": f"{operation} failed: {e}"}
            except RuntimeError_ as e:
                result = {"error": str(e)}
            st.save()
            return {"complete": True, **result}

    async def _act_reboot(
        self, st: _PodState, dom: libvirt.virDomain, params: dict[str, Any]
    ) -> dict[str, Any]:
        state, _, _ = await asyncio.to_thread(self._observe, dom)
        if state not in (_RUNNING, _BLOCKED):
            return {"error": "reboot needs a running virtual machine", "rebootSuccessful": False}
        if self.is_test:
            await asyncio.to_thread(dom.reboot, 0)
            self._console_note(st["uid"], f"[test:///default] domain rebooted at {now_rfc3339()}")
            self._console_note(st["uid"], self._fake_boot_text(st))
        else:
            await asyncio.to_thread(self._reboot_real, st, dom)
        st["restartCount"] += 1
        st["startedAt"] = now_rfc3339()
        return {"rebootSuccessful": True}

    def _reboot_real(self, st: _PodState, dom: libvirt.virDomain) -> None:
        """Graceful ACPI reboot; if the guest shows no sign of rebooting in time, a hard reset."""
        console = self.console_path(st["uid"])
        offset = console.stat().st_size if console.exists() else 0
        banner = b""
        if st["kind"] == "kernel":
            with contextlib.suppress(VMImageError):
                meta = resolve_vm_image(self.data_dir, st["image"]).meta
                # the ready banner: the guest has booted *and* handles ACPI again
                banner = str(meta.get("readyBanner") or meta.get("bootBanner") or "").encode()
        try:
            dom.reboot(libvirt.VIR_DOMAIN_REBOOT_ACPI_POWER_BTN)
        except libvirt.libvirtError:
            dom.reset(0)
            return
        if not banner:
            return
        deadline = time.monotonic() + self.reboot_timeout
        while time.monotonic() < deadline:
            if _console_has(console, offset, banner):
                return
            time.sleep(0.2)
        dom.reset(0)
        deadline = time.monotonic() + self.reboot_timeout
        while time.monotonic() < deadline and not _console_has(console, offset, banner):
            time.sleep(0.2)

    async def _act_snapshot(
        self, st: _PodState, dom: libvirt.virDomain, params: dict[str, Any]
    ) -> dict[str, Any]:
        state, _, _ = await asyncio.to_thread(self._observe, dom)
        if state not in (_RUNNING, _BLOCKED, _PAUSED):
            return {"error": "snapshot needs a running or paused virtual machine"}
        snap_id = f"snap-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuidlib.uuid4().hex[:6]}"
        rec: dict[str, Any] = {"id": snap_id, "time": now_rfc3339()}
        if st["kind"] == "disk":
            await asyncio.to_thread(
                dom.snapshotCreateXML, f"<domainsnapshot><name>{snap_id}</name></domainsnapshot>", 0
            )
            rec["kind"] = "internal"
        else:
            sdir = self._pod_dir(st["uid"]) / "snapshots"
            sdir.mkdir(parents=True, exist_ok=True)
            path = sdir / f"{snap_id}.save"
            await asyncio.to_thread(self._save_and_continue, dom, path, state == _PAUSED)
            rec.update(kind="save", file=str(path))
        st["snapshots"] = [*st["snapshots"], rec]
        self._console_note(st["uid"], f"[test:///default] snapshot {snap_id} taken at {now_rfc3339()}")
        return {"snapshotID": snap_id}

    def _save_and_continue(self, dom: libvirt.virDomain, path: Path, paused: bool) -> None:
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
        dom.save(str(path))
        self._restore_file(dom, path, xml, paused)

    def _restore_file(self, dom: libvirt.virDomain, path: Path, persistent_xml: str, paused: bool) -> None:
        conn = self._connection()
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

    async def _act_restore(
        self, st: _PodState, dom: libvirt.virDomain, params: dict[str, Any]
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
            await asyncio.to_thread(self._restore_from, dom, path, paused)
        st["everStarted"] = True
        st["stoppedByUs"] = False
        st["shutdownRequestedAt"] = None
        self._console_note(st["uid"], f"[test:///default] restored snapshot {rec['id']} at {now_rfc3339()}")
        return {"restoreSuccessful": True, "snapshotID": rec["id"]}

    def _restore_from(self, dom: libvirt.virDomain, path: Path, paused: bool) -> None:
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
        self._destroy_quietly(dom)
        with contextlib.suppress(libvirt.libvirtError):
            if dom.hasManagedSaveImage(0):
                dom.managedSaveRemove(0)
        self._restore_file(dom, path, xml, paused)

    async def _act_stop(
        self, st: _PodState, dom: libvirt.virDomain, params: dict[str, Any]
    ) -> dict[str, Any]:
        st["override"] = {"power": "Shutdown", "powerSpec": st["powerSpec"]}
        grace = float(params.get("gracePeriodSeconds", self.shutdown_grace))
        state, ms, _ = await asyncio.to_thread(self._observe, dom)
        if state == _SHUTOFF:
            if ms:
                await asyncio.to_thread(dom.managedSaveRemove, 0)
            st["stoppedByUs"] = True
            return {}
        st["stoppedByUs"] = True
        st.d["stoppedAt"] = now_rfc3339()
        await asyncio.to_thread(self._kill_domain_running, dom, grace)
        st["shutdownRequestedAt"] = None
        self._console_note(st["uid"], f"[test:///default] domain stopped at {now_rfc3339()}")
        return {}

    def _kill_domain_running(self, dom: libvirt.virDomain, grace: float) -> None:
        if dom.state(0)[0] == _PAUSED:
            dom.resume()
        with contextlib.suppress(libvirt.libvirtError):
            dom.shutdown()
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and dom.isActive():
            time.sleep(0.1)
        self._destroy_quietly(dom)

    async def _act_start(
        self, st: _PodState, dom: libvirt.virDomain, params: dict[str, Any]
    ) -> dict[str, Any]:
        st["override"] = {"power": "Running", "powerSpec": st["powerSpec"]}
        state, _, _ = await asyncio.to_thread(self._observe, dom)
        if state == _PAUSED:
            await asyncio.to_thread(dom.resume)
        elif state == _SHUTOFF:
            await asyncio.to_thread(self._start, dom, st)
        return {}


def _console_has(path: Path, offset: int, needle: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return needle in f.read()
    except OSError:
        return False


def user_data_text(vm: dict[str, Any]) -> str:
    """The decoded user data of a ``spec.virtualMachine`` (for display), or ``""``."""
    try:
        return decode_user_data(vm.get("userData") or "").decode(errors="replace")
    except ValueError:
        return ""
