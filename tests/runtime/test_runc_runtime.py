"""The runc runtime with real busybox containers: lifecycle, restarts, exec, networking, adoption."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.cni.bridge import netns_name, veth_name
from agent.runtime.base import PodRuntimeStatus, RuntimeError_
from agent.runtime.runc import RUNC, RuncRuntime, parse_cpu, parse_memory
from ctl.images.store import ImageError
from tests.helpers import eventually
from tests.runtime.conftest import leftovers, make_pod


async def sync_until(
    rt: RuncRuntime,
    pod: dict,
    pred: Callable[[PodRuntimeStatus], bool],
    timeout: float = 10.0,
    every: float = 0.1,
) -> PodRuntimeStatus:
    """Drive ``sync_pod`` like the agent loop does until ``pred`` holds."""
    last: list[PodRuntimeStatus] = []

    async def holds() -> PodRuntimeStatus | None:
        last[:] = [await rt.sync_pod(pod)]
        return last[0] if pred(last[0]) else None

    return await eventually(holds, timeout, every, "the condition", diag=lambda: f"last status: {last}")


async def read_logs(rt: RuncRuntime, uid: str, container: str | None = None, **kw) -> str:
    chunks = [c async for c in await rt.logs(uid, container, **kw)]
    return b"".join(chunks).decode()


def runc_ids(rt: RuncRuntime) -> list[str]:
    out = subprocess.run([RUNC, "--root", str(rt.runc_root), "list", "-q"], capture_output=True, text=True)
    return out.stdout.split()


def test_quantities() -> None:
    assert parse_cpu("500m") == 0.5 and parse_cpu("2") == 2.0 and parse_cpu(None) is None
    assert (
        parse_memory("64Mi") == 64 * 1024**2
        and parse_memory("1G") == 10**9
        and parse_memory("129e6") == 129 * 10**6
    )
    # the Kubernetes suffixes, through the one parser (ctl.types.quantity): E/Ei too, and no "K"
    assert parse_memory("1Ei") == 2**60 and parse_memory("1.5Gi") == 3 * 2**29 and parse_cpu("1e-1") == 0.1
    for bad in ("lots", "1K", "1KB", "", True):
        with pytest.raises(RuntimeError_):
            parse_memory(bad)
    with pytest.raises(RuntimeError_):
        parse_cpu("half")


async def test_run_command_exit_code_and_logs(runtime: RuncRuntime) -> None:
    pod = make_pod(
        "p1",
        [
            {
                "name": "c",
                "image": "busybox",
                "command": ["sh", "-c", "echo err >&2; sleep 0.1; echo one; echo two; echo three; exit 3"],
            }
        ],
        restart_policy="Never",
    )
    st = await sync_until(runtime, pod, lambda s: s.finished)
    c = st.containers[0]
    assert c.state == "terminated" and c.exit_code == 3 and c.reason == "Error"
    assert c.restart_count == 0 and c.container_id.startswith("runc://")
    k8s = c.to_k8s()
    assert k8s["state"]["terminated"]["exitCode"] == 3
    assert st.pod_ip and st.pod_ip.startswith("10.88.") and st.sandbox_ready
    logs = await read_logs(runtime, pod["metadata"]["uid"])
    # stdout and stderr are separate streams (as under kubelet): order is kept within each
    assert logs.splitlines() == ["err", "one", "two", "three"]
    assert await read_logs(runtime, pod["metadata"]["uid"], "c", tail=1) == "three\n"
    # a finished pod stays finished: more syncs start nothing
    st = await runtime.sync_pod(pod)
    assert st.finished and st.containers[0].restart_count == 0
    with pytest.raises(RuntimeError_):
        await read_logs(runtime, pod["metadata"]["uid"], "nope")


async def test_env_args_workingdir_and_limits(runtime: RuncRuntime) -> None:
    pod = make_pod(
        "p2",
        [
            {
                "name": "c",
                "image": "docker.io/library/busybox:latest",
                "command": ["sh", "-c"],
                "args": [
                    'echo "greeting=$GREETING"; echo "expanded=$(GREETING)"; echo "cwd=$(pwd)"; '
                    'echo "host=$(hostname)"; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null '
                    '|| cat /sys/fs/cgroup/memory.max; echo args="$0 $1"',
                    "first",
                    "second",
                ],
                "env": [{"name": "GREETING", "value": "hello world"}],
                "workingDir": "/tmp",
                "resources": {"limits": {"memory": "48Mi", "cpu": "250m"}},
            },
            # no command: the image's Cmd is replaced by args (busybox has no Entrypoint)
            {"name": "d", "image": "busybox", "args": ["echo", "from-args"]},
        ],
        restart_policy="Never",
    )
    st = await sync_until(runtime, pod, lambda s: s.finished)
    assert [c.exit_code for c in st.containers] == [0, 0]
    out = await read_logs(runtime, pod["metadata"]["uid"], "c")
    assert "greeting=hello world" in out
    assert "expanded=hello world" in out  # $(VAR) expanded by the runtime, before the shell
    assert "cwd=/tmp" in out and "host=p2" in out
    assert "args=first second" in out
    if "resource limits not enforced" not in st.message:
        assert str(48 * 1024 * 1024) in out
    assert (await read_logs(runtime, pod["metadata"]["uid"], "d")).strip() == "from-args"


async def test_start_errors_are_reported(runtime: RuncRuntime) -> None:
    pod = make_pod(
        "p3",
        [
            {"name": "bad", "image": "busybox", "command": ["/no/such/binary"]},
            {"name": "noimg", "image": "missing:1"},
        ],
        restart_policy="Never",
    )
    st = await sync_until(runtime, pod, lambda s: s.containers[0].state == "terminated")
    bad, noimg = st.containers
    assert bad.reason == "StartError" and bad.exit_code == 128 and "/no/such/binary" in bad.message
    assert noimg.state == "waiting" and noimg.reason == "ErrImageNeverPull"


async def test_containers_share_localhost_and_pod_ip_reachable(runtime: RuncRuntime) -> None:
    server = {
        "name": "web",
        "image": "busybox",
        "command": [
            "sh",
            "-c",
            "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www",
        ],
    }
    client = {
        "name": "client",
        "image": "busybox",
        "command": [
            "sh",
            "-c",
            "for i in $(seq 50); do wget -q -O- http://127.0.0.1:8080/ 2>/dev/null && exit 0; sleep 0.1; done; exit 1",
        ],
    }
    pod = make_pod("p4", [server, client], restart_policy="OnFailure")
    st = await sync_until(runtime, pod, lambda s: s.containers[1].state == "terminated")
    assert st.containers[1].exit_code == 0
    assert (await read_logs(runtime, pod["metadata"]["uid"], "client")).strip() == "hello-from-web"
    # the host (this test's network namespace) reaches the pod at its podIP through cbr0
    reader, writer = await asyncio.open_connection(st.pod_ip, 8080)
    writer.write(b"GET / HTTP/1.0\r\n\r\n")
    await writer.drain()
    body = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert b"hello-from-web" in body
    # the pod's netns, veth and bridge are what the status says
    assert st.netns == f"/run/netns/{netns_name(pod['metadata']['uid'])}"
    links = subprocess.run(
        ["ip", "-o", "link", "show", "master", "cbr0"], capture_output=True, text=True
    ).stdout
    assert veth_name(pod["metadata"]["uid"]) in links


async def test_restart_backoff_and_crashloop(runtime: RuncRuntime) -> None:
    pod = make_pod("p5", [{"name": "crash", "image": "busybox", "command": ["sh", "-c", "echo run; exit 2"]}])
    uid = pod["metadata"]["uid"]
    key = f"{uid}/crash"
    delay_at: dict[int, float] = {}  # restart count -> the back-off the runtime scheduled at that restart
    before: dict[int, float] = {}  # restart count -> time just before the sync that first showed it
    after: dict[int, float] = {}  # ... and just after it
    crashloop = None

    async def restarted_thrice() -> bool:
        nonlocal crashloop
        t = time.monotonic()
        c = (await runtime.sync_pod(pod)).containers[0]
        if c.restart_count not in delay_at:
            delay_at[c.restart_count] = runtime.backoff.current(key)
            before[c.restart_count], after[c.restart_count] = t, time.monotonic()
        if c.reason == "CrashLoopBackOff":
            crashloop = c
        return c.restart_count >= 3 and crashloop is not None

    await eventually(
        restarted_thrice,
        15,
        0.05,
        "3 restarts and CrashLoopBackOff",
        diag=lambda: f"back-off by restart: {delay_at}",
    )
    assert crashloop is not None
    assert crashloop.state == "waiting" and "back-off" in crashloop.message
    assert crashloop.last_terminated and crashloop.last_terminated["exitCode"] == 2
    # The schedule from the runtime's own back-off, not wall-clock gaps (a loaded host stretches those):
    # the first restart is immediate (no delay yet), then 0.5 s doubling per restart (kubelet's rule).
    assert [delay_at[n] for n in range(4)] == [0.0, 0.5, 1.0, 2.0], delay_at
    # ... and the runtime honours it: restart 3 cannot come before restart 1 + 0.5 s + 1 s. A lower bound
    # only (load makes it later, never earlier), so it cannot flake.
    assert after[3] - before[1] >= 1.5 - 0.05, (before, after)
    assert (await read_logs(runtime, uid, previous=True)).strip() == "run"
    # only the newest two instances are kept on disk
    await asyncio.sleep(0.2)
    dirs = sorted((runtime.pods_dir / uid / "containers" / "crash").iterdir())
    assert len([d for d in dirs if d.name.isdigit()]) <= 2


async def test_onfailure_and_never(runtime: RuncRuntime) -> None:
    ok = make_pod("p6", [{"name": "c", "image": "busybox", "command": ["true"]}], restart_policy="OnFailure")
    st = await sync_until(runtime, ok, lambda s: s.finished)
    assert st.containers[0].reason == "Completed" and st.containers[0].restart_count == 0

    failing = make_pod(
        "p7", [{"name": "c", "image": "busybox", "command": ["false"]}], restart_policy="OnFailure"
    )
    st = await sync_until(runtime, failing, lambda s: s.containers[0].restart_count >= 2)
    assert not st.finished

    never = make_pod("p8", [{"name": "c", "image": "busybox", "command": ["false"]}], restart_policy="Never")
    st = await sync_until(runtime, never, lambda s: s.finished)
    await asyncio.sleep(0.6)
    st = await runtime.sync_pod(never)
    assert st.finished and st.containers[0].restart_count == 0 and st.containers[0].exit_code == 1


async def test_exec(runtime: RuncRuntime) -> None:
    pod = make_pod(
        "p9",
        [
            {
                "name": "c",
                "image": "busybox",
                "command": ["sleep", "300"],
                "env": [{"name": "X", "value": "42"}],
                "workingDir": "/etc",
            }
        ],
        terminationGracePeriodSeconds=1,
    )
    await sync_until(runtime, pod, lambda s: s.containers[0].state == "running")
    uid = pod["metadata"]["uid"]
    res = await runtime.exec(uid, "c", ["sh", "-c", "echo $X $(pwd); echo err >&2; exit 5"])
    assert res.exit_code == 5 and res.stdout == b"42 /etc\n" and res.stderr == b"err\n"
    res = await runtime.exec(uid, None, ["cat", "/etc/hostname"])
    assert res.stdout.strip() == b"p9"
    with pytest.raises(RuntimeError_) as ei:
        await runtime.exec(uid, "c", ["sleep", "5"], timeout=0.5)
    assert ei.value.reason == "ExecTimeout"
    with pytest.raises(RuntimeError_):
        await runtime.exec(uid, "missing", ["true"])


async def test_restart_container_counts_restart(runtime: RuncRuntime) -> None:
    pod = make_pod(
        "p10",
        [{"name": "c", "image": "busybox", "command": ["sleep", "300"]}],
        terminationGracePeriodSeconds=0.5,
    )
    st = await sync_until(runtime, pod, lambda s: s.containers[0].state == "running")
    first_id = st.containers[0].container_id
    await runtime.restart_container(pod["metadata"]["uid"], "c", "liveness probe failed")
    st = await sync_until(
        runtime, pod, lambda s: s.containers[0].state == "running" and s.containers[0].restart_count == 1
    )
    c = st.containers[0]
    assert c.container_id != first_id
    # sleep as PID 1 ignores SIGTERM, so the grace period ends with SIGKILL
    assert c.last_terminated and c.last_terminated["exitCode"] == 137


async def test_adoption_by_fresh_runtime(runtime: RuncRuntime) -> None:
    pod = make_pod(
        "p11",
        [
            {"name": "a", "image": "busybox", "command": ["sleep", "300"]},
            {"name": "b", "image": "busybox", "command": ["sleep", "300"]},
        ],
    )
    st = await sync_until(runtime, pod, lambda s: all(c.state == "running" for c in s.containers))
    ids = sorted(c.container_id for c in st.containers)
    await runtime.close()

    fresh = RuncRuntime(
        data_dir=runtime.data_dir,
        node_name=runtime.node_name,
        state_dir=runtime.state_dir,
        backoff_initial=0.5,
    )
    await fresh.start()
    listed = await fresh.list_pods()
    assert [p.uid for p in listed] == [pod["metadata"]["uid"]]
    assert sorted(c.container_id for c in listed[0].containers) == ids
    assert all(c.state == "running" for c in listed[0].containers)
    assert listed[0].pod_ip == st.pod_ip
    st2 = await fresh.sync_pod(pod)
    assert sorted(c.container_id for c in st2.containers) == ids
    assert all(c.restart_count == 0 for c in st2.containers)
    assert sorted(runc_ids(fresh)) == sorted(i.removeprefix("runc://") for i in ids)
    await fresh.kill_pod(pod["metadata"]["uid"], grace_seconds=0.5)
    assert await fresh.list_pods() == []


async def test_kill_pod_cleans_everything(runtime: RuncRuntime) -> None:
    pods = [
        make_pod(
            f"k{i}",
            [
                {
                    "name": "c",
                    "image": "busybox",
                    "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"],
                }
            ],
        )
        for i in range(3)
    ]
    for p in pods:
        await sync_until(runtime, p, lambda s: s.containers[0].state == "running")
    assert len(runc_ids(runtime)) == 3
    assert leftovers(runtime)
    t = time.monotonic()
    await asyncio.gather(*(runtime.kill_pod(p["metadata"]["uid"], grace_seconds=5) for p in pods))
    assert time.monotonic() - t < 4, "SIGTERM-handling containers should stop well before the grace period"
    assert leftovers(runtime) == []
    # idempotent
    await runtime.kill_pod(pods[0]["metadata"]["uid"])
    assert not Path(f"/run/netns/{netns_name(pods[0]['metadata']['uid'])}").exists()


async def test_log_follow(runtime: RuncRuntime) -> None:
    pod = make_pod(
        "p12",
        [
            {
                "name": "c",
                "image": "busybox",
                "command": ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done"],
            }
        ],
        restart_policy="Never",
    )
    await sync_until(runtime, pod, lambda s: s.containers[0].state in ("running", "terminated"))
    got = await asyncio.wait_for(read_logs(runtime, pod["metadata"]["uid"], follow=True), 10)
    assert got.split() == ["line1", "line2", "line3"]


async def test_state_survives_in_pod_json(runtime: RuncRuntime) -> None:
    pod = make_pod("p13", [{"name": "c", "image": "busybox", "command": ["true"]}], restart_policy="Never")
    await sync_until(runtime, pod, lambda s: s.finished)
    saved = json.loads((runtime.pods_dir / pod["metadata"]["uid"] / "pod.json").read_text())
    assert saved["metadata"]["name"] == "p13"


async def test_image_change_replaces_container_and_image_in_use(runtime: RuncRuntime) -> None:
    pod = make_pod(
        "p14",
        [{"name": "c", "image": "busybox", "command": ["sleep", "300"]}],
        terminationGracePeriodSeconds=0.2,
    )
    st = await sync_until(runtime, pod, lambda s: s.containers[0].state == "running")
    # the image's rootfs is the lower layer of a running container's overlay: removal is refused
    if runtime._overlay:
        with pytest.raises(ImageError, match="in use"):
            runtime.images.remove("busybox:latest")
    runtime.images.tag("busybox:latest", "busybox:other")
    pod["spec"]["containers"][0]["image"] = "busybox:other"
    st = await sync_until(
        runtime, pod, lambda s: s.containers[0].state == "running" and s.containers[0].restart_count == 1
    )
    assert st.containers[0].image == "busybox:other"
    runtime.images.remove("busybox:other")


async def test_adoption_across_agent_processes(runtime: RuncRuntime) -> None:
    """Containers started by an agent process that then exits are adopted, and their exit codes kept."""
    pod = make_pod(
        "p15",
        [{"name": "c", "image": "busybox", "command": ["sh", "-c", "sleep 1.5; exit 4"]}],
        restart_policy="Never",
    )
    script = f"""
import asyncio, json, sys
from agent.runtime.runc import RuncRuntime
async def main():
    rt = RuncRuntime(data_dir={str(runtime.data_dir)!r}, node_name={runtime.node_name!r}, state_dir={str(runtime.state_dir)!r})
    await rt.start()
    st = await rt.sync_pod(json.loads(sys.argv[1]))
    print(st.containers[0].state, st.containers[0].container_id)
asyncio.run(main())
"""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        json.dumps(pod),
        stdout=asyncio.subprocess.PIPE,
        cwd=str(Path(__file__).parents[2]),
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    state, cid = out.decode().split()
    assert state == "running"
    listed = await runtime.list_pods()
    assert [c.container_id for c in listed[0].containers] == [cid] and listed[0].containers[
        0
    ].state == "running"
    st = await sync_until(runtime, pod, lambda s: s.finished, timeout=10)
    assert st.containers[0].exit_code == 4 and st.containers[0].container_id == cid


async def test_changes_reports_exits_and_due_restarts(runtime: RuncRuntime) -> None:
    """The PLEG-style change stream wakes the agent for exits and for restarts that become due."""
    pod = make_pod("p16", [{"name": "c", "image": "busybox", "command": ["sh", "-c", "sleep 0.5; exit 1"]}])
    uid = pod["metadata"]["uid"]
    st = await sync_until(runtime, pod, lambda s: s.containers[0].state == "running")
    events = runtime.changes(interval=0.05)
    woke = 0
    try:
        # the agent only syncs when told to: the container still reaches several restarts
        async with asyncio.timeout(10):
            while st.containers[0].restart_count < 3:
                assert await anext(events) == uid
                woke += 1
                st = await runtime.sync_pod(pod)
    finally:
        await events.aclose()
    assert st.containers[0].restart_count >= 3 and woke >= 3


async def test_host_network_pod(runtime: RuncRuntime) -> None:
    pod = make_pod(
        "hostnet",
        [{"name": "c", "image": "busybox", "command": ["sh", "-c", "ip -o link show | cut -d: -f2; exit 0"]}],
        restart_policy="Never",
        hostNetwork=True,
    )
    st = await sync_until(runtime, pod, lambda s: s.finished)
    assert st.pod_ip is None and st.netns is None and st.sandbox_ready
    links = (await read_logs(runtime, pod["metadata"]["uid"])).split()
    # it saw the host's (the test namespace's) interfaces, not a pod eth0
    assert "lo" in links and "eth0" not in links


async def test_limits_degrade_without_cgroups(runtime: RuncRuntime) -> None:
    runtime._cg_ok, runtime._cg_reason = (
        False,
        "cgroup hierarchy is not writable",
    )  # as on a host without controllers
    pod = make_pod(
        "nocg",
        [{"name": "c", "image": "busybox", "command": ["true"], "resources": {"limits": {"memory": "32Mi"}}}],
        restart_policy="Never",
    )
    st = await sync_until(runtime, pod, lambda s: s.finished)
    assert st.containers[0].exit_code == 0
    assert "resource limits not enforced (cgroup hierarchy is not writable)" in st.message
    cfg = json.loads(
        (runtime.pods_dir / pod["metadata"]["uid"] / "containers" / "c" / "0" / "config.json").read_text()
    )
    assert "memory" not in cfg["linux"]["resources"]


async def test_non_root_container_under_private_umask(runtime: RuncRuntime) -> None:
    """Roles run with umask 0o077 (files at rest private): what a container sees must stay readable."""
    old = os.umask(0o077)
    try:
        pod = make_pod(
            "nobody",
            [
                {
                    "name": "c",
                    "image": "busybox",
                    "command": [
                        "sh",
                        "-c",
                        "cat /etc/hosts /etc/hostname /etc/resolv.conf >/dev/null && ls / >/dev/null "
                        "&& ls /bin/sh >/dev/null && echo ok-$(id -u)",
                    ],
                    "securityContext": {"runAsUser": 65534, "runAsGroup": 65534},
                }
            ],
            restart_policy="Never",
        )
        st = await sync_until(runtime, pod, lambda s: s.finished)
    finally:
        os.umask(old)
    logs = await read_logs(runtime, pod["metadata"]["uid"])
    assert st.containers[0].exit_code == 0 and logs.strip() == "ok-65534", logs
    # what is not for the container stays private: the container's log and the pod record
    pdir = runtime.pods_dir / pod["metadata"]["uid"]
    assert (pdir / "pod.json").stat().st_mode & 0o077 == 0
    assert (pdir / "logs" / "c" / "0.log").stat().st_mode & 0o077 == 0
