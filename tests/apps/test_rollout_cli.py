"""``centaurusctl rollout status|history|undo|restart`` for DaemonSets and StatefulSets,
run as the real CLI process against a real API server and controllers process."""

from __future__ import annotations

import asyncio
import re
import shutil
from typing import Any

import pytest

from ctl.client import Client
from tests.apps.conftest import NodeFarm, eventually, set_image
from tests.apps.test_daemonset import daemonset
from tests.apps.test_statefulset import statefulset
from tests.controllers.test_deployment import ctl, kubeconfig  # noqa: F401 - the kubeconfig fixture

_fixture = kubeconfig


async def _image(client: Client, plural: str, ns: str, name: str) -> str:
    obj = await client.get(plural, name, namespace=ns)
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


async def _rollout_cycle(client: Client, kc: str, ns: str, plural: str, name: str, done: str) -> None:
    ref = f"{plural[:-1]}/{name}"
    rc, out, err = await ctl(kc, "rollout", "status", ref, "-n", ns, "--timeout", "30s")
    assert rc == 0 and done in out, (out, err)
    await set_image(client, ns, plural, name, "busybox:2")
    rc, out, err = await ctl(kc, "rollout", "status", ref, "-n", ns, "--timeout", "40s")
    assert rc == 0 and done in out.splitlines()[-1], (out, err)
    rc, out, _ = await ctl(kc, "rollout", "history", ref, "-n", ns)
    assert rc == 0 and f"{plural[:-1]}.apps/{name}" in out
    assert [line.split()[0] for line in out.splitlines()[2:] if line.strip()] == ["1", "2"], out
    rc, out, _ = await ctl(kc, "rollout", "history", ref, "-n", ns, "--revision", "1")
    assert rc == 0 and "busybox:1" in out and "busybox:2" not in out
    rc, out, err = await ctl(kc, "rollout", "undo", ref, "-n", ns)
    assert rc == 0 and "rolled back" in out, err
    assert await _image(client, plural, ns, name) == "busybox:1"
    rc, out, err = await ctl(kc, "rollout", "status", ref, "-n", ns, "--timeout", "40s")
    assert rc == 0, (out, err)

    async def renumbered() -> list[str] | None:
        rc, out, _ = await ctl(kc, "rollout", "history", ref, "-n", ns)
        rows = [line.split()[0] for line in out.splitlines()[2:] if line.strip()]
        return rows if rows == ["2", "3"] else None

    await eventually(renumbered, what="revision 1 renumbered to 3")
    rc, out, _ = await ctl(kc, "rollout", "undo", ref, "-n", ns, "--to-revision", "9")
    assert rc == 1 and "unable to find the specified revision 9" in _
    rc, out, err = await ctl(kc, "rollout", "restart", ref, "-n", ns)
    assert rc == 0 and "restarted" in out, err
    obj = await client.get(plural, name, namespace=ns)
    assert "kubectl.kubernetes.io/restartedAt" in obj["spec"]["template"]["metadata"]["annotations"]


async def test_daemonset_rollout_commands(client: Client, ns: str, farm: NodeFarm, kubeconfig: str) -> None:  # noqa: F811
    for i in range(2):
        await farm.add_node(f"n{i}", {"farm": ns})
    await client.create(daemonset(ns, "agent"), namespace=ns)
    await _rollout_cycle(
        client, kubeconfig, ns, "daemonsets", "agent", 'daemon set "agent" successfully rolled out'
    )


async def test_statefulset_rollout_commands(client: Client, ns: str, farm: NodeFarm, kubeconfig: str) -> None:  # noqa: F811
    await farm.add_node("a")
    await client.create(statefulset("web", 2), namespace=ns)
    await _rollout_cycle(
        client, kubeconfig, ns, "statefulsets", "web", "partitioned roll out complete: 2 new pods"
    )


async def test_status_refuses_on_delete(client: Client, ns: str, kubeconfig: str) -> None:  # noqa: F811
    body: dict[str, Any] = daemonset(ns, "od", updateStrategy={"type": "OnDelete"})
    await client.create(body, namespace=ns)
    rc, out, err = await ctl(kubeconfig, "rollout", "status", "ds/od", "-n", ns, "--timeout", "5s")
    assert rc == 1 and "only available for RollingUpdate strategy type" in err
    rc, _, err = await ctl(kubeconfig, "rollout", "pause", "ds/od", "-n", ns)
    assert rc == 1 and "not supported" in err


KUBECTL = shutil.which("kubectl")


async def kubectl(kc: str, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        KUBECTL or "kubectl",
        "--kubeconfig",
        kc,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
async def test_real_kubectl(client: Client, ns: str, farm: NodeFarm, kubeconfig: str) -> None:  # noqa: F811
    """kubectl 1.32's own get columns, rollout status/history/undo for both kinds."""
    for i in range(2):
        await farm.add_node(f"n{i}", {"farm": ns})
    await client.create(daemonset(ns, "kds"), namespace=ns)
    await client.create(statefulset("ksts", 2), namespace=ns)
    rc, out, err = await kubectl(kubeconfig, "rollout", "status", "ds/kds", "-n", ns, "--timeout=60s")
    assert rc == 0 and 'daemon set "kds" successfully rolled out' in out, (out, err)
    rc, out, err = await kubectl(kubeconfig, "rollout", "status", "sts/ksts", "-n", ns, "--timeout=60s")
    # partition 0 is the default, and kubectl reports any set partition this way
    assert rc == 0 and "partitioned roll out complete: 2 new pods have been updated" in out, (out, err)
    rc, out, err = await kubectl(kubeconfig, "get", "ds,sts,controllerrevisions,pvc", "-n", ns)
    assert rc == 0, err
    assert re.search(r"daemonset.apps/kds\s+2\s+2\s+2\s+2\s+2\s+farm=", out), out
    assert re.search(r"statefulset.apps/ksts\s+2/2", out), out
    assert re.search(r"controllerrevision.apps/kds-\w+\s+daemonset.apps/kds\s+1", out), out
    assert "persistentvolumeclaim/data-ksts-0" in out, out
    for ref, plural in (("ds/kds", "daemonsets"), ("sts/ksts", "statefulsets")):
        name = ref.split("/")[1]
        await set_image(client, ns, plural, name, "busybox:2")
        rc, out, err = await kubectl(kubeconfig, "rollout", "status", ref, "-n", ns, "--timeout=60s")
        assert rc == 0, (out, err)
        rc, out, err = await kubectl(kubeconfig, "rollout", "history", ref, "-n", ns)
        assert rc == 0 and [ln.split()[0] for ln in out.splitlines()[2:] if ln.strip()] == ["1", "2"], (
            out,
            err,
        )
        rc, out, err = await kubectl(kubeconfig, "rollout", "undo", ref, "-n", ns)
        assert rc == 0 and "rolled back" in out, (out, err)
        assert await _image(client, plural, ns, name) == "busybox:1"
    # both CLIs scale a StatefulSet through its scale subresource
    rc, out, err = await kubectl(kubeconfig, "scale", "sts/ksts", "-n", ns, "--replicas=3")
    assert rc == 0, err
    await eventually(lambda: _ready(client, ns, "ksts", 3), what="3 ready")
    rc, out, err = await ctl(kubeconfig, "scale", "statefulset/ksts", "-n", ns, "--replicas", "1")
    assert rc == 0 and "scaled" in out, err
    await eventually(lambda: _ready(client, ns, "ksts", 1), what="1 ready")


async def _ready(client: Client, ns: str, name: str, n: int) -> bool:
    st = (await client.get("statefulsets", name, namespace=ns)).get("status") or {}
    return st.get("readyReplicas") == n and st.get("replicas") == n


def test_status_messages_as_kubectl() -> None:
    from ctl.cli.errors import CLIError
    from ctl.cli.rollout_sets import status_message
    from ctl.types import kinds

    ds, sts = kinds.resolve("ds"), kinds.resolve("sts")
    assert ds is not None and sts is not None
    md = {"name": "x", "generation": 2}
    st = {"observedGeneration": 1}
    assert (
        status_message(ds, {"metadata": md, "status": st})[0]
        == "Waiting for daemon set spec update to be observed..."
    )
    st = {
        "observedGeneration": 2,
        "desiredNumberScheduled": 3,
        "updatedNumberScheduled": 1,
        "numberAvailable": 3,
    }
    assert status_message(ds, {"metadata": md, "status": st}) == (
        'Waiting for daemon set "x" rollout to finish: 1 out of 3 new pods have been updated...',
        False,
    )
    st.update(updatedNumberScheduled=3, numberAvailable=2)
    assert "2 of 3 updated pods are available" in status_message(ds, {"metadata": md, "status": st})[0]
    with pytest.raises(CLIError, match="only available for RollingUpdate"):
        status_message(ds, {"metadata": md, "spec": {"updateStrategy": {"type": "OnDelete"}}, "status": st})
    spec: dict[str, Any] = {"replicas": 3, "updateStrategy": {"type": "RollingUpdate"}}
    st = {
        "observedGeneration": 2,
        "readyReplicas": 3,
        "updatedReplicas": 1,
        "currentRevision": "a",
        "updateRevision": "b",
    }
    assert status_message(sts, {"metadata": md, "spec": spec, "status": st}) == (
        "waiting for statefulset rolling update to complete 1 pods at revision b...",
        False,
    )
    st.update(currentRevision="b", currentReplicas=3, updatedReplicas=3)
    assert status_message(sts, {"metadata": md, "spec": spec, "status": st}) == (
        "statefulset rolling update complete 3 pods at revision b...",
        True,
    )
    spec["updateStrategy"]["rollingUpdate"] = {"partition": 2}
    st.update(updatedReplicas=0)
    assert status_message(sts, {"metadata": md, "spec": spec, "status": st})[0] == (
        "Waiting for partitioned roll out to finish: 0 out of 1 new pods have been updated..."
    )
    st.update(readyReplicas=1)
    assert (
        status_message(sts, {"metadata": md, "spec": spec, "status": st})[0]
        == "Waiting for 2 pods to be ready..."
    )
