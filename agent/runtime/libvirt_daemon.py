"""Make sure a libvirt daemon serves ``qemu:///system``, and find out whether KVM really works.

There is no systemd on the machines Centaurus runs on, so nobody starts ``libvirtd`` for us. The node
agent (and the VM tests) call :func:`ensure_libvirtd`, which checks that ``qemu:///system`` answers and
otherwise starts ``virtlogd -d`` and ``libvirtd -d`` by hand (root only), then waits until the daemon
answers. Daemons started here keep running after the agent exits, like system services would; we never
stop them (other agents on the same host may share them).

:func:`probe_kvm` answers a question libvirt's capabilities cannot: ``/dev/kvm`` can exist, and libvirt
can advertise ``<domain type='kvm'>``, while the host still cannot run a guest (nested virtualisation
without the CPU features the guest kernel needs). The probe boots a kernel under ``-accel kvm`` for a few
seconds and looks for the kernel's first console line; the answer is cached per host kernel and QEMU
build so the cost is paid once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from ctl.util.procs import pidfile_alive

SYSTEM_URI = "qemu:///system"
LIBVIRT_SOCK = Path("/var/run/libvirt/libvirt-sock")


class LibvirtdUnavailable(RuntimeError):
    """libvirtd cannot be reached or started (message says why, in one line)."""


def _can_connect(uri: str) -> str | None:
    """None if ``uri`` answers, else the error text."""
    import libvirt

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as e:
        return str(e)
    try:
        conn.getLibVersion()
    finally:
        conn.close()
    return None


def ensure_libvirtd(uri: str = SYSTEM_URI, timeout: float = 20.0) -> None:
    """Return once ``uri`` answers, starting virtlogd and libvirtd by hand if needed."""
    if not uri.startswith("qemu:///system"):
        problem = _can_connect(uri)
        if problem:
            raise LibvirtdUnavailable(f"cannot connect to {uri}: {problem}")
        return
    if _can_connect(uri) is None:
        return
    if os.geteuid() != 0:
        raise LibvirtdUnavailable(f"{uri} does not answer and starting libvirtd needs root")
    for binary in ("virtlogd", "libvirtd"):
        if not (shutil.which(binary) or Path(f"/usr/sbin/{binary}").exists()):
            raise LibvirtdUnavailable(f"{binary} is not installed (apt-get install libvirt-daemon-system)")
    for binary, pidfile in (
        ("virtlogd", Path("/var/run/virtlogd.pid")),
        ("libvirtd", Path("/var/run/libvirtd.pid")),
    ):
        if not pidfile_alive(pidfile):
            exe = shutil.which(binary) or f"/usr/sbin/{binary}"
            r = subprocess.run([exe, "-d"], capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                raise LibvirtdUnavailable(f"{binary} -d failed: {(r.stderr or r.stdout).strip()[:300]}")
    deadline = time.monotonic() + timeout
    err: str | None = "not started"
    while time.monotonic() < deadline:
        err = _can_connect(uri)
        if err is None:
            return
        time.sleep(0.2)
    raise LibvirtdUnavailable(f"libvirtd started but {uri} does not answer within {timeout:.0f}s: {err}")


def _qemu_binary() -> str | None:
    return shutil.which("qemu-system-x86_64")


def probe_kvm(kernel: Path, cache_dir: Path | None = None, timeout: float = 6.0) -> bool:
    """True if a guest kernel actually runs under KVM here (cached in ``cache_dir/kvm-probe.json``)."""
    qemu = _qemu_binary()
    if not qemu or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    key = f"{os.uname().release}|{os.path.getmtime(qemu):.0f}|{kernel}"
    cache = Path(cache_dir) / "kvm-probe.json" if cache_dir else None
    if cache is not None:
        try:
            data = json.loads(cache.read_text())
            if data.get("key") == key:
                return bool(data["kvm"])
        except (OSError, ValueError, KeyError):
            pass
    cmd = [
        qemu,
        "-accel",
        "kvm",
        "-cpu",
        "host",
        "-nographic",
        "-nodefaults",
        "-no-reboot",
        "-m",
        "128",
        "-serial",
        "stdio",
        "-kernel",
        str(kernel),
        "-append",
        "console=ttyS0 panic=-1",
    ]
    ok = False
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            chunk = proc.stdout.read() or b""
            buf += chunk
            if b"Linux version" in buf:
                ok = True
                break
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps({"key": key, "kvm": ok}))
        except OSError:
            pass
    return ok
