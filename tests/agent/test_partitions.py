"""Scale-out layout (DESIGN §6): Node and Lease in the resource partition, pods from every tenant partition.

One agent process with two hollow nodes is pointed at three real API servers: ``--rp-server`` RP and
``--tp-server`` TP1 and TP2. The nodes and their leases must exist only in RP; pods bound in either TP
must go Running with their status written back to their own TP, and deletion must finish there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ctl.client import ApiError, Client
from tests.agent.conftest import AgentProcess, make_pod, wait_for
from tests.cluster import ApiServerProcess


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ApiServerProcess | AgentProcess]]:
    d: Path = tmp_path_factory.mktemp("parts")
    rp, tp1, tp2 = (ApiServerProcess(d / n).start() for n in ("rp", "tp1", "tp2"))
    agent = AgentProcess(
        [
            "--server",
            rp.url,
            "--rp-server",
            rp.url,
            "--tp-server",
            tp1.url,
            "--tp-server",
            tp2.url,
            "--hollow-nodes",
            "2",
            "--hollow-prefix",
            "pn",
            "--lease-seconds",
            "1",
            "--endpoint-port",
            "0",
            "--data-dir",
            str(d / "agent"),
        ],
        d / "agent.log",
    ).start()
    try:
        yield {"rp": rp, "tp1": tp1, "tp2": tp2, "agent": agent}
    finally:
        agent.stop()
        for s in (rp, tp1, tp2):
            s.stop()


async def test_rp_holds_nodes_tps_hold_pods(parts: dict) -> None:
    rp: Client = parts["rp"].client()
    tps: list[Client] = [parts["tp1"].client(), parts["tp2"].client()]
    log = parts["agent"].log
    try:

        async def nodes() -> bool:
            return len((await rp.list("nodes"))["items"]) == 2

        await wait_for(nodes, 20, what="2 nodes in the RP", log=log)

        async def leases() -> bool:
            return len((await rp.list("leases", namespace="kube-node-lease", tenant="system"))["items"]) == 2

        await wait_for(leases, 20, what="2 leases in the RP", log=log)
        for tp in tps:
            assert (await tp.list("nodes"))["items"] == []
            assert (await tp.list("leases", namespace="kube-node-lease", tenant="system"))["items"] == []
        for i, tp in enumerate(tps):
            p = await tp.create(make_pod(f"tp{i}-pod"))
            await tp.bind(p, f"pn-{i}")
        for i, tp in enumerate(tps):

            async def running(tp: Client = tp, i: int = i) -> bool:
                x = await tp.get("pods", f"tp{i}-pod")
                return x["status"].get("phase") == "Running" and bool(x["status"].get("podIP"))

            await wait_for(running, 20, what=f"pod Running in TP{i + 1}", log=log)
            await tp.delete("pods", f"tp{i}-pod")

            async def gone(tp: Client = tp, i: int = i) -> bool:
                try:
                    await tp.get("pods", f"tp{i}-pod")
                except ApiError as e:
                    return e.code == 404
                return False

            await wait_for(gone, 20, what=f"pod removed from TP{i + 1}", log=log)
    finally:
        for c in (rp, *tps):
            await c.close()
