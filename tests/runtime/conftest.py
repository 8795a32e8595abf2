"""Fixtures for runtime tests: a busybox image store and a private "host" network namespace.

Root-only tests run inside a network namespace the fixture creates (the test process joins it with
``setns`` for the duration of the test), so the pod bridge, veths and podIP traffic never touch the
machine's real network; deleting the namespace removes the bridge. Every test's runtime is checked
for leftovers (netns, veths, runc containers, mounts) at teardown.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agent.runtime.runc import RUNC, RuncRuntime
from ctl.images.busybox import build_busybox_image, find_busybox
from ctl.images.store import ImageError, ImageStore

CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def require_root_runc() -> None:
    if os.geteuid() != 0:
        pytest.skip("runc runtime tests need root (namespaces, mounts, cgroups)")
    if not Path(RUNC).exists():
        pytest.skip(f"runc is not installed at {RUNC}")
    try:
        find_busybox()
    except ImageError:
        pytest.skip("busybox-static is not installed (/bin/busybox)")


@pytest.fixture(scope="session")
def image_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose image store holds busybox:latest (unpacked once)."""
    d = tmp_path_factory.mktemp("data")
    try:
        store = ImageStore(d)
        build_busybox_image(store)
        store.rootfs("busybox:latest")
    except ImageError as e:
        pytest.skip(f"cannot build the busybox image: {e}")
    return d


@pytest.fixture()
def host_netns() -> Iterator[str]:
    """Run the test inside a fresh network namespace (a simulated host)."""
    require_root_runc()
    name = "ctest-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True)
    orig = os.open("/proc/self/ns/net", os.O_RDONLY)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(fd)
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        _setns(orig)
        os.close(fd)
        os.close(orig)
        subprocess.run(["ip", "netns", "delete", name], check=False)


def pod_netns() -> set[str]:
    netns = Path("/run/netns")
    return {p.name for p in netns.iterdir() if p.name.startswith("cpod-")} if netns.is_dir() else set()


_BASELINE: dict[int, set[str]] = {}


def leftovers(rt: RuncRuntime) -> list[str]:
    """Everything a runtime with no pods should not have left behind.

    Pod network namespaces are named after pods, not runtimes, so only those that appeared
    since the runtime fixture started count (another cluster on the machine may own others).
    """
    problems = [f"netns {n}" for n in sorted(pod_netns() - _BASELINE.get(id(rt), set()))]
    out = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], capture_output=True, text=True).stdout
    problems += [f"veth {line.split(':')[1].strip()}" for line in out.splitlines() if ": veth" in line]
    with open("/proc/self/mountinfo") as fh:
        problems += [f"mount {line.split()[4]}" for line in fh if str(rt.state_dir) in line]
    runc = subprocess.run(
        [RUNC, "--root", str(rt.runc_root), "list", "-q"], capture_output=True, text=True
    ).stdout.split()
    problems += [f"runc container {c}" for c in runc]
    if rt.pods_dir.is_dir():
        problems += [f"pod dir {p.name}" for p in rt.pods_dir.iterdir()]
    ips = rt.network.ipam.allocated()
    problems += [f"ip {ip} for {o}" for o, ip in ips.items()]
    return problems


@pytest.fixture()
async def runtime(host_netns: str, image_data_dir: Path, tmp_path: Path) -> AsyncIterator[RuncRuntime]:
    """A runc runtime on a fresh state dir inside the test host netns; checked clean at the end."""
    rt = RuncRuntime(
        data_dir=image_data_dir,
        node_name="n-" + uuid.uuid4().hex[:6],
        state_dir=tmp_path / "agent",
        backoff_initial=0.5,
        backoff_max=4.0,
    )
    _BASELINE[id(rt)] = pod_netns()
    await rt.start()
    try:
        yield rt
    finally:
        for st in await rt.list_pods():
            await rt.kill_pod(st.uid, grace_seconds=0.5)
        problems = leftovers(rt)
        _BASELINE.pop(id(rt), None)
        await rt.close()
        if problems:
            # clean up hard so one failure does not cascade, then fail
            subprocess.run(["umount", "-R", "-l", str(rt.state_dir)], capture_output=True)
            shutil.rmtree(rt.state_dir, ignore_errors=True)
            pytest.fail(f"runtime left behind: {problems}")


def make_pod(name: str, containers: list[dict], restart_policy: str = "Always", **spec) -> dict:
    return {
        "metadata": {"name": name, "namespace": "default", "tenant": "system", "uid": str(uuid.uuid4())},
        "spec": {"containers": containers, "restartPolicy": restart_policy, "nodeName": "n1", **spec},
    }
