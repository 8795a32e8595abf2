"""A container's OCI runtime spec (``config.json``) and the pod files bind-mounted into it.

:func:`oci_config` turns one container of a pod, the image's config and the pod's network
namespace into the document ``runc run`` reads: the process (command and args from the pod or the
image's entrypoint, ``$(VAR)`` expansion, environment, user, capabilities, rlimits), the mounts
(proc, dev, sys, cgroup and the pod's ``/etc/hosts``, ``/etc/hostname``, ``/etc/resolv.conf``), the
namespaces (a path to the pod's netns when it has one) and the cgroup resources.

Quantities are read with the one Kubernetes parser (:mod:`ctl.types.quantity`). CPU and memory
limits become cgroup settings only when the cpu and memory controllers are usable
(:func:`cgroups_available`); otherwise the spec leaves them out and returns a note saying so,
which the runtime puts in the pod's status message.

The pod's ``etc`` files are written with explicit modes (directory 0755, files 0644) whatever the
agent's umask: a container running as a non-root user must still read them.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
from pathlib import Path
from typing import Any

from agent.runtime.base import RuntimeError_
from ctl.types.quantity import parse_quantity

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
_NOFILE = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 1048576)
_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")
_MASKED_PATHS = [
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
]
_READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
ETC_FILES = ("hosts", "hostname", "resolv.conf")


def parse_cpu(q: Any) -> float | None:
    """``"500m"`` -> 0.5, ``"2"`` -> 2.0 (cores); None stays None."""
    if q is None:
        return None
    try:
        return float(parse_quantity(q))
    except ValueError:
        raise RuntimeError_("CreateContainerConfigError", f"invalid cpu quantity {q!r}") from None


def parse_memory(q: Any) -> int | None:
    """``"64Mi"`` -> 67108864, ``"1G"`` -> 10**9, ``"129e6"`` -> 129000000 (bytes); None stays None."""
    if q is None:
        return None
    try:
        return int(parse_quantity(q))
    except ValueError:
        raise RuntimeError_("CreateContainerConfigError", f"invalid memory quantity {q!r}") from None


def expand_vars(s: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion in command/args; ``$$`` escapes, unknown refs stay as written."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(sub, s)


def cgroups_available() -> tuple[bool, str]:
    """Whether cpu and memory limits can be enforced here; the reason when not."""
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


def pod_hostname(pod: dict[str, Any]) -> str:
    return str(pod["metadata"].get("name") or "pod")[:63]


def write_etc(pdir: Path, pod: dict[str, Any], pod_ip: str | None) -> None:
    """The pod's ``etc/hosts``, ``etc/hostname`` and ``etc/resolv.conf`` (rewritten only on change)."""
    etc = pdir / "etc"
    etc.mkdir(exist_ok=True)
    os.chmod(etc, 0o755)
    name = pod_hostname(pod)
    hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    if pod_ip:
        hosts += f"{pod_ip}\t{name}\n"
    for fname, body in (("hosts", hosts), ("hostname", name + "\n")):
        p = etc / fname
        if not p.exists() or p.read_text() != body:
            p.write_text(body)
            os.chmod(p, 0o644)
    rc = etc / "resolv.conf"
    if not rc.exists():
        try:
            shutil.copyfile("/etc/resolv.conf", rc)
        except OSError:
            rc.write_text("")
        os.chmod(rc, 0o644)


def process_args(c: dict[str, Any], img: dict[str, Any], env: dict[str, str]) -> list[str]:
    """argv as kubelet builds it: ``command`` replaces the entrypoint, ``args`` the image's Cmd."""
    command = c.get("command")
    args = c.get("args")
    if command:
        argv = list(command) + list(args or [])
    else:
        argv = list(img.get("Entrypoint") or []) + list(args if args is not None else img.get("Cmd") or [])
    if not argv:
        raise RuntimeError_(
            "CreateContainerConfigError", f"container {c.get('name')!r}: no command specified"
        )
    return [expand_vars(str(a), env) for a in argv]


def container_env(
    pod: dict[str, Any], c: dict[str, Any], img: dict[str, Any]
) -> tuple[dict[str, str], list[str]]:
    """The environment (image, HOSTNAME, the container's ``env``) and the names skipped (``valueFrom``)."""
    env: dict[str, str] = {}
    for kv in img.get("Env") or []:
        k, _, v = kv.partition("=")
        env[k] = v
    env["HOSTNAME"] = pod_hostname(pod)
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


def cgroup_resources(c: dict[str, Any], cgroups: tuple[bool, str]) -> tuple[dict[str, Any], str]:
    """The OCI ``linux.resources`` cpu/memory part; empty with a note when cgroups are unusable."""
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
    ok, reason = cgroups
    if out and not ok:
        return {}, f"resource limits not enforced ({reason})"
    return out, ""


def _user(c: dict[str, Any], img: dict[str, Any]) -> dict[str, int]:
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
    return user


def _mounts(pdir: Path) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [
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
    for f in ETC_FILES:
        mounts.append(
            {
                "destination": f"/etc/{f}",
                "type": "bind",
                "source": str(pdir / "etc" / f),
                "options": ["rbind", "rw"],
            }
        )
    return mounts


def oci_config(
    pod: dict[str, Any],
    pdir: Path,
    c: dict[str, Any],
    img: dict[str, Any],
    netns_path: str | None,
    *,
    cgroups_path: str,
    cgroups: tuple[bool, str],
) -> tuple[dict[str, Any], str]:
    """The ``config.json`` of container ``c`` of ``pod`` and a status note (limits or env not applied)."""
    env, skipped = container_env(pod, c, img)
    argv = process_args(c, img, env)
    resources, note = cgroup_resources(c, cgroups)
    if skipped:
        note = "; ".join(filter(None, [note, f"env valueFrom not supported: {', '.join(skipped)}"]))
    sc = c.get("securityContext") or {}
    namespaces: list[dict[str, str]] = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if netns_path:
        namespaces.append({"type": "network", "path": netns_path})
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
            "terminal": bool(c.get("tty")),
            "user": _user(c, img),
            "args": argv,
            "env": [f"{k}={v}" for k, v in env.items()],
            "cwd": c.get("workingDir") or img.get("WorkingDir") or "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": _NOFILE, "soft": _NOFILE}],
            "noNewPrivileges": not privileged,
        },
        "root": {"path": "rootfs", "readonly": bool(sc.get("readOnlyRootFilesystem"))},
        "hostname": pod_hostname(pod),
        "mounts": _mounts(pdir),
        "linux": {
            "namespaces": namespaces,
            "resources": {"devices": [{"allow": False, "access": "rwm"}], **resources},
            "cgroupsPath": cgroups_path,
            "maskedPaths": list(_MASKED_PATHS),
            "readonlyPaths": list(_READONLY_PATHS),
        },
    }
    if privileged:
        config["linux"].pop("maskedPaths")
        config["linux"].pop("readonlyPaths")
    return config, note
