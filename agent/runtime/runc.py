"""The container runtime: pods as OCI bundles run by ``runc``, one network namespace per pod.

Everything a pod owns lives under ``<state_dir>/pods/<uid>/`` (``state_dir`` defaults to
``DATA_DIR/agent/<node>``)::

    pod.json                         the last pod object synced (for adoption and restarts)
    backoff.json                     restart back-off entries of its containers
    etc/hosts, etc/hostname, etc/resolv.conf    bind-mounted into every container
    containers/<name>/<n>/           instance n (= restart count) of a container:
        config.json rootfs/ upper/ work/    the OCI bundle; rootfs is an overlay on the image's
                                            cached rootfs (or a copy when overlayfs is unavailable)
        meta.json                    container ID, image, start time, shim pid
        pid                          container init pid (written by runc)
        exit                         "<exit code> <epoch finished>" (written by the shim)
    logs/<name>/<n>.log              stdout+stderr of instance n (kubelet keeps one file per restart)

A container instance runs as ``sh -c 'runc run ...; record exit status'``: a tiny shim started in its
own session, so it survives the agent; ``runc run`` in the foreground waits for the container, forwards
its exit status (128+signal when killed) and deletes the runc container. The shim then writes the
``exit`` file. Observing a pod therefore needs no daemon: the ``pid`` and ``exit`` files, checked with
``kill(pid, 0)``, say whether an instance is running, and ``runc list`` cross-checks on adoption. A
fresh :class:`RuncRuntime` over the same state directory sees exactly the same containers.

Container IDs are ``<first 12 hex of the pod uid>-<container name>-<restart count>``: stable, unique
per instance, and readable in ``runc list``.

Restart policy and back-off follow kubelet (:mod:`agent.runtime.backoff`); ``sync_pod`` must be called
periodically (every second or so) for restarts to happen, the way kubelet's sync loop does. The pod
network (netns, veth on ``cbr0``, podIP) comes from :mod:`agent.cni.bridge`. CPU and memory limits
become cgroup settings when the cpu and memory controllers are available; otherwise the pod runs
without them and the status message says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import math
import os
import re
import resource
import shutil
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from agent.cni.bridge import BridgeNetwork, NetworkError, PodNetworkInfo, run_cmd
from agent.cni.netlink import mount, run_in_fresh_thread, umount
from agent.runtime.backoff import BackOff
from agent.runtime.base import (
    ContainerState,
    ExecResult,
    PodRuntimeStatus,
    Runtime,
    RuntimeError_,
)
from ctl.images.store import ImageError, ImageStore, default_data_dir
from ctl.types import meta

RUNC = "/usr/sbin/runc"
DEFAULT_CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]
_SHIM = r"""
"$C_RUNC" --root "$C_ROOT" run --bundle "$C_BUNDLE" --pid-file "$C_BUNDLE/pid" "$C_ID" </dev/null >>"$C_LOG" 2>&1
rc=$?
printf '%s %s\n' "$rc" "$(date +%s.%N)" > "$C_BUNDLE/exit.tmp"
mv -f "$C_BUNDLE/exit.tmp" "$C_BUNDLE/exit"
"""
_NOFILE = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 1048576)
_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


_libc = ctypes.CDLL(None, use_errno=True)
_POSIX_SPAWN_SETSIGDEF, _POSIX_SPAWN_SETSIGMASK, _POSIX_SPAWN_SETSID = 0x04, 0x08, 0x80
for _f in ("posix_spawn_file_actions_init", "posix_spawn_file_actions_destroy"):
    getattr(_libc, _f).argtypes = [ctypes.c_void_p]
_libc.posix_spawn_file_actions_addopen.argtypes = [
    ctypes.c_void_p,
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_int,
    ctypes.c_uint,
]
for _f in ("posix_spawnattr_init", "posix_spawnattr_destroy", "sigemptyset", "sigfillset"):
    getattr(_libc, _f).argtypes = [ctypes.c_void_p]
_libc.posix_spawnattr_setflags.argtypes = [ctypes.c_void_p, ctypes.c_short]
_libc.posix_spawnattr_setsigmask.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
_libc.posix_spawnattr_setsigdefault.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
_libc.posix_spawn.argtypes = [
    ctypes.POINTER(ctypes.c_int),
    ctypes.c_char_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_char_p),
    ctypes.POINTER(ctypes.c_char_p),
]


def spawn_detached(argv: list[str], env: dict[str, str]) -> int:
    """Start ``argv`` in a new session with stdio on /dev/null and default signal dispositions.

    posix_spawn(3) called through ctypes, which releases the GIL while the child is being created and
    exec'd; the subprocess module holds it for the whole vfork+exec, which under a burst (2 cores
    busy with runc) stalled the agent's event loop for milliseconds per container. Returns the pid;
    the caller must reap it. Only O_CLOEXEC descriptors are open in the agent (Python's default), so
    nothing leaks into the child.
    """
    fa = ctypes.create_string_buffer(1024)  # posix_spawn_file_actions_t is 80 bytes on glibc
    attr = ctypes.create_string_buffer(1024)  # posix_spawnattr_t is 336
    sigs = ctypes.create_string_buffer(256)  # sigset_t is 128
    _libc.posix_spawn_file_actions_init(fa)
    _libc.posix_spawnattr_init(attr)
    try:
        for fd, flags in ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY)):
            rc = _libc.posix_spawn_file_actions_addopen(fa, fd, b"/dev/null", flags, 0)
            if rc:
                raise OSError(rc, os.strerror(rc))
        _libc.sigemptyset(sigs)
        _libc.posix_spawnattr_setsigmask(attr, sigs)
        _libc.sigfillset(sigs)  # undo Python's SIG_IGN for SIGPIPE/SIGXFSZ in the child
        _libc.posix_spawnattr_setsigdefault(attr, sigs)
        _libc.posix_spawnattr_setflags(
            attr, _POSIX_SPAWN_SETSID | _POSIX_SPAWN_SETSIGMASK | _POSIX_SPAWN_SETSIGDEF
        )
        c_argv = (ctypes.c_char_p * (len(argv) + 1))(*[os.fsencode(a) for a in argv], None)
        c_env = (ctypes.c_char_p * (len(env) + 1))(*[os.fsencode(f"{k}={v}") for k, v in env.items()], None)
        pid = ctypes.c_int()
        rc = _libc.posix_spawn(ctypes.byref(pid), os.fsencode(argv[0]), fa, attr, c_argv, c_env)
        if rc:
            raise OSError(rc, f"cannot start {argv[0]}: {os.strerror(rc)}")
        return pid.value
    finally:
        _libc.posix_spawn_file_actions_destroy(fa)
        _libc.posix_spawnattr_destroy(attr)


def rfc3339(t: float | None) -> str | None:
    return None if t is None else meta.rfc3339(t)


def parse_cpu(q: Any) -> float | None:
    """``"500m"`` -> 0.5, ``"2"`` -> 2.0."""
    if q is None:
        return None
    s = str(q).strip()
    try:
        return float(s[:-1]) / 1000 if s.endswith("m") else float(s)
    except ValueError:
        raise RuntimeError_("CreateContainerConfigError", f"invalid cpu quantity {q!r}") from None


_MEM_SUFFIX = {
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "k": 1000,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
}


def parse_memory(q: Any) -> int | None:
    """``"64Mi"`` -> 67108864, ``"1G"`` -> 10**9, ``"129e6"`` -> 129000000."""
    if q is None:
        return None
    s = str(q).strip()
    try:
        for suf, mul in _MEM_SUFFIX.items():
            if s.endswith(suf):
                return int(float(s[: -len(suf)]) * mul)
        return int(float(s))
    except ValueError:
        raise RuntimeError_("CreateContainerConfigError", f"invalid memory quantity {q!r}") from None


def expand_vars(s: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion in command/args; ``$$`` escapes, unknown refs stay as written."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(sub, s)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie counts as dead
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    return True


def _cgroups_available() -> tuple[bool, str]:
    base = Path("/sys/fs/cgroup")
    ctrl = base / "cgroup.controllers"
    if ctrl.exists():
        have = set(ctrl.read_text().split())
        missing = {"cpu", "memory"} - have
        if missing:
            return False, f"cgroup v2 controllers missing: {', '.join(sorted(missing))}"
        return True, ""
    absent = [c for c in ("cpu", "memory") if not (base / c).is_dir()]
    if absent:
        return False, f"cgroup v1 controllers not mounted: {', '.join(absent)}"
    if not os.access(base / "memory", os.W_OK):
        return False, "cgroup hierarchy is not writable"
    return True, ""


class _Instance:
    """One run of one container, as recorded on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.n = int(path.name)
        try:
            self.meta: dict[str, Any] = json.loads((path / "meta.json").read_text())
        except (OSError, ValueError):
            self.meta = {}

    @property
    def id(self) -> str:
        return str(self.meta.get("id", ""))

    def exit(self) -> tuple[int, float] | None:
        try:
            code, when = (self.path / "exit").read_text().split()[:2]
            return int(code), float(when)
        except (OSError, ValueError):
            return None

    def start_error(self) -> str | None:
        """runc's message when the container process never started (bad command, bad config)."""
        if self.exit() is None or (self.path / "pid").exists():
            return None
        try:
            log = (
                self.path.parent.parent.parent / "logs" / self.path.parent.name / f"{self.n}.log"
            ).read_text()
        except OSError:
            log = ""
        for line in reversed(log.strip().splitlines()):
            m = re.search(r'msg="(.*)"', line)
            return (m.group(1) if m else line).replace('\\"', '"')
        return "container process did not start"

    def pid(self) -> int | None:
        try:
            return int((self.path / "pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def shim_alive(self) -> bool:
        pid = self.meta.get("shim_pid")
        return pid is not None and _pid_alive(int(pid))

    def state(self) -> str:
        """``running``, ``starting``, ``exited`` or ``lost`` (shim gone without an exit record)."""
        if self.exit() is not None:
            return "exited"
        pid = self.pid()
        if pid is not None and _pid_alive(pid):
            return "running"
        if self.shim_alive():
            return "starting"
        if self.exit() is not None:  # the shim may have finished between the checks
            return "exited"
        return "lost"


class RuncRuntime(Runtime):
    """Runs container pods with ``runc``. See the module docstring for the on-disk layout."""

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
    ) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.node_name = node_name
        self.state_dir = Path(state_dir) if state_dir is not None else self.data_dir / "agent" / node_name
        self.pods_dir = self.state_dir / "pods"
        self.images = image_store or ImageStore(self.data_dir)
        self.runc = runc
        self.runc_root = Path(runc_root) if runc_root is not None else self.state_dir / "runc"
        self.network = BridgeNetwork(self.state_dir / "cni", pod_cidr, bridge)
        self.backoff = BackOff(backoff_initial, backoff_max)
        self._overlay = use_overlay
        self.start_timeout = start_timeout
        self._locks: dict[str, asyncio.Lock] = {}
        self._shims: set[asyncio.Task[None]] = set()
        self._pidfds: dict[int, int] = {}  # shim pid -> pidfd watched for its exit
        self._cg_ok, self._cg_reason = _cgroups_available()
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
        for t in list(self._shims):
            t.cancel()
        self._shims.clear()
        loop = asyncio.get_running_loop()
        for pfd in self._pidfds.values():
            loop.remove_reader(pfd)
            os.close(pfd)
        self._pidfds.clear()

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
        return f"{uid.replace('-', '')[:12]}-{name}-{n}"

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
                self._write_etc(pdir, pod, pod_ip)
            else:
                self._write_etc(pdir, pod, None)
            restart_policy = spec.get("restartPolicy") or "Always"
            started: list[_Instance] = []
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
        started: list[_Instance],
    ) -> str:
        name = c.get("name") or ""
        uid = pod["metadata"]["uid"]
        inst = self._latest(pdir, name)
        if inst is None:
            return await self._start_instance(pod, pdir, c, 0, netns_path, started)
        state = inst.state()
        if state in ("running", "starting"):
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
            self._record_exit(inst, 255, finished)
        if not self._should_restart(policy, code):
            return ""
        key = f"{uid}/{name}"
        if self.backoff.in_backoff_since(key, finished):
            return ""
        self.backoff.next(key, finished)
        return await self._start_instance(pod, pdir, c, inst.n + 1, netns_path, started)

    @staticmethod
    def _should_restart(policy: str, code: int) -> bool:
        if policy == "Never":
            return False
        if policy == "OnFailure":
            return code != 0
        return True

    def _record_exit(self, inst: _Instance, code: int, when: float) -> None:
        tmp = inst.path / "exit.tmp"
        tmp.write_text(f"{code} {when}\n")
        os.replace(tmp, inst.path / "exit")

    def _latest(self, pdir: Path, name: str) -> _Instance | None:
        cdir = pdir / "containers" / name
        if not cdir.is_dir():
            return None
        ns = sorted(int(p.name) for p in cdir.iterdir() if p.name.isdigit() and (p / "meta.json").exists())
        return _Instance(cdir / str(ns[-1])) if ns else None

    def _instance(self, pdir: Path, name: str, n: int) -> _Instance | None:
        p = pdir / "containers" / name / str(n)
        return _Instance(p) if (p / "meta.json").exists() else None

    def _write_etc(self, pdir: Path, pod: dict[str, Any], pod_ip: str | None) -> None:
        etc = pdir / "etc"
        etc.mkdir(exist_ok=True)
        name = (pod["metadata"].get("name") or "pod")[:63]
        hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        if pod_ip:
            hosts += f"{pod_ip}\t{name}\n"
        for fname, body in (("hosts", hosts), ("hostname", name + "\n")):
            p = etc / fname
            if not p.exists() or p.read_text() != body:
                p.write_text(body)
        rc = etc / "resolv.conf"
        if not rc.exists():
            try:
                shutil.copyfile("/etc/resolv.conf", rc)
            except OSError:
                rc.write_text("")

    def _process_args(self, c: dict[str, Any], img: dict[str, Any], env: dict[str, str]) -> list[str]:
        command = c.get("command")
        args = c.get("args")
        if command:
            argv = list(command) + list(args or [])
        else:
            argv = list(img.get("Entrypoint") or []) + list(
                args if args is not None else img.get("Cmd") or []
            )
        if not argv:
            raise RuntimeError_(
                "CreateContainerConfigError", f"container {c.get('name')!r}: no command specified"
            )
        return [expand_vars(str(a), env) for a in argv]

    def _env(
        self, pod: dict[str, Any], c: dict[str, Any], img: dict[str, Any]
    ) -> tuple[dict[str, str], list[str]]:
        env: dict[str, str] = {}
        for kv in img.get("Env") or []:
            k, _, v = kv.partition("=")
            env[k] = v
        env["HOSTNAME"] = (pod["metadata"].get("name") or "pod")[:63]
        skipped = []
        for e in c.get("env") or []:
            n = e.get("name")
            if not n:
                continue
            if "value" in e or "valueFrom" not in e:
                env[n] = expand_vars(str(e.get("value", "")), env)
            else:
                skipped.append(n)
        return env, skipped

    def _resources(self, c: dict[str, Any]) -> tuple[dict[str, Any], str]:
        res = c.get("resources") or {}
        limits = res.get("limits") or {}
        requests = res.get("requests") or {}
        out: dict[str, Any] = {}
        cpu_l = parse_cpu(limits.get("cpu"))
        cpu_r = parse_cpu(requests.get("cpu"))
        mem_l = parse_memory(limits.get("memory"))
        if cpu_l:
            out.setdefault("cpu", {}).update({"quota": max(1000, int(cpu_l * 100000)), "period": 100000})
        if cpu_r:
            out.setdefault("cpu", {})["shares"] = max(2, int(cpu_r * 1024))
        if mem_l:
            out["memory"] = {"limit": mem_l}
        if out and not self._cg_ok:
            return {}, f"resource limits not enforced ({self._cg_reason})"
        return out, ""

    def _oci_config(
        self,
        pod: dict[str, Any],
        pdir: Path,
        c: dict[str, Any],
        cid: str,
        img: dict[str, Any],
        netns_path: str | None,
    ) -> tuple[dict[str, Any], str]:
        env, skipped = self._env(pod, c, img)
        argv = self._process_args(c, img, env)
        resources, note = self._resources(c)
        if skipped:
            note = "; ".join(filter(None, [note, f"env valueFrom not supported: {', '.join(skipped)}"]))
        user = {"uid": 0, "gid": 0}
        img_user = str(img.get("User") or "")
        if img_user:
            u, _, g = img_user.partition(":")
            if u.isdigit() and (not g or g.isdigit()):
                user = {"uid": int(u), "gid": int(g or 0)}
        sc = c.get("securityContext") or {}
        if "runAsUser" in sc:
            user["uid"] = int(sc["runAsUser"])
        if "runAsGroup" in sc:
            user["gid"] = int(sc["runAsGroup"])
        namespaces: list[dict[str, str]] = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
        if netns_path:
            namespaces.append({"type": "network", "path": netns_path})
        mounts = [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
            },
        ]
        for f in ("hosts", "hostname", "resolv.conf"):
            mounts.append(
                {
                    "destination": f"/etc/{f}",
                    "type": "bind",
                    "source": str(pdir / "etc" / f),
                    "options": ["rbind", "rw"],
                }
            )
        caps = list(DEFAULT_CAPS)
        add = [
            f"CAP_{x}" if not str(x).startswith("CAP_") else str(x)
            for x in (sc.get("capabilities") or {}).get("add") or []
        ]
        caps += [x for x in add if x not in caps]
        privileged = bool(sc.get("privileged"))
        config: dict[str, Any] = {
            "ociVersion": "1.0.2",
            "process": {
                "terminal": False,
                "user": user,
                "args": argv,
                "env": [f"{k}={v}" for k, v in env.items()],
                "cwd": c.get("workingDir") or img.get("WorkingDir") or "/",
                "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": _NOFILE, "soft": _NOFILE}],
                "noNewPrivileges": not privileged,
            },
            "root": {"path": "rootfs", "readonly": bool(sc.get("readOnlyRootFilesystem"))},
            "hostname": (pod["metadata"].get("name") or "pod")[:63],
            "mounts": mounts,
            "linux": {
                "namespaces": namespaces,
                "resources": {"devices": [{"allow": False, "access": "rwm"}], **resources},
                "cgroupsPath": f"/centaurus/{self._cg_name}/{cid}",
                "maskedPaths": [
                    "/proc/acpi",
                    "/proc/asound",
                    "/proc/kcore",
                    "/proc/keys",
                    "/proc/latency_stats",
                    "/proc/timer_list",
                    "/proc/timer_stats",
                    "/proc/sched_debug",
                    "/sys/firmware",
                    "/proc/scsi",
                ],
                "readonlyPaths": [
                    "/proc/bus",
                    "/proc/fs",
                    "/proc/irq",
                    "/proc/sys",
                    "/proc/sysrq-trigger",
                ],
            },
        }
        if privileged:
            config["linux"].pop("maskedPaths")
            config["linux"].pop("readonlyPaths")
        return config, note

    async def _prepare_rootfs(self, lower: Path, idir: Path) -> None:
        rootfs = idir / "rootfs"
        rootfs.mkdir(exist_ok=True)
        if os.path.ismount(rootfs):
            return
        if self._overlay is not False:
            (idir / "upper").mkdir(exist_ok=True)
            (idir / "work").mkdir(exist_ok=True)
            opts = f"lowerdir={lower},upperdir={idir / 'upper'},workdir={idir / 'work'}"
            try:
                mount("overlay", rootfs, "overlay", 0, opts)  # the syscall: no mount(8) process
            except OSError as e:
                if self._overlay:
                    raise RuntimeError_("CreateContainerError", f"overlay mount failed: {e}") from None
                self._overlay = False
            else:
                self._overlay = True
                return
        rc, out = await run_cmd("cp", "-a", f"{lower}/.", str(rootfs), check=False, timeout=120)
        if rc != 0:
            raise RuntimeError_("CreateContainerError", f"cannot copy image rootfs: {out}")

    async def _start_instance(
        self,
        pod: dict[str, Any],
        pdir: Path,
        c: dict[str, Any],
        n: int,
        netns_path: str | None,
        started: list[_Instance],
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
            config, note = self._oci_config(pod, pdir, c, cid, img_cfg, netns_path)
            idir.mkdir(parents=True, exist_ok=True)
            await self._prepare_rootfs(lower, idir)
            (idir / "config.json").write_text(json.dumps(config, indent=1))
        except RuntimeError_ as e:
            errfile.parent.mkdir(parents=True, exist_ok=True)
            errfile.write_text(json.dumps({"reason": e.reason, "message": str(e), "n": n}))
            await self._cleanup_rootfs(idir)
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
        # a fresh thread: the shim (and runc, for hostNetwork pods) must start in the agent's netns
        pid = await run_in_fresh_thread(lambda: spawn_detached(["/bin/sh", "-c", _SHIM], env))
        meta = {"id": cid, "image": image, "n": n, "started": time.time(), "shim_pid": pid, "note": note}
        (idir / "meta.json.tmp").write_text(json.dumps(meta))
        os.replace(idir / "meta.json.tmp", idir / "meta.json")
        self._reap_when_done(pid)
        started.append(_Instance(idir))
        return note

    def _reap_when_done(self, pid: int) -> None:
        """Reap the shim when it exits (a pidfd in the event loop: no thread, no SIGCHLD handler)."""
        loop = asyncio.get_running_loop()
        try:
            pfd = os.pidfd_open(pid)
        except OSError:  # already reaped, or no pidfd support: reap now if it is a zombie
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return

        def exited() -> None:
            loop.remove_reader(pfd)
            os.close(pfd)
            self._pidfds.pop(pid, None)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)

        loop.add_reader(pfd, exited)
        self._pidfds[pid] = pfd

    async def _wait_started(self, insts: list[_Instance]) -> None:
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
                    (inst.path / "meta.json").write_text(json.dumps(inst.meta))

    async def _cleanup_rootfs(self, idir: Path) -> None:
        rootfs = idir / "rootfs"
        if os.path.ismount(rootfs):
            try:
                await asyncio.to_thread(umount, rootfs)
            except OSError:
                with contextlib.suppress(OSError):
                    umount(rootfs, detach=True)
        for sub in ("rootfs", "upper", "work"):
            p = idir / sub
            if p.exists() and not os.path.ismount(p):
                await asyncio.to_thread(shutil.rmtree, p, True)

    def _gc_instances(self, pdir: Path) -> None:
        """Keep only the newest two instances (and logs) of each container; schedule rootfs cleanup."""
        cdirs = pdir / "containers"
        if not cdirs.is_dir():
            return
        for cdir in cdirs.iterdir():
            ns = sorted(int(p.name) for p in cdir.iterdir() if p.name.isdigit())
            for n in ns[:-1]:
                inst = _Instance(cdir / str(n))
                if inst.state() in ("running", "starting"):
                    continue
                if (cdir / str(n) / "rootfs").exists():
                    t = asyncio.ensure_future(self._cleanup_rootfs(cdir / str(n)))
                    self._shims.add(t)
                    t.add_done_callback(self._shims.discard)
            for n in ns[:-2]:
                if _Instance(cdir / str(n)).state() in ("running", "starting"):
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
            cs, done, note = self._container_status(uid, pdir, c, policy)
            st.containers.append(cs)
            all_done = all_done and done
            if note:
                notes.append(note)
        st.finished = all_done and bool(st.containers)
        if notes:
            st.message = "; ".join(dict.fromkeys(notes))
        return st

    def _terminated_dict(self, inst: _Instance) -> dict[str, Any]:
        ex = inst.exit()
        code, finished = ex if ex is not None else (255, None)
        err = inst.start_error()
        out: dict[str, Any] = {
            "exitCode": 128 if err else code,
            "reason": "StartError" if err else ("Completed" if code == 0 else "Error"),
            "startedAt": rfc3339(inst.meta.get("started")),
            "finishedAt": rfc3339(finished),
            "containerID": f"runc://{inst.id}",
        }
        if err:
            out["message"] = err
        return out

    @staticmethod
    def _apply_start_error(cs: ContainerState, inst: _Instance) -> None:
        err = inst.start_error()
        if err:
            cs.exit_code, cs.reason, cs.message = 128, "StartError", err

    def _container_status(
        self, uid: str, pdir: Path, c: dict[str, Any], policy: str
    ) -> tuple[ContainerState, bool, str]:
        name = c.get("name") or ""
        image = c.get("image") or ""
        cs = ContainerState(name=name, image=image)
        inst = self._latest(pdir, name)
        err_path = pdir / "containers" / name / "error.json"
        err = None
        if err_path.exists():
            with contextlib.suppress(OSError, ValueError):
                err = json.loads(err_path.read_text())
        if inst is None:
            cs.state, cs.reason = "waiting", "ContainerCreating"
            if err:
                cs.reason, cs.message = err["reason"], err["message"]
            return cs, False, ""
        cs.container_id = f"runc://{inst.id}"
        cs.restart_count = inst.n
        prev = self._instance(pdir, name, inst.n - 1) if inst.n > 0 else None
        if prev is not None:
            cs.last_terminated = self._terminated_dict(prev)
        note = str(inst.meta.get("note") or "")
        state = inst.state()
        if state == "running":
            cs.state = "running"
            cs.started_at = rfc3339(inst.meta.get("started"))
            return cs, False, note
        if state in ("starting", "lost"):
            cs.state, cs.reason = "waiting", "ContainerCreating"
            return cs, False, note
        ex = inst.exit()
        assert ex is not None
        code, finished = ex
        if err and err.get("n") == inst.n + 1:
            # the restart could not be created (image gone, bad config...)
            cs.state, cs.reason, cs.message = "waiting", err["reason"], err["message"]
            cs.last_terminated = self._terminated_dict(inst)
            return cs, False, note
        if self._should_restart(policy, code):
            key = f"{uid}/{name}"
            remaining = self.backoff.remaining(key, finished)
            if remaining > 0:
                cs.state, cs.reason = "waiting", "CrashLoopBackOff"
                delay = self.backoff.current(key)
                cs.message = f"back-off {delay:g}s restarting failed container={name} pod={pdir.name}"
                cs.last_terminated = self._terminated_dict(inst)
                return cs, False, note
            # exited, restart due at the next sync: report the termination until then
            cs.state, cs.exit_code = "terminated", code
            cs.reason = "Completed" if code == 0 else "Error"
            self._apply_start_error(cs, inst)
            cs.started_at = rfc3339(inst.meta.get("started"))
            cs.finished_at = rfc3339(finished)
            return cs, False, note
        cs.state = "terminated"
        cs.exit_code = code
        cs.reason = "Completed" if code == 0 else "Error"
        self._apply_start_error(cs, inst)
        cs.started_at = rfc3339(inst.meta.get("started"))
        cs.finished_at = rfc3339(finished)
        return cs, True, note

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
            st = self._observe(pdir.name, pod)
            out.append(st)
            cdirs = pdir / "containers"
            if cdirs.is_dir():
                for cdir in cdirs.iterdir():
                    for idir in cdir.iterdir():
                        if idir.name.isdigit():
                            known_ids.add(self.container_id(pdir.name, cdir.name, int(idir.name)))
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

    def _signature(self, pdir: Path) -> tuple[Any, ...]:
        """What changes when a pod needs a sync: each container's instance, state and back-off expiry."""
        sig: list[Any] = []
        cdirs = pdir / "containers"
        if not cdirs.is_dir():
            return ()
        now = time.time()
        for cdir in sorted(cdirs.iterdir()):
            inst = self._latest(pdir, cdir.name)
            if inst is None:
                continue
            state = inst.state()
            due = False
            if state == "exited":
                ex = inst.exit()
                if ex is not None:
                    due = (
                        self.backoff.remaining(f"{pdir.name}/{cdir.name}", ex[1]) <= 0 and now - ex[1] < 3600
                    )
            sig.append((cdir.name, inst.n, state, due))
        return tuple(sig)

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
                    sig = self._signature(pdir)
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

    async def _stop_instance(self, inst: _Instance, grace: float, uid: str = "") -> None:
        """SIGTERM, wait up to ``grace`` (or until the pod's grace is shortened), SIGKILL; wait
        for the exit record."""
        if inst.state() not in ("running", "starting"):
            return
        if inst.state() == "starting":
            await self._wait_started([inst])
        await self._runc("kill", inst.id, "TERM", check=False)
        deadline = time.monotonic() + max(0.0, grace)
        while inst.state() in ("running", "starting") and time.monotonic() < self.stop_deadline(
            uid, deadline
        ):
            await asyncio.sleep(0.05)
        if inst.state() in ("running", "starting"):
            await self._runc("kill", inst.id, "KILL", check=False)
            pid = inst.pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while inst.state() in ("running", "starting") and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if inst.exit() is None:
            await self._runc("delete", "--force", inst.id, check=False)
            self._record_exit(inst, 137, time.time())

    async def kill_pod(self, uid: str, grace_seconds: float = 10.0) -> None:
        pdir = self._pod_dir(uid)
        async with self._lock(uid):
            insts: list[_Instance] = []
            cdirs = pdir / "containers"
            if cdirs.is_dir():
                for cdir in cdirs.iterdir():
                    for idir in cdir.iterdir():
                        if idir.name.isdigit() and (idir / "meta.json").exists():
                            insts.append(_Instance(idir))
            await asyncio.gather(*(self._stop_instance(i, grace_seconds, uid) for i in insts))
            for i in insts:
                await self._runc("delete", "--force", i.id, check=False)
                await self._cleanup_rootfs(i.path)
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
            inst = self._latest(pdir, name)
            if inst is None:
                return
            inst.meta["killReason"] = reason
            (inst.path / "meta.json").write_text(json.dumps(inst.meta))
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
        inst = self._latest(pdir, name)
        if inst is None:
            raise RuntimeError_("NotFound", f"container {name!r} has not started")
        if previous:
            prev = self._instance(pdir, name, inst.n - 1) if inst.n > 0 else None
            if prev is None:
                raise RuntimeError_("NotFound", f"previous terminated container {name!r} not found")
            inst, follow = prev, False
        path = pdir / "logs" / name / f"{inst.n}.log"
        return self._stream_log(path, inst, follow, tail)

    async def _stream_log(
        self, path: Path, inst: _Instance, follow: bool, tail: int | None
    ) -> AsyncIterator[bytes]:
        try:
            fh = open(path, "rb")
        except FileNotFoundError:
            return
        with fh:
            if tail is not None:
                data = fh.read()
                lines = data.splitlines(keepends=True)
                chunk = b"".join(lines[-tail:]) if tail > 0 else b""
                if chunk:
                    yield chunk
            else:
                while chunk := fh.read(65536):
                    yield chunk
            if not follow:
                return
            while True:
                chunk = fh.read(65536)
                if chunk:
                    yield chunk
                    continue
                if inst.state() in ("exited", "lost"):
                    rest = fh.read()
                    if rest:
                        yield rest
                    return
                await asyncio.sleep(0.1)

    async def exec(
        self, uid: str, container: str | None, argv: list[str], timeout: float = 30.0
    ) -> ExecResult:
        if not argv:
            raise RuntimeError_("InvalidArgument", "exec needs a command")
        pod = self._pod(uid)
        name = self._resolve_container(pod, container)
        inst = self._latest(self._pod_dir(uid), name)
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
