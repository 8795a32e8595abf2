"""``centaurusctl logs``/``exec`` and the client's ``log_stream``/``logs``/``exec`` through a real cluster path.

A real API server and a node agent with one hollow node (no root needed): a pod bound to
it is run by the hollow runtime, which serves a log and answers exec with the exit code
its annotation asks for. The API server proxies ``pods/NAME/log`` and ``pods/NAME/exec``
to the agent, so these run the same path as with runc, minus the containers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cluster import ROOT, ApiServerProcess, RoleProcess

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
            deadline = time.monotonic() + 30
            while not c.list("nodes")["items"]:
                assert time.monotonic() < deadline, agent.log()[-2000:]
                time.sleep(0.2)
            node = c.list("nodes")["items"][0]["metadata"]["name"]
            pod = c.create(POD)
            c.bind(pod, node)
            while (c.get("pods", "talk").get("status") or {}).get("phase") != "Running":
                assert time.monotonic() < deadline, agent.log()[-2000:]
                time.sleep(0.2)
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
