"""The runc runtime itself: converging a pod's containers, stopping them, listing, logs and exec.

:class:`RuncRuntime` implements :class:`~agent.runtime.base.Runtime` over the on-disk layout the
package docstring describes. ``sync_pod`` writes ``pod.json``, sets up the pod network (netns, veth
on the node bridge, podIP, from :mod:`agent.cni.bridge`) and the pod's ``etc`` files, then converges
each container: a missing instance is created (image rootfs, ``config.json`` from
:mod:`agent.runtime.runc.oci`, the shim from :mod:`agent.runtime.runc.spawn`), a running one whose
image changed is replaced, an exited one is restarted per ``restartPolicy`` once its back-off
(:mod:`agent.runtime.backoff`) allows. It then reports what it observes
(:mod:`agent.runtime.runc.status`). Operations on one pod are serialised by a per-pod lock.

``changes`` is the runtime's PLEG (cheap on-disk polling); ``list_pods`` also cross-checks
``runc list`` now and then and removes runc containers no instance record knows (leftovers of a
crash between launch and record).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from agent.cni.bridge import BridgeNetwork, NetworkError, PodNetwork, PodNetworkInfo, run_cmd
from agent.cni.netlink import run_in_fresh_thread
from agent.runtime.backoff import BackOff
from agent.runtime.base import ExecResult, PodRuntimeStatus, Runtime, RuntimeError_
from agent.runtime.logs import follow_file
from agent.runtime.runc import instance as instances
from agent.runtime.runc import stdioshim, streams
from agent.runtime.runc.instance import Instance, cleanup_rootfs, instance_at, latest_instance
from agent.runtime.runc.oci import cgroups_available, oci_config, write_etc
from agent.runtime.runc.spawn import SHIM, ShimReaper, spawn_detached
from agent.runtime.runc.status import container_status, pod_signature, should_restart
from ctl.images.store import ImageError, ImageStore, default_data_dir
from ctl.util.tasks import cancel_and_wait

RUNC = "/usr/sbin/runc"


def _flag(v: object) -> str:
    return "1" if v else "0"


class RuncRuntime(Runtime):
    """Runs container pods with ``runc``. See the package docstring for the on-disk layout."""

    name = "runc"

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        node_name: str = "node",
        pod_cidr: str = "10.88.0.0/16",
        bridge: str = "cbr0",
        *,
        state_dir: str | os.PathLike[str] | None = None,
        image_store: ImageStore | None = None,
        runc: str = RUNC,
        runc_root: str | os.PathLike[str] | None = None,
        backoff_initial: float = 10.0,
        backoff_max: float = 300.0,
        use_overlay: bool | None = None,
        start_timeout: float = 5.0,
        network: PodNetwork | None = None,
    ) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.node_name = node_name
        self.state_dir = Path(state_dir) if state_dir is not None else self.data_dir / "agent" / node_name
        self.pods_dir = self.state_dir / "pods"
        self.images = image_store or ImageStore(self.data_dir)
        self.runc = runc
        self.runc_root = Path(runc_root) if runc_root is not None else self.state_dir / "runc"
        # the node bridge, unless the agent prepares each pod's netns itself (VPC endpoints)
        self.network: PodNetwork = network or BridgeNetwork(self.state_dir / "cni", pod_cidr, bridge)
        self.backoff = BackOff(backoff_initial, backoff_max)
        self._overlay = use_overlay
        self.start_timeout = start_timeout
        self._locks: dict[str, asyncio.Lock] = {}
        self._cleanups: set[asyncio.Task[None]] = set()
        self._reaper = ShimReaper()
        self._cg_ok, self._cg_reason = cgroups_available()
        self._cg_name = re.sub(r"[^A-Za-z0-9_.-]", "_", node_name)
        self._restored: set[str] = set()
        self._net_ready: dict[str, PodNetworkInfo] = {}
        self._pod_json: dict[str, str] = {}  # uid -> pod.json as last written
        self.runc_gc_interval = 10.0  # list_pods cross-checks `runc list` at most this often
        self._runc_gc_at = -math.inf

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if not Path(self.runc).exists() and shutil.which(self.runc) is None:
            raise RuntimeError_("RuntimeUnavailable", f"runc not found at {self.runc}")
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self.runc_root.mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        await cancel_and_wait(self._cleanups)
        self._cleanups.clear()
        self._reaper.close()

    def _lock(self, uid: str) -> asyncio.Lock:
        lk = self._locks.get(uid)
        if lk is None:
            lk = self._locks[uid] = asyncio.Lock()
        return lk

    def _pod_dir(self, uid: str) -> Path:
        if not uid or "/" in uid or uid.startswith("."):
            raise RuntimeError_("InvalidPod", f"invalid pod uid {uid!r}")
        return self.pods_dir / uid

    def container_id(self, uid: str, name: str, n: int) -> str:
        return instances.container_id(uid, name, n)

    # ------------------------------------------------------------------ sync

    async def sync_pod(self, pod: dict[str, Any]) -> PodRuntimeStatus:
        meta = pod.get("metadata") or {}
        uid = meta.get("uid") or ""
        pdir = self._pod_dir(uid)
        spec = pod.get("spec") or {}
        containers = spec.get("containers") or []
        if not containers:
            raise RuntimeError_("InvalidPod", "pod has no containers")
        async with self._lock(uid):
            pdir.mkdir(parents=True, exist_ok=True)
            self._restore_backoff(uid, pdir)
            body = json.dumps(pod)
            if self._pod_json.get(uid) != body or not (pdir / "pod.json").exists():
                # only when it changed: every new file costs an inode allocation, which is slow on a
                # busy ext4 without a journal (it scans for recently deleted inodes)
                (pdir / "pod.json.tmp").write_text(body)
                os.replace(pdir / "pod.json.tmp", pdir / "pod.json")
                self._pod_json[uid] = body
            messages: list[str] = []
            pod_ip = None
            netns_path = None
            if not spec.get("hostNetwork"):
                try:
                    cached = self._net_ready.get(uid)
                    if cached is not None and Path(cached.netns_path).exists():
                        info = cached
                    else:
                        info = self._net_ready[uid] = await self.network.setup(uid)
                except (NetworkError, OSError) as e:
                    st = self._observe(uid, pod)
                    st.message = f"pod network setup failed: {e}"
                    for c in st.containers:
                        if c.state == "waiting":
                            c.reason, c.message = "ContainerCreating", st.message
                    return st
                pod_ip, netns_path = info.ip, info.netns_path
            write_etc(pdir, pod, pod_ip)
            restart_policy = spec.get("restartPolicy") or "Always"
            started: list[Instance] = []
            for c in containers:
                msg = await self._converge_container(pod, pdir, c, restart_policy, netns_path, started)
                if msg:
                    messages.append(msg)
            await self._wait_started(started)
            self._gc_instances(pdir)
            self._save_backoff(uid, pdir)
            st = self._observe(uid, pod)
            if messages:
                st.message = "; ".join(dict.fromkeys(messages))
            return st

    async def _converge_container(
        self,
        pod: dict[str, Any],
        pdir: Path,
        c: dict[str, Any],
        policy: str,
        netns_path: str | None,
        started: list[Instance],
    ) -> str:
        name = c.get("name") or ""
        uid = pod["metadata"]["uid"]
        inst = latest_instance(pdir, name)
        if inst is None:
            return await self._start_instance(pod, pdir, c, 0, netns_path, started)
        if inst.active():
            if inst.meta.get("image") == (c.get("image") or ""):
                return ""
            # the container's image was changed in the spec: replace the instance (kubelet does the same)
            grace = float((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
            await self._stop_instance(inst, grace)
            return await self._start_instance(pod, pdir, c, inst.n + 1, netns_path, started)
        ex = inst.exit()
        code, finished = ex if ex is not None else (255, time.time())
        if ex is None:
            # lost: the shim vanished (host reboot, killed); make it an exit so policy applies
            inst.record_exit(255, finished)
        if not should_restart(policy, code):
            return ""
        key = f"{uid}/{name}"
        if self.backoff.in_backoff_since(key, finished):
            return ""
        self.backoff.next(key, finished)
        return await self._start_instance(pod, pdir, c, inst.n + 1, netns_path, started)

    async def _start_instance(
        self,
        pod: dict[str, Any],
        pdir: Path,
        c: dict[str, Any],
        n: int,
        netns_path: str | None,
        started: list[Instance],
    ) -> str:
        """Create bundle ``n`` of container ``c`` and launch its shim. Returns a status note."""
        name = c.get("name") or ""
        uid = pod["metadata"]["uid"]
        image = c.get("image") or ""
        idir = pdir / "containers" / name / str(n)
        cid = self.container_id(uid, name, n)
        errfile = pdir / "containers" / name / "error.json"
        try:
            try:
                lower = await asyncio.to_thread(self.images.rootfs, image)
                img_cfg = self.images.config(image)
            except ImageError as e:
                raise RuntimeError_(
                    "ErrImageNeverPull", f"image {image!r} is not in the node's image store: {e}"
                ) from None
            config, note = oci_config(
                pod,
                pdir,
                c,
                img_cfg,
                netns_path,
                cgroups_path=f"/centaurus/{self._cg_name}/{cid}",
                cgroups=(self._cg_ok, self._cg_reason),
            )
            idir.mkdir(parents=True, exist_ok=True)
            self._overlay = await instances.prepare_rootfs(lower, idir, self._overlay)
            (idir / "config.json").write_text(json.dumps(config, indent=1))
        except RuntimeError_ as e:
            errfile.parent.mkdir(parents=True, exist_ok=True)
            errfile.write_text(json.dumps({"reason": e.reason, "message": str(e), "n": n}))
            await cleanup_rootfs(idir)
            return str(e)
        errfile.unlink(missing_ok=True)
        logdir = pdir / "logs" / name
        logdir.mkdir(parents=True, exist_ok=True)
        log = logdir / f"{n}.log"
        log.touch()
        for f in ("pid", "exit", "exit.tmp"):
            (idir / f).unlink(missing_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "C_RUNC": self.runc,
            "C_ROOT": str(self.runc_root),
            "C_BUNDLE": str(idir),
            "C_ID": cid,
            "C_LOG": str(log),
        }
        shim = ["/bin/sh", "-c", SHIM]
        if c.get("stdin") or c.get("tty"):  # someone must hold its stdin/terminal: the stdio shim
            shim = [sys.executable, "-I", stdioshim.__file__]
            env.update(C_TTY=_flag(c.get("tty")), C_STDIN=_flag(c.get("stdin")))
            env["C_STDIN_ONCE"] = _flag(c.get("stdinOnce"))
        # a fresh thread: the shim (and runc, for hostNetwork pods) must start in the agent's netns
        pid = await run_in_fresh_thread(lambda: spawn_detached(shim, env))
        meta = {"id": cid, "image": image, "n": n, "started": time.time(), "shim_pid": pid, "note": note}
        (idir / "meta.json.tmp").write_text(json.dumps(meta))
        os.replace(idir / "meta.json.tmp", idir / "meta.json")
        self._reaper.watch(pid)
        started.append(Instance(idir))
        return note

    async def _wait_started(self, insts: list[Instance]) -> None:
        deadline = time.monotonic() + self.start_timeout
        pending = list(insts)
        while pending and time.monotonic() < deadline:
            pending = [i for i in pending if i.pid() is None and i.exit() is None]
            if pending:
                await asyncio.sleep(0.02)
        for inst in insts:  # record the real start time once runc has started the process
            pid = inst.pid()
            if pid is not None:
                with contextlib.suppress(OSError):
                    inst.meta["started"] = os.stat(inst.path / "pid").st_mtime
                    inst.save_meta()

    def _gc_instances(self, pdir: Path) -> None:
        """Keep only the newest two instances (and logs) of each container; schedule rootfs cleanup."""
        cdirs = pdir / "containers"
        if not cdirs.is_dir():
            return
        for cdir in cdirs.iterdir():
            ns = sorted(int(p.name) for p in cdir.iterdir() if p.name.isdigit())
            for n in ns[:-1]:
                if Instance(cdir / str(n)).active():
                    continue
                if (cdir / str(n) / "rootfs").exists():
                    t = asyncio.ensure_future(cleanup_rootfs(cdir / str(n)))
                    self._cleanups.add(t)
                    t.add_done_callback(self._cleanups.discard)
            for n in ns[:-2]:
                if Instance(cdir / str(n)).active():
                    continue
                if not os.path.ismount(cdir / str(n) / "rootfs"):
                    shutil.rmtree(cdir / str(n), ignore_errors=True)
                    (pdir / "logs" / cdir.name / f"{n}.log").unlink(missing_ok=True)

    def _restore_backoff(self, uid: str, pdir: Path) -> None:
        if uid in self._restored:
            return
        self._restored.add(uid)
        with contextlib.suppress(OSError, ValueError):
            self.backoff.restore(json.loads((pdir / "backoff.json").read_text()))

    def _save_backoff(self, uid: str, pdir: Path) -> None:
        data = self.backoff.export(uid + "/")
        if data:
            (pdir / "backoff.json").write_text(json.dumps(data))

    # ------------------------------------------------------------------ observing

    def _observe(self, uid: str, pod: dict[str, Any]) -> PodRuntimeStatus:
        pdir = self._pod_dir(uid)
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        policy = spec.get("restartPolicy") or "Always"
        self._restore_backoff(uid, pdir)
        info = self.network.lookup(uid)
        netns = info.netns_path if info and Path(info.netns_path).exists() else None
        st = PodRuntimeStatus(
            uid=uid,
            name=meta.get("name", ""),
            namespace=meta.get("namespace", "default"),
            tenant=meta.get("tenant", "system"),
            runtime=self.name,
            pod_ip=(info.ip or None) if info else None,
            netns=netns,
            sandbox_ready=bool(netns) or bool(spec.get("hostNetwork")),
        )
        notes = []
        all_done = True
        for c in spec.get("containers") or []:
            cs, done, note = container_status(uid, pdir, c, policy, self.backoff)
            st.containers.append(cs)
            all_done = all_done and done
            if note:
                notes.append(note)
        st.finished = all_done and bool(st.containers)
        if notes:
            st.message = "; ".join(dict.fromkeys(notes))
        return st

    async def list_pods(self) -> list[PodRuntimeStatus]:
        """Every pod with state on disk, reconciled with ``runc list``.

        runc containers that belong to this node's runc root but to no known instance are
        killed and deleted (they can only be leftovers of a crash between launch and record); that
        cross-check runs on the first call and then at most every ``runc_gc_interval`` seconds.
        """
        out: list[PodRuntimeStatus] = []
        if not self.pods_dir.is_dir():
            return out
        known_ids: set[str] = set()
        for pdir in sorted(self.pods_dir.iterdir()):
            try:
                pod = json.loads((pdir / "pod.json").read_text())
            except (OSError, ValueError):
                continue
            out.append(self._observe(pdir.name, pod))
            for idir in instances.instance_dirs(pdir):
                known_ids.add(self.container_id(pdir.name, idir.parent.name, int(idir.name)))
        now = time.monotonic()
        if now - self._runc_gc_at < self.runc_gc_interval:
            return out  # the PLEG relists every second; `runc list` is a process, so GC less often
        self._runc_gc_at = now
        for cont in await self._runc_list():
            cid = cont.get("id", "")
            if cid and cid not in known_ids:
                await self._runc("kill", cid, "KILL", check=False)
                await self._runc("delete", "--force", cid, check=False)
        return out

    async def changes(self, interval: float = 0.5) -> AsyncIterator[str]:
        """Yield the uid of a pod whenever it needs a ``sync_pod`` (a PLEG, in kubelet terms).

        A pod is yielded when one of its containers starts, exits, or leaves back-off (so a restart is
        due). Polls cheap on-disk state every ``interval`` seconds; runs until cancelled.
        """
        last: dict[str, tuple[Any, ...]] = {}
        while True:
            seen = set()
            if self.pods_dir.is_dir():
                for pdir in self.pods_dir.iterdir():
                    uid = pdir.name
                    seen.add(uid)
                    sig = pod_signature(pdir, self.backoff)
                    if uid in last and last[uid] != sig:
                        last[uid] = sig
                        yield uid
                    else:
                        last[uid] = sig
            for uid in set(last) - seen:
                del last[uid]
            await asyncio.sleep(interval)

    async def _runc(self, *args: str, check: bool = True, timeout: float = 30.0) -> tuple[int, str]:
        rc, out = await run_cmd(self.runc, "--root", str(self.runc_root), *args, check=False, timeout=timeout)
        if check and rc != 0:
            raise RuntimeError_("RuncError", f"runc {args[0]}: {out.splitlines()[-1] if out else rc}")
        return rc, out

    async def _runc_list(self) -> list[dict[str, Any]]:
        if not self.runc_root.is_dir():
            return []
        rc, out = await self._runc("list", "--format", "json", check=False)
        if rc != 0 or not out.strip() or out.strip() == "null":
            return []
        try:
            return list(json.loads(out))
        except ValueError:
            return []

    def _pod(self, uid: str) -> dict[str, Any]:
        try:
            return dict(json.loads((self._pod_dir(uid) / "pod.json").read_text()))
        except (OSError, ValueError):
            raise RuntimeError_("NotFound", f"pod {uid} is not on this node") from None

    def _resolve_container(self, pod: dict[str, Any], container: str | None) -> str:
        names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        if container is None:
            if not names:
                raise RuntimeError_("NotFound", "pod has no containers")
            return str(names[0])
        if container not in names:
            raise RuntimeError_("NotFound", f"container {container!r} not found in pod")
        return container

    # ------------------------------------------------------------------ stopping

    async def _stop_instance(self, inst: Instance, grace: float, uid: str = "") -> None:
        """SIGTERM, wait up to ``grace`` (or until the pod's grace is shortened), SIGKILL; wait
        for the exit record."""
        if not inst.active():
            return
        if inst.state() == "starting":
            await self._wait_started([inst])
        await self._runc("kill", inst.id, "TERM", check=False)
        deadline = time.monotonic() + max(0.0, grace)
        while inst.active() and time.monotonic() < self.stop_deadline(uid, deadline):
            await asyncio.sleep(0.05)
        if inst.active():
            await self._runc("kill", inst.id, "KILL", check=False)
            pid = inst.pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while inst.active() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if inst.exit() is None:
            await self._runc("delete", "--force", inst.id, check=False)
            inst.record_exit(137, time.time())

    async def kill_pod(self, uid: str, grace_seconds: float = 10.0) -> None:
        pdir = self._pod_dir(uid)
        async with self._lock(uid):
            insts = [Instance(d) for d in instances.instance_dirs(pdir) if (d / "meta.json").exists()]
            await asyncio.gather(*(self._stop_instance(i, grace_seconds, uid) for i in insts))
            for i in insts:
                await self._runc("delete", "--force", i.id, check=False)
                await cleanup_rootfs(i.path)
            try:
                await self.network.teardown(uid)
            except NetworkError as e:
                raise RuntimeError_("KillPodFailed", str(e)) from None
            mounted = [i.path for i in insts if os.path.ismount(i.path / "rootfs")]
            if mounted:
                raise RuntimeError_("KillPodFailed", f"rootfs still mounted: {mounted[0]}")
            await asyncio.to_thread(shutil.rmtree, pdir, True)
            self.backoff.forget_prefix(uid + "/")
            self._restored.discard(uid)
            self._net_ready.pop(uid, None)
            self._pod_json.pop(uid, None)
        self._locks.pop(uid, None)
        self.forget_grace(uid)

    async def restart_container(self, uid: str, container: str, reason: str) -> None:
        """Kill the container (liveness failure); the restart policy and back-off then apply."""
        pod = self._pod(uid)
        name = self._resolve_container(pod, container)
        pdir = self._pod_dir(uid)
        grace = float((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        async with self._lock(uid):
            inst = latest_instance(pdir, name)
            if inst is None:
                return
            inst.meta["killReason"] = reason
            inst.save_meta()
            await self._stop_instance(inst, grace)
        await self.sync_pod(pod)

    # ------------------------------------------------------------------ logs / exec

    async def logs(
        self,
        uid: str,
        container: str | None = None,
        follow: bool = False,
        tail: int | None = None,
        previous: bool = False,
    ) -> AsyncIterator[bytes]:
        """Output of the container's current instance (or the previous one with ``previous``)."""
        pod = self._pod(uid)
        name = self._resolve_container(pod, container)
        pdir = self._pod_dir(uid)
        inst = latest_instance(pdir, name)
        if inst is None:
            raise RuntimeError_("NotFound", f"container {name!r} has not started")
        if previous:
            prev = instance_at(pdir, name, inst.n - 1) if inst.n > 0 else None
            if prev is None:
                raise RuntimeError_("NotFound", f"previous terminated container {name!r} not found")
            inst, follow = prev, False
        return follow_file(
            inst.log_path(), follow=follow, tail=tail, done=lambda: inst.state() in ("exited", "lost")
        )

    async def exec(
        self, uid: str, container: str | None, argv: list[str], timeout: float = 30.0
    ) -> ExecResult:
        if not argv:
            raise RuntimeError_("InvalidArgument", "exec needs a command")
        pod = self._pod(uid)
        name = self._resolve_container(pod, container)
        inst = latest_instance(self._pod_dir(uid), name)
        if inst is None or inst.state() != "running":
            raise RuntimeError_("ContainerNotRunning", f"container {name!r} is not running")
        proc = await asyncio.create_subprocess_exec(
            self.runc,
            "--root",
            str(self.runc_root),
            "exec",
            inst.id,
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise RuntimeError_("ExecTimeout", f"exec in {name!r} timed out after {timeout:g}s") from None
        return ExecResult(
            exit_code=proc.returncode if proc.returncode is not None else -1, stdout=out, stderr=err
        )

    # ------------------------------------------------------------------ streams (exec -it, attach, port-forward)

    def _running_instance(self, uid: str, container: str | None) -> tuple[dict[str, Any], Instance]:
        pod = self._pod(uid)
        name = self._resolve_container(pod, container)
        inst = latest_instance(self._pod_dir(uid), name)
        if inst is None or inst.state() != "running":
            raise RuntimeError_("ContainerNotRunning", f"container {name!r} is not running")
        return pod, inst

    async def exec_stream(
        self, uid: str, container: str | None, argv: list[str], *, tty: bool, stdin: bool
    ) -> streams.StdioSession:
        """Start ``argv`` in the container with its stdio relayed (a PTY with ``tty``)."""
        if not argv:
            raise RuntimeError_("InvalidArgument", "exec needs a command")
        _, inst = self._running_instance(uid, container)
        return await streams.start_exec(self.runc, str(self.runc_root), inst.id, argv, tty=tty, stdin=stdin)

    async def attach(self, uid: str, container: str | None) -> streams.StdioSession:
        """Join the running container's own stdio (it must have been started with stdin or tty)."""
        pod, inst = self._running_instance(uid, container)
        name = inst.path.parent.name
        tty = any(c.get("tty") for c in pod["spec"]["containers"] if c.get("name") == name)
        return await streams.start_attach(inst.path, tty=tty)

    async def port_connect(self, uid: str, port: int) -> socket.socket:
        """A TCP connection to ``port`` on the pod's loopback, inside its network namespace."""
        pod = self._pod(uid)
        netns: str | None = None
        if not (pod.get("spec") or {}).get("hostNetwork"):
            info = self.network.lookup(uid)
            if info is None or not Path(info.netns_path).exists():
                raise RuntimeError_("ContainerNotRunning", "the pod has no network namespace (yet)")
            netns = info.netns_path
        return await streams.connect_in_netns(netns, port)
