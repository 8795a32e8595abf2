"""``centaurusctl rollout status|history|undo|restart`` for DaemonSets and StatefulSets,
run as the real CLI process against a real API server and controllers process."""

from __future__ import annotations

from typing import Any

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
        client, kubeconfig, ns, "statefulsets", "web", "statefulset rolling update complete 2 pods"
    )


async def test_status_refuses_on_delete(client: Client, ns: str, kubeconfig: str) -> None:  # noqa: F811
    body: dict[str, Any] = daemonset(ns, "od", updateStrategy={"type": "OnDelete"})
    await client.create(body, namespace=ns)
    rc, out, err = await ctl(kubeconfig, "rollout", "status", "ds/od", "-n", ns, "--timeout", "5s")
    assert rc == 1 and "only available for RollingUpdate strategy type" in err
    rc, _, err = await ctl(kubeconfig, "rollout", "pause", "ds/od", "-n", ns)
    assert rc == 1 and "not supported" in err
