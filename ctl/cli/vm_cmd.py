"""``centaurusctl vm reboot|snapshot|restore|stop|start POD``: the Action API from the command line.

Each command posts a CustomAction to ``pods/POD/action``, prints the Action's name,
and with ``--wait`` (the default) follows the Action until the node agent reports it
complete, printing its status fields (``rebootSuccessful``, ``snapshotID`` ...); an Action
that failed ends the command with its error (exit 1). ``snapshot --snapshot-id NAME`` names
the snapshot (the agent refuses a name the VM already has); ``vm snapshots POD`` lists the
VM's snapshots from its completed snapshot Actions (name, when taken, the Action).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import typer

from ctl.cli import output
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


EXAMPLES = {
    "reboot": "centaurusctl vm reboot vm1 -n demo",
    "snapshot": "centaurusctl vm snapshot vm1 --snapshot-id before-upgrade",
    "restore": "centaurusctl vm restore vm1 --snapshot-id before-upgrade",
    "stop": "centaurusctl vm stop vm1 --no-wait",
    "start": "centaurusctl vm start vm1",
}


def _cmd(op: str, doc: str, with_snapshot: bool = False) -> None:
    def command(
        pod: str,
        snapshot_id: str = typer.Option(
            None, "--snapshot-id", help="snapshot to restore / name for the new snapshot"
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

    command.__doc__ = f"""{doc}

    Examples:
      {EXAMPLES[op]}
      centaurusctl vm snapshots vm1
    """
    app.command(op)(command)


_cmd("reboot", "Reboot the VM (restartCount + 1).")
_cmd("snapshot", "Take a snapshot of the VM.")
_cmd("restore", "Restore the VM from a snapshot.")
_cmd("stop", "Stop (shut down) the VM.")
_cmd("start", "Start a stopped VM.")


@app.command("snapshots")
def snapshots(
    pod: str,
    out: str = output.output_option(output.DATA_FORMATS),
    namespace: str = NamespaceOpt,
    tenant: str = TenantOpt,
    kubeconfig: str = KubeconfigOpt,
    context: str = ContextOpt,
) -> None:
    """List a VM pod's snapshots (from its completed snapshot Actions).

    Examples:
      centaurusctl vm snapshots vm1
      centaurusctl vm snapshots vm1 -n demo -o json
    """
    client = connect(kubeconfig, context)
    ns = namespace_for(client, namespace)
    t = tenant_for(client, tenant)

    async def go() -> list[dict[str, Any]]:
        try:
            await client.get("pods", pod, ns, t)  # a clear NotFound for a pod that is not there
            lst = await client.list_all("actions", namespace=ns, tenant=t)
        finally:
            await client.close()
        rows = []
        for a in lst["items"]:
            spec, st = a.get("spec") or {}, a.get("status") or {}
            if spec.get("podName") != pod or spec.get("operation") != "snapshot":
                continue
            if not st.get("complete") or st.get("error") or not isinstance(st.get("snapshotID"), str):
                continue
            md = output.metadata(a)
            taken = st.get("completionTime") or md.get("creationTimestamp") or ""
            rows.append({"snapshotID": st["snapshotID"], "taken": taken, "action": md.get("name", "")})
        return sorted(rows, key=lambda r: str(r["taken"]))

    rows = run(go())
    if out != "table":
        print(output.dump({"pod": pod, "namespace": ns, "snapshots": rows}, out), end="")
        return
    if not rows:
        print(f"No snapshots of pod {pod!r} in namespace {ns!r}.", file=sys.stderr)
        return
    print(
        output.plain_table(
            ["SNAPSHOT", "TAKEN", "ACTION"],
            [[r["snapshotID"], str(r["taken"]), str(r["action"])] for r in rows],
        )
    )
