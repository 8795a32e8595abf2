"""Deployment controller and the rollout/scale CLI against a real API server and controllers process.

The rolling-update test watches every pod event while the fake kubelet starts pods
(with a readiness delay) and removes deleted ones, and checks after each event that the
live pods never exceed ``replicas + maxSurge`` and the ready ones never drop below
``replicas - maxUnavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

import pytest

from ctl.client import Client
from ctl.client.kubeconfig import add_context
from tests.cluster import ROOT, ApiServerProcess, RoleProcess
from tests.controllers.conftest import FakeKubelet, deployment, eventually, live, pods_of

REV = "deployment.kubernetes.io/revision"


@pytest.fixture(scope="module")
def kubeconfig(
    cluster: tuple[ApiServerProcess, RoleProcess], tmp_path_factory: pytest.TempPathFactory
) -> str:
    p = tmp_path_factory.mktemp("kc") / "kubeconfig"
    add_context(p, "test", cluster[0].url, "admin", tenant="system")
    return str(p)


async def ctl(kubeconfig: str, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ctl",
        *args,
        "--kubeconfig",
        kubeconfig,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode(), err.decode()


async def complete(client: Client, ns: str, name: str) -> bool:
    d = await client.get("deployments", name, namespace=ns)
    st = d.get("status") or {}
    want = d["spec"]["replicas"]
    return (
        st.get("observedGeneration") == d["metadata"]["generation"]
        and st.get("updatedReplicas") == want
        and st.get("replicas") == want
        and st.get("availableReplicas") == want
    )


async def owned_rs(client: Client, ns: str, name: str) -> list[dict[str, Any]]:
    d = await client.get("deployments", name, namespace=ns)
    return [
        r
        for r in (await client.list("replicasets", ns))["items"]
        if any(o["uid"] == d["metadata"]["uid"] for o in r["metadata"].get("ownerReferences") or [])
    ]


class PodObserver:
    """Follows the pods of a namespace through a watch and checks a predicate after every event."""

    def __init__(self, client: Client, ns: str) -> None:
        self.client, self.ns = client, ns
        self.pods: dict[str, dict[str, Any]] = {}
        self.max_live = 0
        self.min_ready: int | None = None
        self.violations: list[str] = []
        self.events = 0
        self.task: asyncio.Task[None] | None = None
        self.checks: list[Any] = []

    async def start(self) -> PodObserver:
        lst = await self.client.list("pods", self.ns)
        self.pods = {p["metadata"]["name"]: p for p in lst["items"]}
        self.task = asyncio.create_task(self._run(lst["metadata"]["resourceVersion"]))
        return self

    async def _run(self, rv: str) -> None:
        async for typ, p in self.client.watch("pods", self.ns, resource_version=rv):
            if typ == "DELETED":
                self.pods.pop(p["metadata"]["name"], None)
            else:
                self.pods[p["metadata"]["name"]] = p
            self.events += 1
            lv = [q for q in self.pods.values() if not q["metadata"].get("deletionTimestamp")]
            ready = [
                q
                for q in lv
                if any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (q.get("status") or {}).get("conditions") or []
                )
            ]
            self.max_live = max(self.max_live, len(lv))
            self.min_ready = len(ready) if self.min_ready is None else min(self.min_ready, len(ready))
            for check in self.checks:
                msg = check(lv, ready, self.pods)
                if msg:
                    self.violations.append(f"rv {p['metadata'].get('resourceVersion')}: {msg}")

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


async def test_rolling_update_respects_surge_and_unavailable(
    client: Client, ns: str, kubeconfig: str
) -> None:
    k = await FakeKubelet(client, ns, ready_delay=0.3).start()
    try:
        d = deployment(
            "web",
            4,
            {"app": "web"},
            strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}},
        )
        await client.create(d, namespace=ns)
        await eventually(lambda: complete(client, ns, "web"), timeout=30, what="first rollout")
        rs1 = await owned_rs(client, ns, "web")
        assert len(rs1) == 1 and rs1[0]["metadata"]["annotations"][REV] == "1"
        h = rs1[0]["metadata"]["labels"]["pod-template-hash"]
        assert rs1[0]["metadata"]["name"] == f"web-{h}"
        assert rs1[0]["spec"]["selector"]["matchLabels"]["pod-template-hash"] == h
        obs = await PodObserver(client, ns).start()
        # 4 replicas, maxSurge 1 -> at most 5 live pods; maxUnavailable 25% of 4 = 1 -> at least 3 ready.
        obs.checks.append(lambda lv, ready, _: f"{len(lv)} live pods > 5" if len(lv) > 5 else None)
        obs.checks.append(lambda lv, ready, _: f"{len(ready)} ready pods < 3" if len(ready) < 3 else None)
        d = await client.get("deployments", "web", namespace=ns)
        d["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
        d["metadata"].setdefault("annotations", {})["kubernetes.io/change-cause"] = "image busybox:2"
        await client.update(d)
        rc, out, err = await ctl(
            kubeconfig, "rollout", "status", "deployment/web", "-n", ns, "--timeout", "40"
        )
        assert rc == 0, err
        assert 'deployment "web" successfully rolled out' in out
        await asyncio.sleep(0.3)
        await obs.stop()
        assert obs.events > 10
        assert not obs.violations, obs.violations[:5]
        assert obs.max_live == 5  # it did surge
        pods = live(await pods_of(client, ns, "app=web"))
        assert len(pods) == 4 and all(p["spec"]["containers"][0]["image"] == "busybox:2" for p in pods)
        d = await client.get("deployments", "web", namespace=ns)
        assert d["metadata"]["annotations"][REV] == "2"
        st = d["status"]
        assert st["updatedReplicas"] == 4 and st["readyReplicas"] == 4 and st["unavailableReplicas"] == 0
        conds = {c["type"]: c for c in st["conditions"]}
        assert conds["Available"]["status"] == "True"
        assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
        # Old ReplicaSet kept at 0 for history.
        rss = await owned_rs(client, ns, "web")
        assert sorted(r["spec"]["replicas"] for r in rss) == [0, 4]
        # Events: ScalingReplicaSet on the deployment.
        evs = (await client.list("events", ns))["items"]
        assert any(
            e["reason"] == "ScalingReplicaSet" and e["involvedObject"]["kind"] == "Deployment" for e in evs
        )

        # history / undo through the CLI.
        rc, out, err = await ctl(kubeconfig, "rollout", "history", "deployment/web", "-n", ns)
        assert rc == 0, err
        assert "image busybox:2" in out and "1" in out
        rc, out, err = await ctl(kubeconfig, "rollout", "undo", "deployment/web", "-n", ns)
        assert rc == 0, err
        assert "rolled back" in out
        await eventually(lambda: _image_is(client, ns, "busybox:1", 4), timeout=40, what="undo rolled out")
        await eventually(lambda: complete(client, ns, "web"), timeout=20)
        rss = await owned_rs(client, ns, "web")
        assert len(rss) == 2  # the old ReplicaSet came back as the new one
        back = next(r for r in rss if r["metadata"]["name"] == rs1[0]["metadata"]["name"])
        assert back["metadata"]["annotations"][REV] == "3" and back["spec"]["replicas"] == 4
        rc, out, err = await ctl(
            kubeconfig, "rollout", "undo", "deployment/web", "-n", ns, "--to-revision", "9"
        )
        assert rc == 1 and "revision 9" in err and len(err.strip().splitlines()) == 1

        # restart: a new template annotation, so a new ReplicaSet and all pods replaced.
        before = {p["metadata"]["name"] for p in live(await pods_of(client, ns, "app=web"))}
        rc, out, err = await ctl(kubeconfig, "rollout", "restart", "deployment/web", "-n", ns)
        assert rc == 0 and "restarted" in out, err
        d = await client.get("deployments", "web", namespace=ns)
        assert "kubectl.kubernetes.io/restartedAt" in d["spec"]["template"]["metadata"]["annotations"]

        async def replaced() -> bool:
            now = {p["metadata"]["name"] for p in live(await pods_of(client, ns, "app=web"))}
            return len(now) == 4 and not (now & before) and await complete(client, ns, "web")

        await eventually(replaced, timeout=40, what="restart replaced all pods")

        # scale through the CLI (scale subresource).
        rc, out, err = await ctl(kubeconfig, "scale", "deployment/web", "--replicas", "2", "-n", ns)
        assert rc == 0 and "scaled" in out, err
        await eventually(lambda: _image_is(client, ns, "busybox:1", 2), what="scaled to 2")
        rc, out, err = await ctl(kubeconfig, "scale", "deployment/nope", "--replicas", "2", "-n", ns)
        assert rc == 1 and "not found" in err
    finally:
        await k.stop()


async def _image_is(client: Client, ns: str, image: str, n: int) -> bool:
    pods = live(await pods_of(client, ns))
    return len(pods) == n and all(p["spec"]["containers"][0]["image"] == image for p in pods)


async def test_recreate_never_overlaps(client: Client, ns: str) -> None:
    k = await FakeKubelet(client, ns).start()
    obs: PodObserver | None = None
    try:
        await client.create(deployment("db", 3, {"app": "db"}, strategy={"type": "Recreate"}), namespace=ns)
        await eventually(lambda: complete(client, ns, "db"), timeout=30)
        obs = await PodObserver(client, ns).start()

        def overlap(lv: list, ready: list, allpods: dict) -> str | None:
            hashes = {p["metadata"]["labels"]["pod-template-hash"] for p in allpods.values()}
            return f"pods of two templates exist at once: {hashes}" if len(hashes) > 1 else None

        obs.checks.append(overlap)
        d = await client.get("deployments", "db", namespace=ns)
        d["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
        await client.update(d)
        await eventually(lambda: _image_is(client, ns, "busybox:2", 3), timeout=30, what="recreated")
        await eventually(lambda: complete(client, ns, "db"), timeout=20)
        assert not obs.violations, obs.violations[:3]
    finally:
        if obs:
            await obs.stop()
        await k.stop()


async def test_revision_history_limit_and_pause(client: Client, ns: str, kubeconfig: str) -> None:
    k = await FakeKubelet(client, ns).start()
    try:
        await client.create(deployment("api", 2, {"app": "api"}, revisionHistoryLimit=1), namespace=ns)
        await eventually(lambda: complete(client, ns, "api"), timeout=30)
        for i in range(2, 5):
            d = await client.get("deployments", "api", namespace=ns)
            d["spec"]["template"]["spec"]["containers"][0]["image"] = f"busybox:{i}"
            await client.update(d)
            await eventually(lambda i=i: _image_is(client, ns, f"busybox:{i}", 2), timeout=30)
            await eventually(lambda: complete(client, ns, "api"), timeout=20)

        async def trimmed() -> bool:
            return len(await owned_rs(client, ns, "api")) == 2

        await eventually(trimmed, what="old ReplicaSets beyond the history limit deleted")
        revs = sorted(int(r["metadata"]["annotations"][REV]) for r in await owned_rs(client, ns, "api"))
        assert revs == [3, 4]
        # Paused: template changes wait, scaling still works.
        rc, out, err = await ctl(kubeconfig, "rollout", "pause", "deployment/api", "-n", ns)
        assert rc == 0, err
        d = await client.get("deployments", "api", namespace=ns)
        d["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:9"
        d["spec"]["replicas"] = 3
        await client.update(d)
        await eventually(lambda: _image_is(client, ns, "busybox:4", 3), what="paused deployment scaled")
        await asyncio.sleep(1.0)
        assert len(await owned_rs(client, ns, "api")) == 2
        d = await client.get("deployments", "api", namespace=ns)
        assert any(c.get("reason") == "DeploymentPaused" for c in d["status"]["conditions"])
        rc, out, err = await ctl(kubeconfig, "rollout", "resume", "deployment/api", "-n", ns)
        assert rc == 0, err
        await eventually(lambda: _image_is(client, ns, "busybox:9", 3), timeout=30, what="resumed rollout")
    finally:
        await k.stop()


def test_cli_errors_are_one_line(kubeconfig: str, tmp_path: Path) -> None:
    import subprocess

    r = subprocess.run(
        [sys.executable, "-m", "ctl", "rollout", "status", "pod/x", "--kubeconfig", kubeconfig],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "not supported" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "ctl", "rollout", "history", "deployment/none", "--kubeconfig", kubeconfig],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 1 and "not found" in r.stderr and "Traceback" not in r.stderr
