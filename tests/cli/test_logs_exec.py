"""``centaurusctl logs``/``exec`` and the client's ``log_stream``/``logs``/``exec`` through a real cluster path.

A real API server and a node agent with one hollow node (no root needed): a pod bound to
it is run by the hollow runtime, which serves a log and answers exec with the exit code
its annotation asks for. The API server proxies ``pods/NAME/log`` and ``pods/NAME/exec``
to the agent, so these run the same path as with runc, minus the containers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cluster import ROOT, ApiServerProcess, RoleProcess
from tests.helpers import eventually_sync

pytestmark = pytest.mark.slow

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "talk", "annotations": {"hollow.centaurus.io/exec-exit-code": "3"}},
    "spec": {"containers": [{"name": "c", "image": "busybox:latest"}]},
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServerProcess, Path]]:
    d: Path = tmp_path_factory.mktemp("logs")
    api = ApiServerProcess(d / "api").start()
    agent = RoleProcess(
        "agent",
        ["--server", api.url, "--hollow-nodes", "1", "--data-dir", str(d / "agent"), "--endpoint-port", "0"],
        d / "agent.log",
    ).start()
    kc = d / "kubeconfig"
    kc.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": api.url}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    try:
        with api.sync_client() as c:
            tail = lambda: agent.log()[-2000:]  # noqa: E731
            eventually_sync(lambda: c.list("nodes")["items"], 30, 0.2, "the agent's node", diag=tail)
            node = c.list("nodes")["items"][0]["metadata"]["name"]
            pod = c.create(POD)
            c.bind(pod, node)
            eventually_sync(
                lambda: (c.get("pods", "talk").get("status") or {}).get("phase") == "Running",
                30,
                0.2,
                "pod talk Running",
                diag=tail,
            )
        yield api, kc
    finally:
        agent.stop()
        api.stop()


def ctl(kc: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctl", *args],
        env={**os.environ, "KUBECONFIG": str(kc)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_client_logs_and_exec(cluster: tuple[ApiServerProcess, Path]) -> None:
    api, _ = cluster
    with api.sync_client() as c:
        whole = c.logs("talk", container="c")
        assert b"hollow container c" in whole
        assert b"".join(c.log_stream("talk", "default", container="c")) == whole
        assert c.exec("talk", ["true"], container="c") == {"exitCode": 3, "stdout": "", "stderr": ""}


def test_cli_logs(cluster: tuple[ApiServerProcess, Path]) -> None:
    _, kc = cluster
    r = ctl(kc, "logs", "talk", "-c", "c")
    assert r.returncode == 0 and "hollow container c" in r.stdout, r.stderr
    r2 = ctl(kc, "logs", "pod/talk", "--tail", "1")
    assert r2.returncode == 0 and len(r2.stdout.splitlines()) == 1 and r2.stdout in r.stdout, r2.stderr
    r = ctl(kc, "logs", "nope")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "NotFound" in r.stderr, r.stderr
    r = ctl(kc, "logs", "talk", "-c", "zzz")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr


def test_cli_exec(cluster: tuple[ApiServerProcess, Path]) -> None:
    _, kc = cluster
    r = ctl(kc, "exec", "talk", "--", "true")
    assert r.returncode == 3 and "Traceback" not in r.stderr, r.stderr
    r = ctl(kc, "exec", "talk")
    assert r.returncode == 1 and "at least one command" in r.stderr
    r = ctl(kc, "exec", "nope", "--", "true")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "NotFound" in r.stderr, r.stderr


def _owned_pods(api: ApiServerProcess) -> None:
    """Pods web-1 and web-2 (app=web) running on the hollow node, a Deployment and a ReplicaSet selecting them."""
    with api.sync_client() as c:
        if any(p["metadata"]["name"] == "web-1" for p in c.list("pods")["items"]):
            return
        node = c.list("nodes")["items"][0]["metadata"]["name"]
        template = {"metadata": {"labels": {"app": "web"}}, "spec": POD["spec"]}
        for kind, api_version in (("Deployment", "apps/v1"), ("ReplicaSet", "apps/v1")):
            c.create(
                {
                    "apiVersion": api_version,
                    "kind": kind,
                    "metadata": {"name": "web"},
                    "spec": {
                        "replicas": 2,
                        "selector": {"matchLabels": {"app": "web"}},
                        "template": template,
                    },
                }
            )
        for n in ("web-1", "web-2"):
            pod = c.create({**POD, "metadata": {"name": n, "labels": {"app": "web"}}})
            c.bind(pod, node)
        eventually_sync(
            lambda: all(
                (c.get("pods", n).get("status") or {}).get("phase") == "Running" for n in ("web-1", "web-2")
            ),
            30,
            0.2,
            "pods web-1 and web-2 Running",
        )


def test_cli_logs_of_owners_selectors_prefix_and_timestamps(cluster: tuple[ApiServerProcess, Path]) -> None:
    """README's `logs -n demo deploy/hello`: TYPE/NAME of a deployment or replica set reads one of its pods."""
    api, kc = cluster
    _owned_pods(api)
    for target in ("deploy/web", "deployment/web", "rs/web", "replicasets/web"):
        r = ctl(kc, "-n", "default", "logs", target)
        assert r.returncode == 0 and "hollow container c" in r.stdout, (target, r.stderr)
        assert "Found 2 pods, using pod/web-1" in r.stderr, (target, r.stderr)
    r = ctl(kc, "logs", "-l", "app=web", "--prefix")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines and all(ln.startswith(("[pod/web-1/c] ", "[pod/web-2/c] ")) for ln in lines), lines
    assert {ln.split(" ", 1)[0] for ln in lines} == {"[pod/web-1/c]", "[pod/web-2/c]"}
    r = ctl(kc, "logs", "deploy/web", "--prefix", "--tail", "1")
    assert r.returncode == 0 and r.stdout.startswith("[pod/web-1/c] ") and len(r.stdout.splitlines()) == 1
    r = ctl(kc, "logs", "talk", "--timestamps")
    assert r.returncode == 0 and r.stdout, r.stderr

    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z ", ln) for ln in r.stdout.splitlines()), (
        r.stdout
    )
    for args, expect in (
        (["logs", "deploy/nope"], "NotFound"),
        (["logs", "configmap/x"], "cannot read logs of 'configmap'"),
        (["logs", "-l", "app=none"], "no pods match"),
        (["logs", "talk", "-l", "app=web"], "only one of"),
    ):
        r = ctl(kc, *args)
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and expect in r.stderr, (args, r.stderr)


def test_cli_logs_of_a_job(cluster: tuple[ApiServerProcess, Path]) -> None:
    """job/NAME: the Job's pods (by its selector, or by ownership when it names none)."""
    api, kc = cluster
    with api.sync_client() as c:
        node = c.list("nodes")["items"][0]["metadata"]["name"]
        job = c.create(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": "once"},
                "spec": {"template": {"spec": {**POD["spec"], "restartPolicy": "Never"}}},
            }
        )
        ref = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": "once",
            "uid": job["metadata"]["uid"],
            "controller": True,
        }
        labels = (((job.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
        pod = c.create({**POD, "metadata": {"name": "once-abc", "labels": labels, "ownerReferences": [ref]}})
        c.bind(pod, node)
        eventually_sync(
            lambda: (c.get("pods", "once-abc").get("status") or {}).get("phase") == "Running",
            30,
            0.2,
            "once-abc",
        )
    r = ctl(kc, "logs", "job/once", "--prefix")
    assert r.returncode == 0 and r.stdout.startswith("[pod/once-abc/c] hollow container c"), (
        r.stdout,
        r.stderr,
    )
