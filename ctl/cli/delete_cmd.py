"""``centaurusctl delete``: delete objects by name, by manifest file or by label selector.

As ``kubectl delete``: ``KIND NAME...``, ``KIND/NAME``, ``-f FILE|DIR``, ``-l SELECTOR`` or
``--all``; ``--cascade`` picks the propagation policy, ``--grace-period``/``--force`` the
pods' grace, ``--wait`` (the default, as in kubectl; ``--no-wait`` or ``--wait=false`` not to) waits
until the deleted objects are gone (the same uid, so a re-created namespace does not fool
it), at most ``--timeout`` seconds. Each failure is one line on
stderr and the command exits 1 after trying every target.
"""

from __future__ import annotations

import asyncio
import sys
import time

import typer

from ctl.cli.common import (
    ContextOpt,
    KubeconfigOpt,
    NamespaceOpt,
    TenantOpt,
    connect,
    namespace_for,
    run,
    split_kind_name,
    tenant_for,
)
from ctl.cli.errors import CLIError
from ctl.cli.manifests import load_manifests
from ctl.cli.output import metadata, text
from ctl.client import ApiError, Client, kind_of_object
from ctl.types.kinds import Kind

app = typer.Typer()


async def _wait_gone(
    client: Client, deleted: list[tuple[Kind, str, str | None, str | None, str | None]], timeout: float
) -> int:
    """Wait until every deleted object is gone (or replaced by another uid); the number still there."""
    deadline = time.monotonic() + timeout
    left = 0
    for k, n, ns, tt, uid in deleted:
        while True:
            try:
                cur = await client.get(k, n, ns, tt)
            except ApiError as e:
                if e.code == 404:
                    break
                raise
            if uid and metadata(cur).get("uid") != uid:
                break
            if time.monotonic() >= deadline:
                label = k.singular if not k.group else f"{k.singular}.{k.group}"
                print(f"error: timed out waiting for the deletion of {label}/{n}", file=sys.stderr)
                left += 1
                break
            await asyncio.sleep(0.2)
    return left


POLICIES = {"background": "Background", "foreground": "Foreground", "orphan": "Orphan"}


@app.command("delete")
def delete(
    resource: list[str] = typer.Argument(None, help="KIND NAME... or KIND/NAME"),
    filename: list[str] = typer.Option(None, "-f", "--filename"),
    recursive: bool = typer.Option(False, "-R", "--recursive"),
    selector: str = typer.Option(None, "-l", "--selector"),
    all_: bool = typer.Option(False, "--all", help="delete every object of the kind in the namespace"),
    namespace: str = NamespaceOpt,
    tenant: str = TenantOpt,
    grace_period: int = typer.Option(None, "--grace-period"),
    force: bool = typer.Option(False, "--force", help="immediate deletion (grace period 0)"),
    cascade: str = typer.Option("background", "--cascade", help="background|foreground|orphan"),
    ignore_not_found: bool = typer.Option(False, "--ignore-not-found"),
    wait: bool = typer.Option(
        True, "--wait/--no-wait", help="wait until the objects are gone (--wait=false too)"
    ),
    timeout: float = typer.Option(60.0, "--timeout", help="seconds to wait for the objects to be gone"),
    kubeconfig: str = KubeconfigOpt,
    context: str = ContextOpt,
) -> None:
    """Delete objects by name, by file or by label selector (and wait until they are gone).

    Examples:
      centaurusctl delete pod web-1 -n demo
      centaurusctl delete -f manifests/demo.yaml
      centaurusctl delete pods -l app=hello --no-wait
      centaurusctl delete configmaps --all -n demo
      centaurusctl delete pod/stuck --force --grace-period 0
    """
    if cascade not in POLICIES:
        raise CLIError(f"invalid cascade value {cascade!r}: use background, foreground or orphan")
    targets: list[tuple[Kind, str, str | None, str | None]] = []
    client = connect(kubeconfig, context)
    t = tenant_for(client, tenant)
    if filename:
        for _, obj in load_manifests(filename, recursive):
            try:
                k = kind_of_object(obj)
            except ValueError as e:
                raise CLIError(str(e)) from None
            md = obj.get("metadata") or {}
            ns = (md.get("namespace") or namespace_for(client, namespace)) if k.namespaced else None
            targets.append((k, md.get("name", ""), ns, md.get("tenant") or t))
    pairs = split_kind_name(resource) if resource else []
    if not filename and not pairs:
        raise CLIError("you must provide one or more resources by argument or filename")
    policy = POLICIES[cascade]
    grace = 0 if force else grace_period

    async def go() -> int:
        failed = 0
        try:
            for k, n in pairs:
                ns = namespace_for(client, namespace) if k.namespaced else None
                if n:
                    targets.append((k, n, ns, t))
                elif selector or all_:
                    lst = await client.list_all(k, namespace=ns, tenant=t, label_selector=selector)
                    for o in lst["items"]:
                        name = metadata(o).get("name")
                        if isinstance(name, str) and name:
                            targets.append((k, name, ns, t))
                        else:
                            failed += 1
                            print(
                                f"error: skipping a {k.singular} without a valid name: {text(name)}",
                                file=sys.stderr,
                            )
                else:
                    raise CLIError(
                        "resource(s) were provided, but no name was specified (use a name, -l SELECTOR or --all)"
                    )
            if not targets and not ignore_not_found:
                print("No resources found", file=sys.stderr)
            deleted: list[tuple[Kind, str, str | None, str | None, str | None]] = []
            for k, n, ns, tt in targets:
                try:
                    res = await client.delete(
                        k, n, ns, tt, propagation_policy=policy, grace_period_seconds=grace
                    )
                    label = k.singular if not k.group else f"{k.singular}.{k.group}"
                    print(f'{label} "{n}" deleted', flush=True)
                    uid = (
                        metadata(res).get("uid")
                        if isinstance(res, dict) and res.get("kind") != "Status"
                        else None
                    )
                    deleted.append((k, n, ns, tt, uid if isinstance(uid, str) else None))
                except ApiError as e:
                    if e.code == 404 and ignore_not_found:
                        continue
                    failed += 1
                    print(f"Error from server ({e.reason or e.code}): {e}", file=sys.stderr)
            if wait and deleted:
                failed += await _wait_gone(client, deleted, timeout)
        finally:
            await client.close()
        return failed

    if run(go()):
        raise typer.Exit(1)
