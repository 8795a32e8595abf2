"""``centaurusctl vm snapshot|snapshots|restore`` and ``get actions`` against a real agent.

The cluster is the one of :mod:`tests.agent.test_actions`: an API server and a node agent
whose VM runtime is libvirt's in-process ``test:///default`` driver, so no guest runs but
every Action goes the real way (POST pods/NAME/action -> Action -> the agent -> status).
Before: ``--snapshot-id s1`` was ignored (the snapshot got a generated name), a VM's
snapshots could not be listed, and a failed Action showed COMPLETE=True and nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ctl.client import Client
from tests.agent.conftest import AgentProcess, wait_for
from tests.agent.test_actions import NODE, cluster, vm_pod  # noqa: F401 - the module's cluster fixture
from tests.cli.kubeconfigs import two_contexts
from tests.cluster import ROOT, ApiServerProcess

pytestmark = pytest.mark.slow


def ctl(kc: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctl", *args],
        env={**os.environ, "KUBECONFIG": str(kc)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )


async def test_vm_snapshot_names_list_and_failed_actions(
    cluster: tuple[ApiServerProcess, AgentProcess],  # noqa: F811
    tmp_path: Path,
) -> None:
    api, agent = cluster
    kc = two_contexts(tmp_path / "kubeconfig", api.url)
    c: Client = api.client()
    try:
        p = await c.create(vm_pod("vmc"))
        await c.bind(p, NODE)

        async def running() -> bool:
            x = await c.get("pods", "vmc")
            return (x["status"].get("virtualMachineStatus") or {}).get("powerState") == "running"

        await wait_for(running, 30, what="VM pod vmc running", log=agent.log)
    finally:
        await c.close()
    r = ctl(kc, "vm", "snapshot", "vmc", "--snapshot-id", "s1")
    assert r.returncode == 0 and "snapshotID=s1" in r.stdout, (r.stdout, r.stderr)
    r = ctl(kc, "vm", "snapshot", "vmc", "--snapshot-id", "s1")
    assert r.returncode == 1 and r.stderr.strip().endswith("snapshot 's1' already exists"), r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
    r = ctl(kc, "vm", "snapshot", "vmc", "--snapshot-id", "no/slash")
    assert r.returncode == 1 and "invalid snapshot name" in r.stderr, r.stderr
    r = ctl(kc, "vm", "snapshot", "vmc")
    assert r.returncode == 0 and "snapshotID=snap-" in r.stdout, r.stderr
    auto = r.stdout.split("snapshotID=")[1].split(",")[0].split()[0]
    r = ctl(kc, "vm", "snapshots", "vmc")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["SNAPSHOT", "TAKEN", "ACTION"]
    assert [ln.split()[0] for ln in lines[1:]] == ["s1", auto], r.stdout
    doc = json.loads(ctl(kc, "vm", "snapshots", "vmc", "-o", "json").stdout)
    assert [s["snapshotID"] for s in doc["snapshots"]] == ["s1", auto]
    r = ctl(kc, "vm", "restore", "vmc", "--snapshot-id", "s1")
    assert r.returncode == 0 and "restoreSuccessful=True" in r.stdout and "snapshotID=s1" in r.stdout, (
        r.stderr
    )
    # the failed Actions say why in get actions, not just COMPLETE=True
    table = ctl(kc, "get", "actions").stdout.splitlines()
    assert "ERROR" in table[0].split(), table[0]
    failed = [ln for ln in table if "already exists" in ln]
    assert len(failed) == 1 and "True" in failed[0].split(), table
    r = ctl(kc, "vm", "snapshots", "nope")
    assert r.returncode == 1 and "NotFound" in r.stderr, r.stderr
