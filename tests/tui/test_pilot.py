"""The TUI driven by Textual's Pilot against a real API server process.

Each test opens ``centaurusctl tui``'s app headless on its own namespace and checks what the
server and the screen show after real key presses: rows that appear, change and vanish from
the watch; navigation with ``:KIND``; filtering as you type and label selectors; tenant
switching (one tenant, then all); delete with a confirmation (refused, then given); scale;
rollout restart; cordon and drain; edit through ``$EDITOR``; a VM action; describe and YAML
with the object's Events; the node and network views.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from ctl.client import ApiError, SyncClient
from ctl.tui.screens.capacity import CapacityScreen
from ctl.tui.screens.chooser import ChooserScreen
from ctl.tui.screens.confirm import ConfirmScreen
from ctl.tui.screens.detail import DetailScreen
from ctl.tui.screens.help import HelpScreen
from ctl.tui.screens.prompt import PromptScreen
from ctl.tui.screens.topology import TopologyScreen
from tests.cluster import ApiServerProcess
from tests.tui.conftest import deployment, open_tui, pod, until


def typed(text: str) -> list[str]:
    """Key names that type ``text`` (Pilot needs ``space`` for a blank)."""
    return ["space" if ch == " " else ch for ch in text]


def keys(app: Any) -> list[str]:
    return [k.rsplit("/", 1)[-1] for k in app.main.table.visible_keys()]


def gone(client: SyncClient, kind: str, name: str, ns: str | None) -> bool:
    try:
        obj = client.get(kind, name, ns)
    except ApiError as e:
        return e.code == 404
    return bool(obj["metadata"].get("deletionTimestamp"))


async def select(app: Any, pilot: Any, name: str) -> None:
    t = app.main.table
    key = next(k for k in t.visible_keys() if k.endswith("/" + name))
    t.move_cursor(row=t.get_row_index(key))
    await pilot.pause()
    assert t.selected()["metadata"]["name"] == name


async def test_watch_rows_appear_change_vanish(
    apiserver: ApiServerProcess, client: SyncClient, tui_ns: str
) -> None:
    client.create(pod("a"), namespace=tui_ns)
    async with open_tui(apiserver, tui_ns) as (app, pilot):
        await until(lambda: keys(app) == ["a"], "the listed pod")
        client.create(pod("b"), namespace=tui_ns)
        await until(lambda: keys(app) == ["a", "b"], "a created pod's row")
        key = next(k for k in app.main.table.visible_keys() if k.endswith("/b"))
        assert app.main.table.cell_text(key, "STATUS") == "Pending"
        client.patch("pods", "b", {"status": {"phase": "Running"}}, namespace=tui_ns, subresource="status")
        await until(lambda: app.main.table.cell_text(key, "STATUS") == "Running", "the modified row")
        client.delete("pods", "a", tui_ns)
        await until(lambda: keys(app) == ["b"], "the deleted pod's row to vanish")
        assert app.main.status.up and "connected to test" in app.main.status.connection


async def test_navigate_filter_and_label_selector(
    apiserver: ApiServerProcess, client: SyncClient, tui_ns: str
) -> None:
    for name, app_label in (("web-1", "web"), ("web-2", "web"), ("db-1", "db")):
        client.create(pod(name, {"app": app_label}), namespace=tui_ns)
    client.create(deployment("front"), namespace=tui_ns)
    async with open_tui(apiserver, tui_ns) as (app, pilot):
        await until(lambda: len(keys(app)) == 3, "three pods")
        await pilot.press("slash", *typed("web"))
        await until(lambda: keys(app) == ["web-1", "web-2"], "rows filtered as typed")
        await pilot.press("escape")
        await until(lambda: len(keys(app)) == 3, "the filter cleared")
        await pilot.press("slash", *typed("-l app=db"), "enter")
        await until(lambda: keys(app) == ["db-1"], "the server-side label selector")
        assert app.main.scope.label_selector == "app=db"
        await pilot.press("escape")
        await until(lambda: len(keys(app)) == 3, "the selector cleared")
        # sort by NAME reversed, then jump to another kind
        await pilot.press("O")
        await until(lambda: keys(app) == ["web-2", "web-1", "db-1"], "reverse sort")
        await pilot.press("colon", *typed("deploy"), "enter")
        await until(lambda: app.main.kind.kind == "Deployment" and keys(app) == ["front"], ":deploy")
        await pilot.press("colon", *typed("nosuchkind"), "enter")
        await until(lambda: "nosuchkind" in app.main.status.message, "an unknown kind reported")
        assert app.main.kind.kind == "Deployment"
        await pilot.press("question_mark")
        await until(lambda: isinstance(app.screen, HelpScreen), "help")
        await pilot.press("escape")
        await until(lambda: app.screen is app.main, "back from help")


async def test_describe_and_yaml_with_events(
    apiserver: ApiServerProcess, client: SyncClient, tui_ns: str
) -> None:
    p = client.create(pod("described"), namespace=tui_ns)
    client.create(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "described.1"},
            "involvedObject": {
                "kind": "Pod",
                "name": "described",
                "namespace": tui_ns,
                "uid": p["metadata"]["uid"],
            },
            "reason": "Scheduled",
            "message": "tui test event",
            "type": "Normal",
        },
        namespace=tui_ns,
    )
    async with open_tui(apiserver, tui_ns) as (app, pilot):
        await until(lambda: keys(app) == ["described"], "the pod")
        await pilot.press("d")
        await until(lambda: isinstance(app.screen, DetailScreen) and app.screen.loaded, "describe")
        text = app.screen.text()
        assert "Name:         described" in text and "tui test event" in text and "Scheduled" in text
        await pilot.press("y")
        assert "kind: Pod" in app.screen.text() and "name: described" in app.screen.text()
        await pilot.press("escape")
        await until(lambda: app.screen is app.main, "back")


async def test_switch_tenant(apiserver: ApiServerProcess, client: SyncClient, tui_ns: str) -> None:
    tenant = f"t-{tui_ns}"
    client.create({"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": tenant}})
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": tui_ns}}, tenant=tenant)
    client.create(pod("theirs"), namespace=tui_ns, tenant=tenant)
    client.create(pod("ours"), namespace=tui_ns)
    async with open_tui(apiserver, tui_ns) as (app, pilot):
        await until(lambda: keys(app) == ["ours"], "our tenant's pod")
        assert app.main.tui.session.admin
        await pilot.press("t")
        await until(lambda: isinstance(app.screen, ChooserScreen), "the tenant chooser")
        chooser = app.screen
        assert "all" in chooser.choices and tenant in chooser.choices
        chooser.query_one("#choices").highlighted = chooser.choices.index(tenant)
        await pilot.press("enter")
        await until(lambda: app.main.scope.tenant == tenant and keys(app) == ["theirs"], "the other tenant")
        await pilot.press("colon", *typed("tenant all"), "enter")
        await until(lambda: sorted(keys(app)) == ["ours", "theirs"], "all tenants (this namespace only)")
        assert app.main.table.specs[0].header == "TENANT"


async def test_delete_with_confirmation(apiserver: ApiServerProcess, client: SyncClient, tui_ns: str) -> None:
    client.create(pod("doomed"), namespace=tui_ns)
    client.create(pod("kept"), namespace=tui_ns)
    async with open_tui(apiserver, tui_ns) as (app, pilot):
        await until(lambda: keys(app) == ["doomed", "kept"], "two pods")
        await select(app, pilot, "doomed")
        await pilot.press("ctrl+d")
        await until(lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("n")
        await until(lambda: app.main.status.message == "cancelled", "cancelled")
        assert not gone(client, "pods", "doomed", tui_ns)
        await pilot.press("ctrl+d")
        await until(lambda: isinstance(app.screen, ConfirmScreen), "the confirmation again")
        await pilot.press("y")
        await until(lambda: keys(app) == ["kept"], "the deleted row to vanish")
        assert gone(client, "pods", "doomed", tui_ns)
        assert "deleted" in app.main.status.message


async def test_scale_and_rollout_restart(
    apiserver: ApiServerProcess, client: SyncClient, tui_ns: str
) -> None:
    client.create(deployment("web", replicas=1), namespace=tui_ns)
    async with open_tui(apiserver, tui_ns, kind="deployments") as (app, pilot):
        await until(lambda: keys(app) == ["web"], "the deployment")
        await pilot.press("s")
        await until(lambda: isinstance(app.screen, PromptScreen), "the replicas prompt")
        app.screen.query_one("#answer").value = "3"
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("y")
        await until(lambda: client.get("deployments", "web", tui_ns)["spec"]["replicas"] == 3, "scaled to 3")
        key = app.main.table.visible_keys()[0]
        await until(lambda: app.main.table.cell_text(key, "READY") == "0/3", "the row shows 3 wanted")
        await pilot.press("r")
        await until(lambda: isinstance(app.screen, ConfirmScreen), "the restart confirmation")
        await pilot.press("y")

        def restarted() -> bool:
            tpl = client.get("deployments", "web", tui_ns)["spec"]["template"]
            return "kubectl.kubernetes.io/restartedAt" in (tpl["metadata"].get("annotations") or {})

        await until(restarted, "the restartedAt annotation")


async def test_cordon_and_drain(apiserver: ApiServerProcess, client: SyncClient, tui_ns: str) -> None:
    node = f"node-{tui_ns}"
    client.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})
    client.create(pod("on-node", nodeName=node), namespace=tui_ns)
    async with open_tui(apiserver, tui_ns, kind="nodes") as (app, pilot):
        await until(lambda: node in keys(app), "the node")
        await select(app, pilot, node)
        await pilot.press("c", "y")
        await until(
            lambda: client.get("nodes", node).get("spec", {}).get("unschedulable") is True, "cordoned"
        )
        key = next(k for k in app.main.table.visible_keys() if k.endswith(node))
        await until(
            lambda: "SchedulingDisabled" in (app.main.table.cell_text(key, "STATUS") or ""), "row cordoned"
        )
        await pilot.press("U", "y")
        await until(lambda: not client.get("nodes", node).get("spec", {}).get("unschedulable"), "uncordoned")
        await pilot.press("D")
        await until(lambda: isinstance(app.screen, ConfirmScreen), "the drain confirmation")
        await pilot.press("y")
        await until(lambda: gone(client, "pods", "on-node", tui_ns), "the node's pod deleted")
        assert client.get("nodes", node)["spec"]["unschedulable"] is True
        assert "drained (1 pod deleted)" in app.main.status.message


async def test_edit_through_editor(
    apiserver: ApiServerProcess, client: SyncClient, tui_ns: str, tmp_path: Path, monkeypatch: Any
) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i "s/app: edited-me/app: was-edited/" "$1"\n')
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("EDITOR", str(editor))
    client.create(pod("edited-me"), namespace=tui_ns)
    async with open_tui(apiserver, tui_ns) as (app, pilot):
        await until(lambda: keys(app) == ["edited-me"], "the pod")
        await pilot.press("e")
        await until(
            lambda: client.get("pods", "edited-me", tui_ns)["metadata"]["labels"]["app"] == "was-edited",
            "edit",
        )
        await until(lambda: app.main.status.message.endswith("edited"), "edit reported")
    assert os.environ["EDITOR"] == str(editor)


async def test_vm_action(apiserver: ApiServerProcess, client: SyncClient, tui_ns: str) -> None:
    node = f"vmnode-{tui_ns}"
    client.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})
    vm = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "vm"},
        "spec": {
            "nodeName": node,
            "virtualMachine": {
                "name": "vm",
                "image": "cirros-tiny:latest",
                "powerSpec": "Running",
                "publicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE06F3UcPpyaRGZAVr2fzYTwR0mNFAwj8mJiZrlPnqdK t@c",
            },
        },
    }
    client.create(vm, namespace=tui_ns)
    async with open_tui(apiserver, tui_ns) as (app, pilot):
        await until(lambda: keys(app) == ["vm"], "the VM pod")
        await pilot.press("a")
        await until(lambda: isinstance(app.screen, ChooserScreen), "the VM action chooser")
        app.screen.query_one("#choices").highlighted = app.screen.choices.index("reboot")
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("y")
        await until(lambda: "action/" in app.main.status.message, "the action reported")
        actions = client.list("actions", tui_ns)["items"]
        assert [a["spec"]["operation"] for a in actions] == ["reboot"]
        assert actions[0]["spec"]["podName"] == "vm"


async def test_capacity_and_network_views(
    apiserver: ApiServerProcess, client: SyncClient, tui_ns: str
) -> None:
    node = f"cap-{tui_ns}"
    client.create(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": node},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "10"}},
        }
    )
    req = {"requests": {"cpu": "1", "memory": "2Gi"}}
    client.create(
        pod("heavy", nodeName=node, containers=[{"name": "c", "image": "busybox", "resources": req}]),
        namespace=tui_ns,
    )
    client.create(
        {
            "apiVersion": "mizar.centaurus.io/v1",
            "kind": "VPC",
            "metadata": {"name": f"v-{tui_ns}"},
            "spec": {"cidr": "10.9.0.0/16", "dividers": 1},
        }
    )
    client.create(
        {
            "apiVersion": "mizar.centaurus.io/v1",
            "kind": "Subnet",
            "metadata": {"name": f"s-{tui_ns}"},
            "spec": {"vpc": f"v-{tui_ns}", "cidr": "10.9.1.0/24", "bouncers": 1},
        }
    )
    client.create(
        {
            "apiVersion": "mizar.centaurus.io/v1",
            "kind": "Endpoint",
            "metadata": {"name": "ep1"},
            "spec": {"subnet": f"s-{tui_ns}", "vpc": f"v-{tui_ns}", "ip": "10.9.1.5", "pod": "heavy"},
        },
        namespace=tui_ns,
    )
    async with open_tui(apiserver, tui_ns) as (app, pilot):
        await pilot.press("N")
        await until(lambda: isinstance(app.screen, CapacityScreen), "the node view")
        table = app.screen.query_one("#capacity")

        def cpu_cell() -> str:
            return str(table.get_cell(node, "CPU")) if node in table.rows else ""

        await until(lambda: "25%" in cpu_cell() and "1.0/4.0" in cpu_cell(), "cpu 1 of 4 allocated")
        assert "1/10" in str(table.get_cell(node, "PODS"))
        client.delete("pods", "heavy", tui_ns, grace_period_seconds=0)
        await until(lambda: " 0% " in cpu_cell(), "allocation released when the pod goes")
        await pilot.press("escape", "X")
        await until(lambda: isinstance(app.screen, TopologyScreen), "the network view")

        def labels() -> list[str]:
            out: list[str] = []

            def walk(n: Any) -> None:
                out.append(str(n.label))
                for c in n.children:
                    walk(c)

            walk(app.screen.query_one("#topology").root)
            return out

        await until(
            lambda: any(f"endpoint {tui_ns}/ep1  10.9.1.5" in x for x in labels()),
            "the endpoint under its subnet",
        )
        text = "\n".join(labels())
        assert f"vpc system/v-{tui_ns}  10.9.0.0/16" in text and f"subnet s-{tui_ns}  10.9.1.0/24" in text
