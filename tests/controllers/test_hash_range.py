"""Two controller instances splitting the ReplicaSets between them with --hash-range."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ctl.client import Client
from ctl.controllers.base import MAX_HASH
from tests.cluster import ApiServerProcess, RoleProcess
from tests.controllers.conftest import eventually, pods_of, replicaset

HALF = MAX_HASH // 2


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServerProcess, RoleProcess]]:
    d: Path = tmp_path_factory.mktemp("split")
    api = ApiServerProcess(d).start()
    common = ["--server", api.url, "--controllers", "replicaset", "--log-level", "DEBUG"]
    low = RoleProcess("controllers", [*common, "--hash-range", f"0-{HALF}"], d / "low.log").start()
    high = RoleProcess(
        "controllers", [*common, "--hash-range", f"{HALF + 1}-{MAX_HASH}"], d / "high.log"
    ).start()
    try:
        yield api, low
    finally:
        low.stop()
        high.stop()
        api.stop()


async def test_instances_split_the_work(client: Client, ns: str) -> None:
    keys = []
    for i in range(8):
        rs = await client.create(replicaset(f"rs{i}", 1, {"app": f"a{i}"}), namespace=ns)
        keys.append(int(rs["metadata"]["hashKey"]))  # noqa: F841

    async def all_have_one() -> bool:
        pods = await pods_of(client, ns)
        return len(pods) == 8

    await eventually(all_have_one, what="every ReplicaSet got its pod from one of the instances")

    async def statuses_caught_up() -> bool:
        for i in range(8):
            rs = await client.get("replicasets", f"rs{i}", namespace=ns)
            if (rs.get("status") or {}).get("replicas") != 1:
                return False
        return True

    # The owning instance writes the status after it sees its pod: wait for it, bounded.
    await eventually(statuses_caught_up, what="every ReplicaSet's status counts its one pod")
    # Each pod was created exactly once (no double creation by both instances).
    pods = await pods_of(client, ns)
    assert sorted(p["metadata"]["ownerReferences"][0]["name"] for p in pods) == [f"rs{i}" for i in range(8)]
