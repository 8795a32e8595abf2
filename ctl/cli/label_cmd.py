"""``centaurusctl label`` and ``annotate``: edit an object's labels or annotations.

``KIND NAME KEY=VALUE... KEY-...`` (or ``KIND/NAME ...``) sends one merge patch of
``metadata.labels`` / ``metadata.annotations``; ``KEY-`` removes a key. Changing a key
that already has another value needs ``--overwrite``, as in kubectl. ``KIND -l SELECTOR``
or ``KIND --all`` edits every matching object of the namespace (a name given as well is
refused as an invalid update, since every word after KIND is then an update).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
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
    split_kind_name,
    tenant_for,
)
from ctl.cli.errors import CLIError

app = typer.Typer()


def _parse_changes(field: str, changes: list[str]) -> dict[str, Any]:
    """``k=v`` sets, ``k-`` removes (a None in the merge patch)."""
    patch_vals: dict[str, Any] = {}
    for c in changes:
        if c.endswith("-") and "=" not in c:
            patch_vals[c[:-1]] = None
        elif "=" in c:
            k, v = c.split("=", 1)
            patch_vals[k] = v
        else:
            raise CLIError(f"invalid {field[:-1]} update {c!r}: use KEY=VALUE or KEY-")
    return patch_vals


def _meta_edit(
    field: str,
    resource: list[str],
    namespace: str | None,
    tenant: str | None,
    kubeconfig: str | None,
    context: str | None,
    overwrite: bool,
    selector: str | None = None,
    all_: bool = False,
) -> None:
    """label/annotate: KIND NAME k=v k2- ... (k- removes a key); KIND -l SEL|--all k=v ... for many."""
    many = bool(selector) or all_
    if selector and all_:
        raise CLIError("only one of -l/--selector and --all may be given")
    if len(resource) < 2:
        raise CLIError(f"{field[:-1]} needs KIND NAME (or KIND/NAME) and at least one KEY=VALUE or KEY-")
    if many:
        targets, changes = split_kind_name([resource[0]]), resource[1:]
        if any(n for _, n in targets):
            raise CLIError(
                f"names cannot be given with -l/--selector or --all: {field[:-1]} KIND -l SEL KEY=VALUE"
            )
    elif "/" in resource[0]:
        targets, changes = split_kind_name([resource[0]]), resource[1:]
    else:
        targets, changes = split_kind_name(resource[:2]), resource[2:]
    if not changes:
        raise CLIError(f"at least one {field[:-1]} update is required (KEY=VALUE or KEY-)")
    patch_vals = _parse_changes(field, changes)
    client = connect(kubeconfig, context)

    async def go() -> None:
        t = tenant_for(client, tenant)
        try:
            todo = list(targets)
            if many:
                todo = []
                for k, _ in targets:
                    ns = namespace_for(client, namespace) if k.namespaced else None
                    lst = await client.list_all(k, namespace=ns, tenant=t, label_selector=selector)
                    todo += [(k, output.metadata(o).get("name")) for o in lst["items"]]
                if not todo:
                    print("No resources found.", file=sys.stderr)
            for k, n in todo:
                assert n is not None
                ns = namespace_for(client, namespace) if k.namespaced else None
                if not overwrite:
                    cur = output.mapping(output.metadata(await client.get(k, n, ns, t)).get(field)) or {}
                    clash = [
                        key for key, v in patch_vals.items() if v is not None and key in cur and cur[key] != v
                    ]
                    if clash:
                        raise CLIError(
                            f"'{clash[0]}' already has a value ({cur[clash[0]]}), and --overwrite is false"
                        )
                await client.patch(k, n, {"metadata": {field: patch_vals}}, ns, t)
                print(
                    f"{output.name_of(k, {'metadata': {'name': n}})} {'labeled' if field == 'labels' else 'annotated'}"
                )
        finally:
            await client.close()

    run(go())


def _command(field: str, doc: str) -> Callable[..., None]:
    """The ``label`` or ``annotate`` command: the same flags, editing ``metadata.<field>``."""

    def command(
        resource: list[str] = typer.Argument(..., help="KIND NAME KEY=VALUE... (KEY- removes)"),
        overwrite: bool = typer.Option(False, "--overwrite"),
        selector: str = typer.Option(
            None, "-l", "--selector", help="every object of KIND matching this selector"
        ),
        all_: bool = typer.Option(False, "--all", help="every object of KIND in the namespace"),
        namespace: str = NamespaceOpt,
        tenant: str = TenantOpt,
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
    ) -> None:
        _meta_edit(field, resource, namespace, tenant, kubeconfig, context, overwrite, selector, all_)

    verb = "label" if field == "labels" else "annotate"
    command.__doc__ = f"""{doc}

    Examples:
      centaurusctl {verb} pods web-1 tier=frontend
      centaurusctl {verb} deploy/hello owner=ops --overwrite
      centaurusctl {verb} pods -l app=hello tier=frontend
      centaurusctl {verb} configmaps --all -n demo reviewed=yes
      centaurusctl {verb} pods web-1 tier-
    """
    return command


app.command("label")(_command("labels", "Add, change or remove labels of an object."))
app.command("annotate")(_command("annotations", "Add, change or remove annotations of an object."))
