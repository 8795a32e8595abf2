"""Issue 4 end to end: workloads on real runc containers, through every real component.

One cluster for the module: ``centaurusctl init --detach`` with the runc node agent, two hollow
nodes, a 4 s node-monitor grace period, a 1 s pod-eviction timeout and a 1 s first restart
back-off. User steps go through the CLI (``apply``, ``scale``, ``rollout status``, ``logs``,
``exec``, ``describe``, ``delete``); the tests poll the API with the client library and look at
the host (runc's state, network namespaces) to prove the containers are real.

The tests run in file order and share the cluster; the node-failure test is last but one, and the
last test deletes everything, runs ``down`` and checks that nothing is left on the machine.
"""

from __future__ import annotations

import math
import os
import re
import signal
import threading
import time
from typing import Any

import pytest

from tests.e2e.conftest import E2ECluster, condition, is_ready, require_root_runc, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.root]

NS = "e2e"
GRACE = "4s"  # --node-monitor-grace-period
LOOP = 'trap "exit 0" TERM; echo started-$VERSION; while true; do sleep 0.2; done'


@pytest.fixture(scope="module")
def cluster(cluster_factory: Any) -> E2ECluster:
    require_root_runc()
    c: E2ECluster = cluster_factory(
        [
            "--runtime",
            "runc",
            "--hollow-nodes",
            "2",
            "--node-monitor-grace-period",
            GRACE,
            "--pod-eviction-timeout",
            "1s",
            "--restart-backoff",
            "1",
        ]
    )
    assert "runtime runc" in c.init_output, c.init_output
    wait_for(lambda: _ready_nodes(c) >= 3, 30, "the local node and two hollow nodes to be Ready")
    c.ctl("create", "namespace", NS)
    return c


def _ready_nodes(c: E2ECluster) -> int:
    return sum(
        1
        for n in c.api.list("nodes")["items"]
        if (condition(n, "Ready") or {}).get("status") == "True"
        and not (n.get("spec") or {}).get("unschedulable")
    )


def container(name: str, command: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox:latest", "command": ["sh", "-c", command], **extra}


def pod_spec(c: E2ECluster, *containers: dict[str, Any], local: bool = True, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": list(containers), "terminationGracePeriodSeconds": 2, **extra}
    if local:
        spec["nodeSelector"] = {"kubernetes.io/hostname": c.node}
    return spec


def deployment(c: E2ECluster, name: str, replicas: int, version: str, **spec_extra: Any) -> dict[str, Any]:
    local = spec_extra.pop("local", True)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": pod_spec(
                    c, container("main", LOOP, env=[{"name": "VERSION", "value": version}]), local=local
                ),
            },
            **spec_extra,
        },
    }


def pod(c: E2ECluster, name: str, *containers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    local = extra.pop("local", True)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"e2e": name}},
        "spec": pod_spec(c, *containers, local=local, **extra),
    }


def live(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def wait_ready(c: E2ECluster, selector: str, n: int, timeout: float = 60) -> list[dict[str, Any]]:
    """Exactly ``n`` pods match and all of them are ready (terminating ones are gone)."""

    def check() -> list[dict[str, Any]] | None:
        pods = c.pods(NS, selector)
        return pods if len(pods) == n and all(is_ready(p) for p in pods) else None

    return wait_for(check, timeout, f"{n} ready pods {selector}", diag=lambda: c.describe_pods(NS))


def runc_id(p: dict[str, Any], container_name: str = "main") -> str:
    for cs in (p.get("status") or {}).get("containerStatuses") or []:
        if cs["name"] == container_name:
            return str(cs.get("containerID", "")).split("://", 1)[-1]
    return ""


def cstatus(p: dict[str, Any] | None, name: str = "main") -> dict[str, Any]:
    for cs in ((p or {}).get("status") or {}).get("containerStatuses") or []:
        if cs["name"] == name:
            return dict(cs)
    return {}


# ---------------------------------------------------------------------------------------- tests
def test_deployment_scales_up_and_down(cluster: E2ECluster) -> None:
    c = cluster
    out = c.apply(deployment(c, "web", 2, "v1"))
    assert "deployment.apps/web created" in out or "deployment/web created" in out, out
    pods = wait_ready(c, "app=web", 2)
    # Real containers: runc runs each one, inside the pod's own network namespace.
    running = c.runc_containers()
    for p in pods:
        assert p["spec"]["nodeName"] == c.node
        assert running.get(runc_id(p)) == "running", (runc_id(p), running)
        assert "cpod-" + p["metadata"]["uid"].replace("-", "")[:12] in c.pod_netns()
        assert p["status"].get("podIP", "").startswith("10.88.")

    c.ctl("scale", "deployment/web", "--replicas", "4", "-n", NS)
    pods = wait_ready(c, "app=web", 4)
    assert len({p["status"]["podIP"] for p in pods}) == 4
    wait_for(
        lambda: (c.api.get("deployments", "web", NS).get("status") or {}).get("readyReplicas") == 4,
        20,
        "deployment status readyReplicas 4",
    )
    got = c.ctl("get", "deployment", "web", "-n", NS).stdout
    assert re.search(r"web\s+4/4", got), got

    before = {runc_id(p) for p in pods}
    c.ctl("scale", "deployment/web", "--replicas", "1", "-n", NS)
    pods = wait_ready(c, "app=web", 1, timeout=30)
    gone = before - {runc_id(pods[0])}
    wait_for(
        lambda: not (gone & set(c.runc_containers())),
        20,
        "the scaled-down pods' containers to be removed by runc",
        diag=lambda: repr(c.runc_containers()),
    )


class AvailabilityRecorder:
    """Follows the pods of one app through a watch and records the fewest available at any revision."""

    def __init__(self, c: E2ECluster, selector: str) -> None:
        self.c = c
        self.selector = selector
        lst = c.api.list("pods", NS, label_selector=selector)
        self.pods = {p["metadata"]["uid"]: p for p in lst["items"]}
        self.rv = lst["metadata"]["resourceVersion"]
        self.min_available = self.available()
        self.seen: set[str] = set(self.pods)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def available(self) -> int:
        return sum(1 for p in self.pods.values() if is_ready(p))

    def _run(self) -> None:
        from ctl.client import SyncClient
        from ctl.client.kubeconfig import load

        with SyncClient(load(str(self.c.kubeconfig))) as cl:
            try:
                for typ, obj in cl.watch("pods", NS, resource_version=self.rv, label_selector=self.selector):
                    uid = obj["metadata"]["uid"]
                    self.seen.add(uid)
                    if typ == "DELETED":
                        self.pods.pop(uid, None)
                    else:
                        self.pods[uid] = obj
                    self.min_available = min(self.min_available, self.available())
                    if self.stop.is_set():
                        return
            except BaseException as e:  # noqa: BLE001 - reported by the test
                self.error = e


def test_rolling_update_replaces_every_pod_within_max_unavailable(cluster: E2ECluster) -> None:
    c = cluster
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}
    c.apply(deployment(c, "web", 4, "v1", strategy=strategy))
    old = wait_ready(c, "app=web", 4)
    old_uids = {p["metadata"]["uid"] for p in old}
    old_hash = {p["metadata"]["labels"]["pod-template-hash"] for p in old}
    assert len(old_hash) == 1

    rec = AvailabilityRecorder(c, "app=web")
    t0 = time.monotonic()
    c.apply(deployment(c, "web", 4, "v2", strategy=strategy))
    r = c.ctl("rollout", "status", "deployment/web", "-n", NS, "--timeout", "90", timeout=120)
    assert "successfully rolled out" in (r.stdout + r.stderr), r.stdout + r.stderr
    new = wait_ready(c, "app=web", 4)
    took = time.monotonic() - t0
    rec.stop.set()
    assert rec.error is None, rec.error
    new_uids = {p["metadata"]["uid"] for p in new}
    assert not (new_uids & old_uids), "some pods were not replaced"
    assert {p["metadata"]["labels"]["pod-template-hash"] for p in new}.isdisjoint(old_hash)
    assert len(rec.seen - old_uids) >= 4
    assert rec.min_available >= 4 - 1, f"availability dropped to {rec.min_available} (maxUnavailable 1)"
    logs = c.ctl("logs", new[0]["metadata"]["name"], "-n", NS).stdout
    assert "started-v2" in logs, logs
    hist = c.ctl("rollout", "history", "deployment/web", "-n", NS).stdout
    assert re.search(r"^\s*2\b", hist, re.M), hist
    print(f"\nrolling update of 4 pods: {took:.1f}s, fewest available {rec.min_available}")
    c.ctl("delete", "deployment", "web", "-n", NS)


def test_crashing_container_restarts_with_backoff(cluster: E2ECluster) -> None:
    c = cluster
    c.apply(pod(c, "crash", container("main", "echo crashing-now; sleep 0.3; exit 3")))
    restarts = 0
    reasons: set[str] = set()
    delays: list[float] = []  # the back-off the agent reports ("back-off 2s restarting ..."), in order

    def backing_off() -> bool:
        nonlocal restarts
        cs = cstatus(c.pod(NS, "crash"))
        restarts = max(restarts, int(cs.get("restartCount", 0)))
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            reasons.add(waiting["reason"])
        m = re.match(r"back-off (\d+(?:\.\d+)?)s ", waiting.get("message") or "")
        if m and (not delays or float(m[1]) != delays[-1]):
            delays.append(float(m[1]))
        return restarts >= 4 and "CrashLoopBackOff" in reasons and len(delays) >= 2

    wait_for(
        backing_off,
        40,
        "4 restarts and two back-off delays",
        interval=0.1,
        diag=lambda: f"restarts {restarts}, reasons {reasons}, delays {delays}\n{c.describe_pods(NS)}",
    )
    # The schedule, not the stopwatch: each reported delay is the 1 s initial back-off doubled
    # (kubelet's rule), and they grow. The wall-clock gaps are for benchmarks, not for a loaded CI host.
    print(f"\nreported back-off delays: {delays}")
    assert all(d >= 1 and math.log2(d).is_integer() for d in delays), delays
    assert delays == sorted(set(delays)), f"back-off did not grow: {delays}"
    cs = cstatus(c.pod(NS, "crash"))
    term = (cs.get("lastState") or {}).get("terminated") or {}
    assert term.get("exitCode") == 3, cs
    assert (
        "crashing-now"
        in c.ctl("logs", "crash", "-n", NS, "--previous", check=False).stdout
        + c.ctl("logs", "crash", "-n", NS, check=False).stdout
    )
    desc = c.ctl("describe", "pod", "crash", "-n", NS).stdout
    assert "BackOff" in desc or "CrashLoopBackOff" in desc, desc
    c.ctl("delete", "pod", "crash", "-n", NS)


def test_failed_liveness_probe_restarts_container(cluster: E2ECluster) -> None:
    c = cluster
    probe = {
        "exec": {"command": ["cat", "/tmp/healthy"]},
        "periodSeconds": 1,
        "failureThreshold": 2,
        "timeoutSeconds": 2,
    }
    cmd = 'trap "exit 0" TERM; touch /tmp/healthy; echo alive; sleep 3; rm /tmp/healthy; while true; do sleep 0.2; done'
    c.apply(pod(c, "liveness", container("main", cmd, livenessProbe=probe)))
    p = wait_for(lambda: (x := c.pod(NS, "liveness")) and is_ready(x) and x, 30, "the liveness pod to run")
    first_id = runc_id(p)
    p = wait_for(
        lambda: (x := c.pod(NS, "liveness")) and cstatus(x).get("restartCount", 0) >= 1 and x,
        30,
        "the failed liveness probe to restart the container",
        diag=lambda: c.ctl("describe", "pod", "liveness", "-n", NS, check=False).stdout,
    )
    # The container came back as a new runc container and is healthy again (for 3 s).
    p = wait_for(
        lambda: (x := c.pod(NS, "liveness")) and is_ready(x) and x, 20, "the restarted container to run"
    )
    assert runc_id(p) != first_id
    assert c.runc_containers().get(runc_id(p)) == "running"
    assert first_id not in c.runc_containers()
    cs = cstatus(p)
    print("\nafter the liveness restart:", cs)
    assert cs["restartCount"] >= 1 and (cs.get("lastState") or {}).get("terminated"), cs
    c.ctl("delete", "pod", "liveness", "-n", NS)


def test_logs_and_exec(cluster: E2ECluster) -> None:
    c = cluster
    c.apply(pod(c, "shell", container("main", "echo hello-e2e-logs; echo to-stderr >&2; " + LOOP)))
    p = wait_for(lambda: (x := c.pod(NS, "shell")) and is_ready(x) and x, 30, "the shell pod to run")
    logs = wait_for(
        lambda: (o := c.ctl("logs", "shell", "-n", NS).stdout) and "hello-e2e-logs" in o and o, 10, "logs"
    )
    assert "to-stderr" in logs
    r = c.ctl("exec", "shell", "-n", NS, "--", "sh", "-c", "echo $((6*7)); hostname; ip -4 addr show eth0")
    lines = r.stdout.splitlines()
    assert lines[0] == "42", r.stdout
    assert lines[1] == "shell", r.stdout
    assert p["status"]["podIP"] in r.stdout  # exec runs inside the pod's network namespace
    r = c.ctl("exec", "shell", "-n", NS, "--", "sh", "-c", "echo oops >&2; exit 7", check=False)
    assert r.returncode == 7 and "oops" in r.stderr, (r.returncode, r.stdout, r.stderr)
    r = c.ctl("exec", "nosuchpod", "-n", NS, "--", "true", check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, (
        r.stderr
    )
    c.ctl("delete", "pod", "shell", "-n", NS)


def test_unschedulable_pod_gets_event_then_schedules_when_a_node_fits(cluster: E2ECluster) -> None:
    c = cluster
    c.apply(
        pod(c, "picky", container("main", LOOP), local=False, nodeSelector={"e2e.centaurus.io/fit": "yes"})
    )

    def failed() -> list[dict[str, Any]] | None:
        ev = [e for e in c.events(NS, "picky") if e.get("reason") == "FailedScheduling"]
        return ev or None

    ev = wait_for(failed, 20, "a FailedScheduling event")
    assert "0/3 nodes are available" in ev[0]["message"], ev[0]
    assert "node affinity/selector" in ev[0]["message"], ev[0]
    assert ev[0].get("type") == "Warning"
    p = c.pod(NS, "picky")
    assert p is not None and not p["spec"].get("nodeName")
    desc = c.ctl("describe", "pod", "picky", "-n", NS).stdout
    assert "FailedScheduling" in desc, desc

    # The local node gets the label: the pod fits now and is scheduled without being recreated.
    c.api.patch("nodes", c.node, {"metadata": {"labels": {"e2e.centaurus.io/fit": "yes"}}})
    try:
        p = wait_for(
            lambda: (x := c.pod(NS, "picky")) and is_ready(x) and x, 30, "the pod to be scheduled and run"
        )
        assert p["spec"]["nodeName"] == c.node
        assert any(e.get("reason") == "Scheduled" for e in c.events(NS, "picky"))
    finally:
        c.api.patch("nodes", c.node, {"metadata": {"labels": {"e2e.centaurus.io/fit": None}}})
    c.ctl("delete", "pod", "picky", "-n", NS)


def test_agent_failure_makes_node_not_ready_and_pods_move_to_hollow_nodes(cluster: E2ECluster) -> None:
    c = cluster
    hollow = [n["metadata"]["name"] for n in c.api.list("nodes")["items"] if n["metadata"]["name"] != c.node]
    assert len(hollow) == 2, hollow
    # Cordon the hollow nodes so the ReplicaSet's pods start on the real node ...
    for h in hollow:
        c.api.patch("nodes", h, {"spec": {"unschedulable": True}})
    try:
        c.apply(deployment(c, "survivor", 2, "v1", local=False))
        pods = wait_ready(c, "app=survivor", 2)
    finally:
        for h in hollow:
            c.api.patch("nodes", h, {"spec": {"unschedulable": False}})
    assert {p["spec"]["nodeName"] for p in pods} == {c.node}
    old_uids = {p["metadata"]["uid"] for p in pods}
    old_ids = {runc_id(p) for p in pods}

    # ... then the node agent stops answering. The supervisor would restart a killed agent within a
    # second (faster than any grace period), so it is frozen instead: a hung agent, no lease renewals.
    agent_pid = c.pid("agent")
    assert agent_pid, "no agent pid file"
    os.kill(agent_pid, signal.SIGSTOP)
    t0 = time.monotonic()
    try:

        def not_ready() -> dict[str, Any] | None:
            n = c.api.get("nodes", c.node)
            return n if (condition(n, "Ready") or {}).get("status") == "Unknown" else None

        wait_for(not_ready, 30, "the node to become NotReady (Unknown)")
        t_notready = time.monotonic() - t0

        # The node lifecycle controller writes the Unknown condition and the taint in separate
        # updates: the first read that shows Unknown need not show the taint yet.
        def tainted() -> dict[str, Any] | None:
            n = c.api.get("nodes", c.node)
            keys = {t.get("key") for t in n["spec"].get("taints") or []}
            return n if "node.kubernetes.io/unreachable" in keys else None

        wait_for(
            tainted,
            30,
            "the unreachable taint on the NotReady node",
            diag=lambda: repr(c.api.get("nodes", c.node).get("spec")),
        )
        got = c.ctl("get", "nodes").stdout
        assert re.search(rf"^{re.escape(c.node)}\s+NotReady", got, re.M), got

        def moved() -> list[dict[str, Any]] | None:
            ps = c.pods(NS, "app=survivor")
            ok = (
                len(ps) == 2
                and all(is_ready(p) and p["spec"]["nodeName"] in hollow for p in ps)
                and not ({p["metadata"]["uid"] for p in ps} & old_uids)
            )
            return ps if ok else None

        wait_for(
            moved,
            30,
            "the ReplicaSet's pods to come back on the hollow nodes",
            diag=lambda: c.describe_pods(NS),
        )
        t_moved = time.monotonic() - t0
        print(
            f"\nagent frozen: NotReady after {t_notready:.1f}s, pods running elsewhere after {t_moved:.1f}s"
        )
        reasons = {e.get("reason") for e in c.api.list("events")["items"]}
        assert "NodeNotReady" in reasons and "TaintManagerEviction" in reasons, reasons
    finally:
        os.kill(agent_pid, signal.SIGCONT)

    # The agent comes back: the node is Ready again and the evicted pods' containers are removed.
    wait_for(
        lambda: (condition(c.api.get("nodes", c.node), "Ready") or {}).get("status") == "True",
        30,
        "the node to be Ready again",
    )
    wait_for(
        lambda: not (old_ids & set(c.runc_containers())),
        30,
        "the returning agent to remove the evicted pods' containers",
        diag=lambda: repr(c.runc_containers()),
    )

    def node_taints() -> list[dict[str, Any]]:
        taints = c.api.get("nodes", c.node)["spec"].get("taints") or []
        return [t for t in taints if t["key"].startswith("node.kubernetes.io/")]

    # as on the way down, the condition and the taints are separate updates: wait for both
    wait_for(
        lambda: not node_taints(),
        30,
        "the node's unreachable taints to be removed",
        diag=lambda: repr(node_taints()),
    )
    c.ctl("delete", "deployment", "survivor", "-n", NS)


def test_teardown_leaves_nothing_behind(cluster: E2ECluster) -> None:
    assert cluster.pod_uids, "the pod recorder saw no pods"
    cluster.teardown()
