"""The node agent with the runc runtime: real busybox containers driven through the API.

The agent runs as a real subprocess inside a network namespace created by the fixture (the simulated
host: its pod bridge and veths live there), talking to a real API server over the server's Unix socket
and serving its endpoint on a Unix socket. Covered: a pod reaching Running with podIP and conditions,
logs and exec through the agent endpoint, crash loops with back-off visible in the API, a liveness
probe restarting a container, graceful deletion stopping the container and removing the pod, and an
agent restart that adopts a running container (same container ID, same restartCount) and removes the
container of a pod deleted while the agent was down.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ctl.client import ApiError, Client
from tests.agent.conftest import AgentProcess, agent_get, agent_post, is_root, make_pod, wait_for
from tests.cluster import ApiServerProcess

RUNC = "/usr/sbin/runc"
NODE = "runc-node"


def _require() -> None:
    if not is_root():
        pytest.skip("the runc agent tests need root (namespaces, mounts, cgroups)")
    if not Path(RUNC).exists():
        pytest.skip(f"runc is not installed at {RUNC}")


class Env:
    def __init__(self, d: Path, api: ApiServerProcess, netns: str) -> None:
        self.d = d
        self.api = api
        self.netns = netns
        self.state = d / "state"
        self.sock = d / "agent.sock"
        self.agent: AgentProcess | None = None

    def start_agent(self) -> AgentProcess:
        self.agent = AgentProcess(
            [
                "--server",
                f"unix://{self.api.socket}",
                "--node-name",
                NODE,
                "--runtime",
                "runc",
                "--data-dir",
                str(self.d / "data"),
                "--state-dir",
                str(self.state),
                "--endpoint-port",
                "-1",
                "--endpoint-socket",
                str(self.sock),
                "--backoff-initial",
                "1",
                "--backoff-max",
                "4",
                "--node-ip",
                "10.250.0.1",
                "--resync-seconds",
                "5",
            ],
            self.d / "agent.log",
            netns=self.netns,
        ).start()
        return self.agent

    def log(self) -> str:
        return self.agent.log() if self.agent else ""

    def runc_ids(self) -> list[str]:
        r = subprocess.run(
            [RUNC, "--root", str(self.state / "runc"), "list", "-q"], capture_output=True, text=True
        )
        return r.stdout.split()

    @property
    def endpoint(self) -> str:
        return f"unix://{self.sock}"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    _require()
    from ctl.images.busybox import build_busybox_image
    from ctl.images.store import ImageError, ImageStore

    d: Path = tmp_path_factory.mktemp("runcagent")
    try:
        store = ImageStore(d / "data")
        build_busybox_image(store)
        store.rootfs("busybox:latest")
    except ImageError as e:
        pytest.skip(f"cannot build the busybox image: {e}")
    netns = "cagt-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", netns], check=True)
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
    try:
        api = ApiServerProcess(d / "api").start()
    except BaseException:  # the server never came up: do not leave the namespace behind
        subprocess.run(["ip", "netns", "delete", netns], check=False)
        raise
    e = Env(d, api, netns)
    try:
        e.start_agent()
        yield e
    finally:
        # delete every pod through the API so the agent tears the containers down, then stop
        import asyncio

        async def drain() -> None:
            c = api.client()
            try:
                for p in (await c.list("pods", tenant="all"))["items"]:
                    try:
                        await c.delete("pods", p["metadata"]["name"], p["metadata"]["namespace"])
                    except ApiError:
                        pass
                if e.agent and e.agent.alive():

                    async def empty() -> bool:
                        return not (await c.list("pods", tenant="all"))["items"]

                    try:
                        await wait_for(empty, 30, what="all pods removed")
                    except AssertionError:
                        pass
            finally:
                await c.close()

        asyncio.run(drain())
        if e.agent:
            e.agent.stop()
        api.stop()
        leftovers = e.runc_ids()
        for cid in leftovers:
            subprocess.run(
                [RUNC, "--root", str(e.state / "runc"), "delete", "--force", cid], capture_output=True
            )
        subprocess.run(["umount", "-R", "-l", str(e.state)], capture_output=True)
        subprocess.run(["ip", "netns", "delete", netns], check=False)
        assert not leftovers, f"runc containers left behind: {leftovers}"


@pytest.fixture()
async def client(env: Env) -> AsyncIterator[Client]:
    c = env.api.client()
    yield c
    await c.close()


def busybox(name: str, script: str, **spec: object) -> dict:
    return make_pod(
        name,
        [{"name": "c", "image": "busybox:latest", "command": ["sh", "-c", script]}],
        terminationGracePeriodSeconds=1,
        **spec,
    )


async def _running(c: Client, name: str) -> dict | None:
    p = await c.get("pods", name)
    st = p["status"]
    if st.get("phase") == "Running" and all(cs.get("ready") for cs in st.get("containerStatuses") or [{}]):
        return p
    return None


async def _gone(c: Client, name: str) -> bool:
    try:
        await c.get("pods", name)
    except ApiError as e:
        return e.code == 404
    return False


async def _event(c: Client, pod: str, reason: str, min_count: int = 1) -> dict | None:
    """The agent's (kubelet's) Event ``reason`` about ``pod`` once its count reached ``min_count``."""
    for e in (await c.list("events", "default"))["items"]:
        if (
            e["involvedObject"]["name"] == pod
            and e["reason"] == reason
            and e["source"] == {"component": "kubelet", "host": NODE}
            and e.get("count", 1) >= min_count
        ):
            return e
    return None


async def test_node_registered(env: Env, client: Client) -> None:
    async def node() -> dict | None:
        try:
            n = await client.get("nodes", NODE)
        except ApiError:
            return None
        return n if n.get("status", {}).get("conditions") else None

    n = await wait_for(node, 20, what="runc node registered", log=env.log)
    st = n["status"]
    assert st["nodeInfo"]["containerRuntimeVersion"].startswith("runc://1.")
    assert n["metadata"]["labels"]["centaurus.io/runtime"] == "runc"
    assert n["metadata"]["annotations"]["centaurus.io/agent-endpoint"] == env.endpoint
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Ready"]["status"] == "True"
    for t in ("MemoryPressure", "DiskPressure", "PIDPressure"):
        assert conds[t]["status"] in ("True", "False") and conds[t]["reason"].startswith("Kubelet")
    assert int(st["capacity"]["cpu"]) >= 1 and st["capacity"]["memory"].endswith("Ki")


async def test_pod_runs_logs_exec(env: Env, client: Client) -> None:
    p = await client.create(busybox("web", "echo hello-from-web; echo line2; exec sleep 1000"))
    await client.bind(p, NODE)
    p = await wait_for(lambda: _running(client, "web"), 30, what="web Running", log=env.log)
    st = p["status"]
    assert st["podIP"].startswith("10.88.") and st["hostIP"] == "10.250.0.1"
    assert {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "True"
    cs = st["containerStatuses"][0]
    assert cs["containerID"] and "running" in cs["state"] and cs["restartCount"] == 0
    ev = await wait_for(lambda: _event(client, "web", "Started"), 10, what="Started event", log=env.log)
    assert ev["type"] == "Normal" and ev["message"] == "Started container c" and ev["count"] == 1
    code, body = await agent_get(env.endpoint, "/pods/system/default/web/log", {"container": "c"})
    assert code == 200 and b"hello-from-web\nline2\n" in body
    code, body = await agent_get(env.endpoint, "/pods/system/default/web/log", {"tailLines": "1"})
    assert code == 200 and body == b"line2\n"
    code, out = await agent_post(
        env.endpoint,
        "/pods/system/default/web/exec",
        {"command": ["sh", "-c", "hostname; echo err >&2; exit 3"], "container": "c"},
    )
    assert code == 200 and out == {"exitCode": 3, "stdout": "web\n", "stderr": "err\n"}
    code, out = await agent_post(
        env.endpoint, "/pods/system/default/web/exec", {"command": ["cat", "/nonexistent"]}
    )
    assert code == 200 and out["exitCode"] != 0 and "nonexistent" in out["stderr"]
    # the same through the API server, which proxies pods/NAME/log and pods/NAME/exec to the agent
    body = await client.request(
        "GET", "/api/v1/namespaces/default/pods/web/log", params={"container": "c"}, raw=True
    )
    assert b"hello-from-web\nline2\n" in body
    out = await client.request(
        "POST", "/api/v1/namespaces/default/pods/web/exec", {"command": ["echo", "via-api"]}
    )
    assert out["exitCode"] == 0 and out["stdout"] == "via-api\n"


async def test_crash_loop_backoff(env: Env, client: Client) -> None:
    p = await client.create(busybox("crash", "echo boom; exit 2"))
    await client.bind(p, NODE)
    seen: set[str] = set()

    async def looping() -> dict | None:
        x = await client.get("pods", "crash")
        for cs in x["status"].get("containerStatuses") or []:
            seen.add(((cs.get("state") or {}).get("waiting") or {}).get("reason", ""))
            if cs.get("restartCount", 0) >= 2 and "CrashLoopBackOff" in seen:
                return x
        return None

    x = await wait_for(looping, 30, interval=0.05, what="crash loop with back-off", log=env.log)
    cs = x["status"]["containerStatuses"][0]
    assert cs["lastState"]["terminated"]["exitCode"] == 2
    assert x["status"]["phase"] == "Running"
    code, body = await agent_get(env.endpoint, "/pods/system/default/crash/log", {"previous": "true"})
    assert code == 200 and body == b"boom\n"
    # every restart is a Started, every back-off a BackOff: aggregated into one Event each
    ev = await wait_for(lambda: _event(client, "crash", "BackOff"), 10, what="BackOff event", log=env.log)
    assert ev["type"] == "Warning" and ev["message"] == "Back-off restarting failed container c"
    await wait_for(lambda: _event(client, "crash", "Started", 2), 10, what="Started x2", log=env.log)
    await client.delete("pods", "crash")
    await wait_for(lambda: _gone(client, "crash"), 30, what="crash pod removed", log=env.log)


async def test_liveness_probe_restarts(env: Env, client: Client) -> None:
    probe = {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1, "failureThreshold": 1}
    pod = make_pod(
        "live",
        [
            {
                "name": "c",
                "image": "busybox:latest",
                "livenessProbe": probe,
                "command": ["sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; exec sleep 1000"],
            }
        ],
        terminationGracePeriodSeconds=1,
    )
    p = await client.create(pod)
    await client.bind(p, NODE)
    first = await wait_for(lambda: _running(client, "live"), 30, what="live Running", log=env.log)
    cid = first["status"]["containerStatuses"][0]["containerID"]

    async def restarted() -> dict | None:
        x = await client.get("pods", "live")
        cs = (x["status"].get("containerStatuses") or [{}])[0]
        return x if cs.get("restartCount", 0) >= 1 and cs.get("containerID") != cid else None

    x = await wait_for(restarted, 30, what="liveness restart", log=env.log)
    assert x["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] in (137, 143)
    bad = await wait_for(lambda: _event(client, "live", "Unhealthy"), 10, what="Unhealthy", log=env.log)
    assert bad["type"] == "Warning" and bad["message"].startswith("Liveness probe failed: ")
    kill = await wait_for(lambda: _event(client, "live", "Killing"), 10, what="Killing", log=env.log)
    assert kill["message"] == "Container c failed liveness probe, will be restarted"
    await client.delete("pods", "live")
    await wait_for(lambda: _gone(client, "live"), 30, what="live pod removed", log=env.log)


async def test_delete_stops_container(env: Env, client: Client) -> None:
    p = await client.create(busybox("doomed", "exec sleep 1000"))
    await client.bind(p, NODE)
    x = await wait_for(lambda: _running(client, "doomed"), 30, what="doomed Running", log=env.log)
    uid12 = x["metadata"]["uid"].replace("-", "")[:12]
    assert any(i.startswith(uid12) for i in env.runc_ids())
    d = await client.delete("pods", "doomed")
    assert d["metadata"]["deletionTimestamp"] and d["metadata"]["deletionGracePeriodSeconds"] == 1
    await wait_for(lambda: _gone(client, "doomed"), 30, what="doomed removed", log=env.log)
    assert not any(i.startswith(uid12) for i in env.runc_ids())
    assert not Path(f"/run/netns/cpod-{uid12}").exists()
    assert not (env.state / "pods" / x["metadata"]["uid"]).exists()
    ev = await wait_for(lambda: _event(client, "doomed", "Killing"), 10, what="Killing event", log=env.log)
    assert ev["message"] == "Stopping container c" and ev["involvedObject"]["uid"] == x["metadata"]["uid"]


async def test_node_admission_refuses_a_pod_that_does_not_fit(env: Env, client: Client) -> None:
    """Bound straight to the node, past the scheduler: the agent refuses it as kubelet does."""
    big = make_pod(
        "too-big",
        [
            {
                "name": "c",
                "image": "busybox:latest",
                "command": ["sleep", "1000"],
                "resources": {"requests": {"cpu": "512"}},
            }
        ],
    )
    p = await client.create(big)
    await client.bind(p, NODE)

    async def failed() -> dict | None:
        x = await client.get("pods", "too-big")
        return x if x["status"].get("phase") == "Failed" else None

    x = await wait_for(failed, 20, what="too-big Failed", log=env.log)
    assert x["status"]["reason"] == "OutOfcpu", x["status"]
    assert x["status"]["message"].startswith("Pod Node didn't have enough resource: cpu, requested: 512000")
    uid12 = x["metadata"]["uid"].replace("-", "")[:12]
    assert not any(i.startswith(uid12) for i in env.runc_ids())  # nothing of it was started
    ev = await wait_for(lambda: _event(client, "too-big", "OutOfcpu"), 10, what="OutOfcpu event", log=env.log)
    assert ev["type"] == "Warning"
    await client.delete("pods", "too-big")
    await wait_for(lambda: _gone(client, "too-big"), 30, what="too-big removed", log=env.log)


async def test_force_delete_cuts_a_graceful_stop_short(env: Env, client: Client) -> None:
    import asyncio
    import time

    script = "trap '' TERM; while true; do sleep 0.2; done"  # ignores SIGTERM: only SIGKILL stops it
    pod = make_pod(
        "stubborn",
        [{"name": "c", "image": "busybox:latest", "command": ["sh", "-c", script]}],
        terminationGracePeriodSeconds=60,
    )
    p = await client.create(pod)
    await client.bind(p, NODE)
    x = await wait_for(lambda: _running(client, "stubborn"), 30, what="stubborn Running", log=env.log)
    uid12 = x["metadata"]["uid"].replace("-", "")[:12]
    await client.delete("pods", "stubborn")  # graceful: up to 60 s
    await asyncio.sleep(2)
    assert any(i.startswith(uid12) for i in env.runc_ids())  # still stopping gracefully
    t0 = time.monotonic()
    await client.delete("pods", "stubborn", grace_period_seconds=0)  # --force --grace-period=0
    assert await _gone(client, "stubborn")

    async def stopped() -> bool:
        return not any(i.startswith(uid12) for i in env.runc_ids())

    await wait_for(stopped, 20, what="the container killed well before its 60 s grace", log=env.log)
    assert time.monotonic() - t0 < 15


async def test_restart_adopts_and_removes_orphans(env: Env, client: Client) -> None:
    for name in ("keeper", "orphan"):
        p = await client.create(busybox(name, "exec sleep 1000"))
        await client.bind(p, NODE)
    keeper = await wait_for(lambda: _running(client, "keeper"), 30, what="keeper Running", log=env.log)
    orphan = await wait_for(lambda: _running(client, "orphan"), 30, what="orphan Running", log=env.log)
    kcs = keeper["status"]["containerStatuses"][0]
    o12 = orphan["metadata"]["uid"].replace("-", "")[:12]
    k12 = keeper["metadata"]["uid"].replace("-", "")[:12]
    assert env.agent is not None
    env.agent.stop()
    # containers survive the agent
    assert any(i.startswith(k12) for i in env.runc_ids()) and any(i.startswith(o12) for i in env.runc_ids())
    await client.delete("pods", "orphan", grace_period_seconds=0)  # removed while the agent is down
    assert await _gone(client, "orphan")
    env.start_agent()

    async def orphan_removed() -> bool:
        return (
            not any(i.startswith(o12) for i in env.runc_ids())
            and not (env.state / "pods" / orphan["metadata"]["uid"]).exists()
        )

    await wait_for(orphan_removed, 30, what="orphan container and pod state removed", log=env.log)
    assert not Path(f"/run/netns/cpod-{o12}").exists()
    # the keeper was adopted, not restarted or duplicated
    import asyncio

    await asyncio.sleep(3)
    k = await client.get("pods", "keeper")
    cs = k["status"]["containerStatuses"][0]
    assert cs["containerID"] == kcs["containerID"] and cs["restartCount"] == kcs["restartCount"]
    assert cs["state"]["running"]["startedAt"] == kcs["state"]["running"]["startedAt"]
    assert [i for i in env.runc_ids() if i.startswith(k12)] == [kcs["containerID"].split("://")[-1]]
    started = [
        e["count"]
        for e in (await client.list("events", "default"))["items"]
        if e["involvedObject"]["name"] == "keeper" and e["reason"] == "Started"
    ]
    assert started == [1], started  # adoption is not reported as a new start
    assert re.search(r"adopted [1-9]\d* pods, removed 1 orphans", env.log())
