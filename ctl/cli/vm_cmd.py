"""``centaurusctl vm reboot|snapshot|restore|stop|start POD``: the Action API from the command line.

Each command posts a CustomAction to ``pods/POD/action``, prints the Action's name,
and with ``--wait`` (the default) follows the Action until the node agent reports it
complete, printing its status fields (``rebootSuccessful``, ``snapshotID`` ...).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import typer

from ctl.cli.common import (
    ContextOpt,
    KubeconfigOpt,
    NamespaceOpt,
    TenantOpt,
    connect,
    namespace_for,
    run,
    tenant_for,
)
from ctl.cli.errors import CLIError

app = typer.Typer(help="Operate virtual machine pods (Action API).", no_args_is_help=True)


def _do(
    op: str,
    pod: str,
    params: dict[str, Any],
    namespace: str | None,
    tenant: str | None,
    kubeconfig: str | None,
    context: str | None,
    wait: bool,
    timeout: float,
) -> None:
    client = connect(kubeconfig, context)
    ns = namespace_for(client, namespace)
    t = tenant_for(client, tenant)

    async def go() -> dict[str, Any]:
        try:
            path = client.path("pods", ns, pod, "action", t)
            res: dict[str, Any] = await client.request(
                "POST", path, {"kind": "CustomAction", "apiVersion": "v1", "operation": op, **params}
            )
            name = (res.get("details") or {}).get("name", "")
            print(f"action/{name} created")
            if not wait or not name:
                return {}
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                a = await client.get("actions", name, ns, t)
                stt = a.get("status") or {}
                if stt.get("complete") or stt.get("error"):
                    return dict(stt)
                await asyncio.sleep(0.5)
            raise CLIError(
                f"action/{name} did not complete within {timeout:.0f}s (see 'centaurusctl get actions -n {ns}')"
            )
        finally:
            await client.close()

    st = run(go())
    if st:
        if st.get("error"):
            raise CLIError(f"{op} failed: {st['error']}")
        print("  " + ", ".join(f"{k}={v}" for k, v in st.items()))


def _cmd(op: str, doc: str, with_snapshot: bool = False) -> None:
    def command(
        pod: str,
        snapshot_id: str = typer.Option(
            None, "--snapshot-id", help="snapshot to restore / name for the snapshot"
        ),
        namespace: str = NamespaceOpt,
        tenant: str = TenantOpt,
        wait: bool = typer.Option(True, "--wait/--no-wait"),
        timeout: float = typer.Option(120, "--timeout"),
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
    ) -> None:
        params = {"snapshotID": snapshot_id} if snapshot_id else {}
        if op == "restore" and not snapshot_id:
            raise CLIError("restore needs --snapshot-id (see the snapshot action's status)")
        _do(op, pod, params, namespace, tenant, kubeconfig, context, wait, timeout)

    command.__doc__ = doc
    app.command(op)(command)


_cmd("reboot", "Reboot the VM (restartCount + 1).")
_cmd("snapshot", "Take a snapshot of the VM.")
_cmd("restore", "Restore the VM from a snapshot.")
_cmd("stop", "Stop (shut down) the VM.")
_cmd("start", "Start a stopped VM.")
