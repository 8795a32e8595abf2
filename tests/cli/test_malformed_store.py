"""The CLI survives a malformed object already in the store (hardening #11, CLI side).

Schema validation keeps new malformed objects out, but one written by an older version or
straight into the store still reaches the CLI. Here a Node with ``status.conditions: 7``
(the case that crashed ``get nodes`` and ``status``) is written into the store before a
real API server starts on it; then ``get`` in every format, ``describe`` and ``status``
run as subprocesses and must succeed, printing the good node as always and the bad
fields as ``<invalid>``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import yaml

from ctl.cluster.bootstrap import Settings
from ctl.store import open_store
from ctl.types import kinds
from tests.cluster import ROOT, ApiServerProcess

pytestmark = pytest.mark.slow

BAD = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {
        "name": "bad-node",
        "uid": "00000000-0000-0000-0000-000000000bad",
        "creationTimestamp": "2024-01-01T00:00:00Z",
        "labels": ["not", "a", "map"],
    },
    "spec": {"unschedulable": "sometimes"},
    "status": {"conditions": 7, "addresses": "10.0.0.9", "nodeInfo": 3},
}
GOOD = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {
        "name": "good-node",
        "uid": "00000000-0000-0000-0000-00000000000d",
        "creationTimestamp": "2024-01-01T00:00:00Z",
        "labels": {"zone": "a"},
    },
    "status": {
        "conditions": [{"type": "Ready", "status": "True"}],
        "nodeInfo": {"kubeletVersion": "v1.32.0"},
        "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
    },
}


async def _write_store(db: Path) -> None:
    store = open_store(f"sqlite://{db}")
    await store.start()
    try:
        node = kinds.resolve("nodes")
        assert node is not None
        for obj in (GOOD, BAD):
            await store.create(node.key("", "", obj["metadata"]["name"]), orjson.dumps(obj))
    finally:
        await store.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    d: Path = tmp_path_factory.mktemp("malformed") / "api"
    d.mkdir(parents=True)
    asyncio.run(_write_store(d / "store.db"))
    srv = ApiServerProcess(d).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def data_dir(api: ApiServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cluster data dir as ``init`` leaves it, as far as ``status`` reads it, pointing at ``api``."""
    d: Path = tmp_path_factory.mktemp("cluster")
    Settings().save(d)
    (d / "kubeconfig").write_text(
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
    (d / "run").mkdir()
    (d / "run" / "supervisor.pid").write_text(str(os.getpid()))  # a live process stands in for it
    return d


def ctl(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "ctl", *args],
        env={**os.environ, "KUBECONFIG": str(data_dir / "kubeconfig"), "CENTAURUS_DATA_DIR": str(data_dir)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 0, f"centaurusctl {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def _rows(out: str) -> dict[str, list[str]]:
    return {ln.split()[0]: ln.split() for ln in out.splitlines()[1:]}


def test_the_store_really_holds_the_malformed_node(api: ApiServerProcess) -> None:
    with api.sync_client() as c:
        assert c.get("nodes", "bad-node")["status"]["conditions"] == 7


def test_get_nodes_table_and_wide(data_dir: Path) -> None:
    rows = _rows(ctl(data_dir, "get", "nodes").stdout)
    assert rows["good-node"][:2] == ["good-node", "Ready"] and rows["good-node"][-1] == "v1.32.0"
    assert rows["bad-node"][:2] == ["bad-node", "<invalid>"]
    out = ctl(data_dir, "get", "nodes", "-o", "wide", "--show-labels").stdout
    rows = _rows(out)
    assert "10.0.0.1" in rows["good-node"] and rows["good-node"][-1] == "zone=a"
    assert "<invalid>" not in rows["good-node"]
    assert rows["bad-node"].count("<invalid>") >= 2  # STATUS, INTERNAL-IP and LABELS


def test_get_named_and_other_formats(data_dir: Path) -> None:
    assert ctl(data_dir, "get", "node", "bad-node", "-o", "name").stdout.split() == ["node/bad-node"]
    doc = json.loads(ctl(data_dir, "get", "node", "bad-node", "-o", "json").stdout)
    assert doc["status"]["conditions"] == 7  # shown as stored
    items = yaml.safe_load(ctl(data_dir, "get", "nodes", "-o", "yaml").stdout)["items"]
    assert {n["metadata"]["name"]: n["status"]["conditions"] for n in items}["bad-node"] == 7
    assert "bad-node" in ctl(data_dir, "get", "node/bad-node", "node/good-node").stdout


def test_describe_malformed_node(data_dir: Path) -> None:
    out = ctl(data_dir, "describe", "node", "bad-node").stdout
    assert "Name:         bad-node" in out and "Labels:       <invalid>" in out
    assert "conditions: 7" in out and "Events:" in out
    assert "Name:         good-node" in ctl(data_dir, "describe", "nodes").stdout


def test_status_counts_the_malformed_node_as_not_ready(data_dir: Path) -> None:
    out = ctl(data_dir, "status", "--data-dir", str(data_dir)).stdout
    assert "nodes: 1/2 ready" in out
    doc = json.loads(ctl(data_dir, "status", "--data-dir", str(data_dir), "-o", "json").stdout)
    assert doc["nodes"] == "1/2 ready" and doc["healthy"] is True


def test_server_side_table_shows_invalid_cells(api: ApiServerProcess) -> None:
    """kubectl asks the server for a Table; a malformed object's cells are ``<invalid>``, never a 500."""
    import urllib.request

    req = urllib.request.Request(
        api.url + "/api/v1/nodes",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
        table = json.loads(r.read())
    assert table["kind"] == "Table"
    rows = {row["cells"][0]: row["cells"] for row in table["rows"]}
    assert "<invalid>" in rows["bad-node"] and "<invalid>" not in rows["good-node"]
