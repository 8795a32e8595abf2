"""``centaurusctl create job|cronjob`` and the real kubectl (``create job``, ``create cronjob``,
``create job --from=cronjob/X``, ``get jobs``/``cronjobs`` columns from the server's Table,
``api-resources``) against a real API server process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cli.kubeconfigs import two_contexts
from tests.cluster import ROOT, ApiServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServerProcess, Path]]:
    d: Path = tmp_path_factory.mktemp("batchcli")
    server = ApiServerProcess(d / "api").start()
    kc = d / "kubeconfig"
    two_contexts(kc, server.url)
    try:
        with server.sync_client() as c:
            c.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})
        yield server, kc
    finally:
        server.stop()


def run(kc: Path, *args: str, tool: str = "ctl") -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "ctl"] if tool == "ctl" else [tool]
    env = {**os.environ, "KUBECONFIG": str(kc)}
    return subprocess.run([*cmd, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def ok(kc: Path, *args: str, tool: str = "ctl") -> str:
    r = run(kc, *args, tool=tool)
    assert r.returncode == 0, f"{args}: {r.returncode}\n{r.stderr}"
    return r.stdout


def fails(kc: Path, *args: str, expect: str) -> None:
    r = run(kc, *args)
    assert r.returncode == 1 and expect in r.stderr, (args, r.returncode, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr


def test_centaurusctl_create_job_and_cronjob(api: tuple[ApiServerProcess, Path]) -> None:
    srv, kc = api
    out = ok(kc, "create", "job", "once", "--image", "busybox:1", "-n", "demo", "--", "sh", "-c", "echo hi")
    assert out.strip() == "job.batch/once created"
    with srv.sync_client() as c:
        j = c.get("jobs", "once", namespace="demo")
    pod = j["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"] == [
        {**pod["containers"][0], "name": "once", "image": "busybox:1", "command": ["sh", "-c", "echo hi"]}
    ]
    out = ok(
        kc, "create", "cronjob", "tick", "--image", "busybox:1", "--schedule", "*/5 * * * *", "-n", "demo"
    )
    assert out.strip() == "cronjob.batch/tick created"
    out = ok(kc, "create", "job", "manual", "--from", "cronjob/tick", "-n", "demo")
    assert out.strip() == "job.batch/manual created"
    with srv.sync_client() as c:
        cj = c.get("cronjobs", "tick", namespace="demo")
        m = c.get("jobs", "manual", namespace="demo")
    assert cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    assert m["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert m["metadata"]["ownerReferences"][0]["uid"] == cj["metadata"]["uid"]
    assert m["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"
    # --dry-run=client prints and creates nothing
    doc = yaml.safe_load(ok(kc, "create", "job", "dry", "--image", "x", "--dry-run", "client", "-n", "demo"))
    assert doc["kind"] == "Job" and doc["metadata"]["name"] == "dry"
    assert "dry" not in ok(kc, "get", "jobs", "-n", "demo", "-o", "name")
    # get: kubectl's columns
    table = ok(kc, "get", "jobs", "-n", "demo")
    assert table.split("\n")[0].split() == ["NAME", "COMPLETIONS", "DURATION", "AGE"]
    assert "0/1" in table
    wide = ok(kc, "get", "jobs", "once", "-n", "demo", "-o", "wide")
    assert wide.split("\n")[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"] and "busybox:1" in wide
    assert f"batch.kubernetes.io/controller-uid={j['metadata']['uid']}" in wide
    wide = ok(kc, "get", "cronjobs", "tick", "-n", "demo", "-o", "wide")
    assert wide.split("\n")[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"] and "busybox:1" in wide
    table = ok(kc, "get", "cronjobs", "-n", "demo")
    assert table.split("\n")[0].split() == [
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST",
        "SCHEDULE",
        "AGE",
    ]
    assert "*/5 * * * *" in table and "<none>" in table
    desc = ok(kc, "describe", "job", "once", "-n", "demo")
    assert "once" in desc and "busybox:1" in desc, desc
    # bad input: one line, exit 1, nothing created
    fails(
        kc,
        "create",
        "cronjob",
        "bad",
        "--image",
        "x",
        "--schedule",
        "61 * * * *",
        "-n",
        "demo",
        expect="minute",
    )
    fails(kc, "create", "job", "nope", "--from", "cronjob/missing", "-n", "demo", expect="not found")
    fails(kc, "create", "job", "nope", "--from", "deployment/x", "-n", "demo", expect="cronjob/NAME")
    fails(kc, "create", "job", "nope", "-n", "demo", expect="--image")
    fails(kc, "create", "job", "UPPER", "--image", "x", "-n", "demo", expect="metadata.name")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl(api: tuple[ApiServerProcess, Path]) -> None:
    srv, kc = api
    k = "kubectl"
    resources = ok(kc, "api-resources", tool=k)
    lines = {tuple(line.split()[:1]) + (line.split()[-1],) for line in resources.splitlines()[1:]}
    assert ("jobs", "Job") in lines and ("cronjobs", "CronJob") in lines
    assert any(line.split()[0] == "cronjobs" and "cj" in line.split() for line in resources.splitlines())
    ok(kc, "-n", "demo", "create", "job", "kj", "--image=busybox:1", "--", "echo", "hi", tool=k)
    ok(kc, "-n", "demo", "create", "cronjob", "kc", "--image=busybox:1", "--schedule=*/10 * * * *", tool=k)
    out = ok(kc, "-n", "demo", "create", "job", "kc-now", "--from=cronjob/kc", tool=k)
    assert "job.batch/kc-now created" in out
    with srv.sync_client() as c:
        j = c.get("jobs", "kc-now", namespace="demo")
        cj = c.get("cronjobs", "kc", namespace="demo")
    assert j["metadata"]["ownerReferences"][0]["uid"] == cj["metadata"]["uid"]
    table = ok(kc, "-n", "demo", "get", "jobs", tool=k)
    assert table.split("\n")[0].split() == [
        "NAME",
        "STATUS",
        "COMPLETIONS",
        "DURATION",
        "AGE",
    ] or table.split("\n")[0].split() == ["NAME", "COMPLETIONS", "DURATION", "AGE"], table
    assert "kj" in table and "kc-now" in table
    table = ok(kc, "-n", "demo", "get", "cronjobs", tool=k)
    assert "SCHEDULE" in table.split("\n")[0] and "*/10 * * * *" in table
    ok(kc, "-n", "demo", "get", "cj", "kc", "-o", "yaml", tool=k)
    assert "Failed pods before the Job is Failed" in ok(kc, "explain", "jobs.spec.backoffLimit", tool=k)
    assert "time zone" in ok(kc, "explain", "cronjob.spec.timeZone", tool=k)
    desc = ok(kc, "-n", "demo", "describe", "job", "kj", tool=k)
    assert "Name:" in desc and "kj" in desc and "Parallelism:" in desc and "busybox:1" in desc, desc
    desc = ok(kc, "-n", "demo", "describe", "cronjob", "kc", tool=k)
    assert "Schedule:" in desc and "*/10 * * * *" in desc, desc
