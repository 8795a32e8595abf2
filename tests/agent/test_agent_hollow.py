"""The node agent in hollow mode: 50 simulated nodes in one agent process against a real API server.

Checks the whole agent code path that does not need root: registration (capacity, addresses,
nodeInfo, labels, daemonEndpoints), lease renewals, pods bound to hollow nodes going Running with a
podIP and conditions, crash loops with back-off, graceful deletion finished by the agent, VM pods
failing clearly on a node without a VM runtime, the log/exec endpoint, and flag errors.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest

from ctl.client import ApiError, Client
from tests.agent.conftest import AgentProcess, agent_get, agent_post, make_pod, wait_for
from tests.cluster import ROOT, ApiServerProcess

N = 50


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServerProcess, AgentProcess]]:
    d: Path = tmp_path_factory.mktemp("hollow")
    api = ApiServerProcess(d / "api").start()
    agent = AgentProcess(
        [
            "--server",
            api.url,
            "--hollow-nodes",
            str(N),
            "--data-dir",
            str(d / "agent"),
            "--endpoint-port",
            "0",
            "--lease-seconds",
            "1",
            "--backoff-initial",
            "1",
            "--backoff-max",
            "2",
            "--hollow-start-delay",
            "0.2",
            "--node-labels",
            "zone=z1",
            "--node-taints",
            "dedicated=test:PreferNoSchedule",
        ],
        d / "agent.log",
    ).start()
    try:
        yield api, agent
    finally:
        agent.stop()
        api.stop()


@pytest.fixture()
async def client(cluster: tuple[ApiServerProcess, AgentProcess]) -> AsyncIterator[Client]:
    c = cluster[0].client()
    yield c
    await c.close()


async def _nodes(c: Client) -> list[dict]:
    return [n for n in (await c.list("nodes"))["items"] if n["metadata"]["name"].startswith("hollow-node-")]


async def test_nodes_registered(cluster: tuple[ApiServerProcess, AgentProcess], client: Client) -> None:
    agent = cluster[1]

    async def all_ready() -> list[dict] | None:
        ns = await _nodes(client)
        ok = [
            n
            for n in ns
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (n.get("status") or {}).get("conditions") or []
            )
        ]
        return ns if len(ok) == N else None

    nodes = await wait_for(all_ready, 30, what=f"{N} Ready hollow nodes", log=agent.log)
    names = sorted(n["metadata"]["name"] for n in nodes)
    assert names == sorted(f"hollow-node-{i}" for i in range(N))
    n = next(x for x in nodes if x["metadata"]["name"] == "hollow-node-7")
    md, st = n["metadata"], n["status"]
    assert md["labels"]["kubernetes.io/hostname"] == "hollow-node-7"
    assert md["labels"]["kubernetes.io/os"] == "linux"
    assert md["labels"]["centaurus.io/runtime"] == "hollow"
    assert md["labels"]["node.kubernetes.io/instance-type"] == "hollow"
    assert md["labels"]["zone"] == "z1"
    assert n["spec"]["taints"] == [{"key": "dedicated", "value": "test", "effect": "PreferNoSchedule"}]
    assert (
        st["capacity"]["pods"] == "110"
        and st["allocatable"]["cpu"] == "4"
        and st["capacity"]["memory"] == "16Gi"
    )
    types = {a["type"]: a["address"] for a in st["addresses"]}
    assert types["Hostname"] == "hollow-node-7" and types["InternalIP"].startswith("172.16.")
    assert st["nodeInfo"]["kubeletVersion"].startswith("v1.")
    assert st["nodeInfo"]["containerRuntimeVersion"].startswith("hollow://")
    assert st["nodeInfo"]["architecture"] and st["nodeInfo"]["kernelVersion"]
    port = st["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    assert port > 0 and md["annotations"]["centaurus.io/agent-endpoint"] == f"http://127.0.0.1:{port}"
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert conds == {
        "Ready": "True",
        "MemoryPressure": "False",
        "DiskPressure": "False",
        "PIDPressure": "False",
    }
    # distinct pod CIDRs
    assert len({x["spec"]["podCIDR"] for x in nodes}) == N


async def test_leases_renewed(cluster: tuple[ApiServerProcess, AgentProcess], client: Client) -> None:
    agent = cluster[1]

    async def leases() -> dict[str, dict] | None:
        items = (await client.list("leases", namespace="kube-node-lease", tenant="system"))["items"]
        got = {x["metadata"]["name"]: x for x in items if x["metadata"]["name"].startswith("hollow-node-")}
        return got if len(got) == N else None

    first = await wait_for(leases, 20, what=f"{N} leases", log=agent.log)
    lease = first["hollow-node-3"]
    assert lease["spec"]["holderIdentity"] == "hollow-node-3"
    assert lease["spec"]["leaseDurationSeconds"] == 40
    rt = lease["spec"]["renewTime"]
    assert len(rt) == len("2026-01-01T00:00:00.000000Z") and rt.endswith("Z") and "." in rt
    assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"

    async def renewed() -> bool:
        now = await leases()
        return bool(now) and all(now[k]["spec"]["renewTime"] > first[k]["spec"]["renewTime"] for k in first)

    await wait_for(renewed, 10, what="every lease renewed", log=agent.log)


async def test_pods_run_and_delete(cluster: tuple[ApiServerProcess, AgentProcess], client: Client) -> None:
    agent = cluster[1]
    await wait_for(lambda: _nodes(client), 20, what="nodes")
    pods = []
    for i in range(100):
        ns = "default" if i % 2 == 0 else "kube-system"
        p = await client.create(make_pod(f"h{i}", namespace=ns))
        await client.bind(p, f"hollow-node-{i % N}")
        pods.append(p)

    async def all_running() -> list[dict] | None:
        items = [
            p
            for p in (await client.list("pods", tenant="all"))["items"]
            if p["metadata"]["name"].startswith("h")
        ]
        running = [p for p in items if p["status"].get("phase") == "Running"]
        return running if len(running) == 100 else None

    running = await wait_for(all_running, 30, what="100 hollow pods Running", log=agent.log)
    ips: dict[str, set[str]] = {}
    for p in running:
        st = p["status"]
        conds = {c["type"]: c["status"] for c in st["conditions"]}
        assert conds == {
            "PodScheduled": "True",
            "Initialized": "True",
            "ContainersReady": "True",
            "Ready": "True",
        }
        assert st["hostIP"].startswith("172.16.") and st["podIP"] and st["podIPs"] == [{"ip": st["podIP"]}]
        assert st["startTime"] and st["qosClass"] == "BestEffort"
        cs = st["containerStatuses"][0]
        assert cs["ready"] and "running" in cs["state"] and cs["restartCount"] == 0
        ips.setdefault(p["spec"]["nodeName"], set()).add(st["podIP"])
    assert sum(len(v) for v in ips.values()) == 100  # unique per node

    # graceful delete: the API only marks the pod; the agent stops it and removes it
    for p in pods:
        d = await client.delete("pods", p["metadata"]["name"], p["metadata"]["namespace"])
        assert d["metadata"].get("deletionTimestamp")

    async def all_gone() -> bool:
        items = (await client.list("pods", tenant="all"))["items"]
        return not [p for p in items if p["metadata"]["name"].startswith("h")]

    await wait_for(all_gone, 30, what="deleted pods removed by the agent", log=agent.log)


async def test_status_not_rewritten_when_unchanged(
    cluster: tuple[ApiServerProcess, AgentProcess], client: Client
) -> None:
    p = await client.create(make_pod("steady"))
    await client.bind(p, "hollow-node-0")

    async def running() -> dict | None:
        x = await client.get("pods", "steady")
        return (
            x
            if x["status"].get("phase") == "Running" and x["status"]["conditions"][-1]["status"] == "True"
            else None
        )

    x = await wait_for(running, 20, what="steady pod Running")
    rv = x["metadata"]["resourceVersion"]
    await asyncio.sleep(2.5)  # several transition resyncs and at least one lease round
    assert (await client.get("pods", "steady"))["metadata"]["resourceVersion"] == rv
    await client.delete("pods", "steady", grace_period_seconds=0)


async def test_crash_loop_backoff(cluster: tuple[ApiServerProcess, AgentProcess], client: Client) -> None:
    ann = {"hollow.centaurus.io/run-seconds": "0.3", "hollow.centaurus.io/exit-code": "3"}
    p = await client.create(make_pod("crasher", annotations=ann))
    await client.bind(p, "hollow-node-2")
    seen: set[str] = set()

    async def crashlooping() -> bool:
        cs = ((await client.get("pods", "crasher"))["status"].get("containerStatuses") or [{}])[0]
        w = (cs.get("state") or {}).get("waiting") or {}
        if w.get("reason"):
            seen.add(w["reason"])
        return cs.get("restartCount", 0) >= 2 and "CrashLoopBackOff" in seen

    await wait_for(
        crashlooping, 20, interval=0.05, what="restartCount >= 2 and CrashLoopBackOff", log=cluster[1].log
    )
    st = (await client.get("pods", "crasher"))["status"]
    assert st["phase"] == "Running"
    assert st["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 3
    await client.delete("pods", "crasher", grace_period_seconds=0)


async def test_completed_pod_succeeds(cluster: tuple[ApiServerProcess, AgentProcess], client: Client) -> None:
    ann = {"hollow.centaurus.io/run-seconds": "0.2", "hollow.centaurus.io/exit-code": "0"}
    p = await client.create(make_pod("job", annotations=ann, restart_policy="Never"))
    await client.bind(p, "hollow-node-4")

    async def done() -> dict | None:
        x = await client.get("pods", "job")
        return x if x["status"].get("phase") == "Succeeded" else None

    x = await wait_for(done, 20, what="pod Succeeded")
    conds = {c["type"]: c for c in x["status"]["conditions"]}
    assert conds["Ready"]["status"] == "False" and conds["Ready"]["reason"] == "PodCompleted"
    assert x["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    await client.delete("pods", "job")
    await wait_for(lambda: _gone(client, "job"), 20, what="job pod removed")


async def _gone(c: Client, name: str, ns: str = "default") -> bool:
    try:
        await c.get("pods", name, ns)
    except ApiError as e:
        return e.code == 404
    return False


async def test_vm_pod_without_vm_runtime_fails(
    cluster: tuple[ApiServerProcess, AgentProcess], client: Client
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "vm-nope", "namespace": "default"},
        "spec": {
            "virtualMachine": {
                "name": "vm",
                "image": "cirros-tiny:latest",
                "keyPairName": "k",
                "resources": {"limits": {"cpu": "1", "memory": "128Mi"}},
            }
        },
    }
    p = await client.create(pod)
    await client.bind(p, "hollow-node-5")

    async def failed() -> dict | None:
        x = await client.get("pods", "vm-nope")
        return x if x["status"].get("phase") == "Failed" else None

    x = await wait_for(failed, 20, what="VM pod Failed")
    assert x["status"]["reason"] == "VirtualMachineRuntimeUnavailable"
    assert "hollow-node-5" in x["status"]["message"] and "virtual machines" in x["status"]["message"]
    await client.delete("pods", "vm-nope")
    await wait_for(lambda: _gone(client, "vm-nope"), 20, what="VM pod removed")


async def test_endpoint_log_and_exec(cluster: tuple[ApiServerProcess, AgentProcess], client: Client) -> None:
    p = await client.create(make_pod("talk", annotations={"hollow.centaurus.io/exec-exit-code": "7"}))
    await client.bind(p, "hollow-node-9")

    async def running() -> dict | None:
        x = await client.get("pods", "talk")
        return x if x["status"].get("phase") == "Running" else None

    await wait_for(running, 20, what="pod Running")
    node = await client.get("nodes", "hollow-node-9")
    base = node["metadata"]["annotations"]["centaurus.io/agent-endpoint"]
    code, body = await agent_get(base, "/pods/system/default/talk/log", {"container": "c"})
    assert code == 200 and b"hollow container c" in body and b"hollow-node-9" in body
    code, out = await agent_post(
        base, "/pods/system/default/talk/exec", {"command": ["true"], "container": "c"}
    )
    assert code == 200 and out == {"exitCode": 7, "stdout": "", "stderr": ""}
    code, body = await agent_get(base, "/pods/system/default/nope/log")
    st = orjson.loads(body)
    assert code == 404 and st["kind"] == "Status" and st["reason"] == "NotFound"
    code, out = await agent_post(base, "/pods/system/default/talk/exec", {"command": []})
    assert code == 400 and out["reason"] == "BadRequest"
    code, body = await agent_get(base, "/pods/system/default/talk/log", {"tailLines": "-1"})
    assert code == 400
    code, body = await agent_get(base, "/pods/system/default/talk/log", {"container": "zzz"})
    assert code == 404
    await client.delete("pods", "talk", grace_period_seconds=0)


@pytest.mark.slow
def test_bad_flags_one_line_error() -> None:
    for argv in (
        ["--node-taints", "a=b:Sometimes"],
        ["--pod-cidr", "10.1.2.300/24"],
        ["--hollow-nodes", "-1"],
        ["--node-labels", "novalue"],
        ["--cpu", "lots"],
        ["--cpu", "2K"],  # not a Kubernetes suffix (k is)
    ):
        r = subprocess.run(
            [sys.executable, "-m", "ctl", "serve", "agent", "--server", "http://127.0.0.1:1", *argv],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=30,
        )
        assert r.returncode == 1, (argv, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: agent:"), (argv, r.stderr)


async def test_sigterm_exits_zero(
    cluster: tuple[ApiServerProcess, AgentProcess], client: Client, tmp_path: Path
) -> None:
    """A second agent (one hollow node) registers, then stops on SIGTERM with exit code 0."""
    api = cluster[0]
    agent = AgentProcess(
        [
            "--server",
            api.url,
            "--hollow-nodes",
            "1",
            "--hollow-prefix",
            "sigterm-node",
            "--data-dir",
            str(tmp_path / "agent"),
            "--endpoint-port",
            "-1",
        ],
        tmp_path / "agent.log",
    ).start()
    try:
        await wait_for(
            lambda: client.get("nodes", "sigterm-node-0"), 20, what="node registered", log=agent.log
        )
        await wait_for(
            lambda: asyncio.sleep(0, "agent ready" in agent.log()), 20, what="agent ready", log=agent.log
        )
        assert agent.proc is not None
        agent.proc.terminate()
        rc = await asyncio.to_thread(agent.proc.wait, 15)
        assert rc == 0, agent.log()[-3000:]
        assert "agent shutting down" in agent.log()
    finally:
        agent.stop()
        await client.delete("nodes", "sigterm-node-0")


@pytest.mark.slow
def test_start_errors_one_line(tmp_path: Path) -> None:
    """Failures at start-up (after the flags were accepted) are one line and exit code 1; cleanup too."""

    def serve(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ctl", "serve", *argv],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )

    # the endpoint's Unix socket cannot be created (its directory is a file): an OSError at start
    (tmp_path / "file").write_text("")
    r = serve(
        "agent",
        "--server",
        "http://127.0.0.1:1",
        "--hollow-nodes",
        "1",
        "--data-dir",
        str(tmp_path / "d"),
        "--endpoint-port",
        "-1",
        "--endpoint-socket",
        str(tmp_path / "file" / "agent.sock"),
    )
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: agent:"), r.stderr
    # agent-cleanup with nothing to clean: exit 0 and the count
    r = serve("agent-cleanup", "--data-dir", str(tmp_path / "empty"), "--node-name", "none")
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == "0 pod(s) removed", (r.stdout, r.stderr)
    # agent-cleanup that cannot open its VM runtime: one line, exit 1
    r = serve("agent-cleanup", "--data-dir", str(tmp_path / "empty"), "--vm-runtime-uri", "bogus:///nowhere")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: agent-cleanup:"), r.stderr


@pytest.mark.slow
async def test_sigterm_while_registration_retries(tmp_path: Path) -> None:
    """An agent whose API server never answers keeps retrying registration; SIGTERM still stops it (exit 0)."""
    from tests.cluster import free_port

    agent = AgentProcess(
        [
            "--server",
            f"http://127.0.0.1:{free_port()}",  # nothing listens there
            "--hollow-nodes",
            "1",
            "--hollow-prefix",
            "unreachable-node",
            "--data-dir",
            str(tmp_path / "agent"),
            "--endpoint-port",
            "-1",
        ],
        tmp_path / "agent.log",
    ).start()
    try:
        await wait_for(
            lambda: asyncio.sleep(0, "retrying" in agent.log()), 20, what="registration retry", log=agent.log
        )
        assert agent.proc is not None
        agent.proc.terminate()
        rc = await asyncio.to_thread(agent.proc.wait, 15)
        assert rc == 0, agent.log()[-3000:]
    finally:
        agent.stop()
