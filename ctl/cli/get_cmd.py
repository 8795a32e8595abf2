"""``centaurusctl get KIND [NAME...]``: show objects as a table, YAML, JSON or names.

Like ``kubectl get``: ``KIND NAME...``, ``KIND/NAME``, ``KIND1,KIND2`` and ``all``; ``-A``
lists every namespace and ``-T`` every tenant (system users); ``-l``/``--field-selector``
filter on the server; ``-w`` keeps printing changes after the list. Rendering is
:mod:`ctl.cli.output`, which prints a malformed object's bad fields as ``<invalid>``.
"""

from __future__ import annotations

import json
import sys

import typer

from ctl.cli import output
from ctl.cli.common import (
    ContextOpt,
    KubeconfigOpt,
    NamespaceOpt,
    OutputOpt,
    TenantOpt,
    connect,
    namespace_for,
    run,
    split_kind_name,
    tenant_for,
)
from ctl.client import Client
from ctl.types import kinds
from ctl.types.kinds import Kind

app = typer.Typer()


@app.command("get")
def get(
    resource: list[str] = typer.Argument(..., help="KIND [NAME...] or KIND/NAME"),
    namespace: str = NamespaceOpt,
    all_namespaces: bool = typer.Option(False, "-A", "--all-namespaces"),
    tenant: str = TenantOpt,
    all_tenants: bool = typer.Option(False, "-T", "--all-tenants", help="list across tenants (system users)"),
    selector: str = typer.Option(None, "-l", "--selector", help="label selector"),
    field_selector: str = typer.Option(None, "--field-selector"),
    out: str = OutputOpt,
    watch: bool = typer.Option(False, "-w", "--watch", help="after listing, watch for changes"),
    sort_by: str = typer.Option(None, "--sort-by", help="JSONPath to sort the list by, e.g. .metadata.name"),
    no_headers: bool = typer.Option(False, "--no-headers", help="omit the header line of tables"),
    show_labels: bool = typer.Option(False, "--show-labels"),
    show_managed_fields: bool = typer.Option(
        False, "--show-managed-fields", help="keep metadata.managedFields in JSON/YAML output"
    ),
    kubeconfig: str = KubeconfigOpt,
    context: str = ContextOpt,
) -> None:
    """Show objects as a table, YAML, JSON, names or a template.

    Examples:
      centaurusctl get pods -n demo
      centaurusctl get deploy,rs -A -o wide
      centaurusctl get pod/hello-abc -o yaml
      centaurusctl get pods -o jsonpath='{.items[*].metadata.name}'
      centaurusctl get pods -o custom-columns=NAME:.metadata.name,NODE:.spec.nodeName --no-headers
      centaurusctl get pods --sort-by=.metadata.creationTimestamp -l app=hello
    """
    output.check_format(out)
    pairs = split_kind_name(resource)
    client = connect(kubeconfig, context)

    async def go() -> None:
        t = "all" if all_tenants else tenant_for(client, tenant)
        try:
            named = [(k, n) for k, n in pairs if n]
            if named:
                items = []
                for k, n in named:
                    ns = namespace_for(client, namespace) if k.namespaced else None
                    assert n is not None
                    items.append((k, await client.get(k, n, ns, t)))
                kinds_seen = {k.kind for k, _ in items}
                if len(kinds_seen) == 1:
                    output.emit(
                        items[0][0],
                        [o for _, o in items],
                        out,
                        single=True,
                        show_labels=show_labels,
                        show_managed_fields=show_managed_fields,
                        headers=not no_headers,
                    )
                else:
                    for k, o in items:
                        output.emit(
                            k,
                            [o],
                            out,
                            single=True,
                            show_labels=show_labels,
                            show_managed_fields=show_managed_fields,
                            headers=not no_headers,
                        )
                if watch:
                    k0, o0 = items[0]
                    md0 = output.metadata(o0)
                    await _watch(
                        client,
                        k0,
                        md0.get("namespace"),
                        t,
                        None,
                        f"metadata.name={md0.get('name')}",
                        out,
                        False,
                        all_tenants,
                        md0.get("resourceVersion"),
                        show_labels,
                        show_managed_fields,
                    )
                return
            printed = False
            for k, _ in pairs:
                ns = (
                    None
                    if (all_namespaces or all_tenants or not k.namespaced)
                    else namespace_for(client, namespace)
                )
                lst = await client.list_all(
                    k, namespace=ns, tenant=t, label_selector=selector, field_selector=field_selector
                )
                items_ = lst["items"]
                if out in ("table", "wide") and len(pairs) > 1 and items_:
                    if printed:
                        print()
                    printed = True
                output.emit(
                    k,
                    items_,
                    out,
                    show_namespace=k.namespaced and (all_namespaces or all_tenants),
                    show_tenant=all_tenants and k.scope != kinds.CLUSTER,
                    show_labels=show_labels,
                    show_managed_fields=show_managed_fields,
                    sort_by=sort_by,
                    headers=not no_headers,
                )
                if (
                    not items_
                    and (out in ("table", "wide") or out.startswith("custom-columns="))
                    and len(pairs) == 1
                ):
                    where = "" if not k.namespaced or ns is None else f" in {ns} namespace"
                    print(f"No resources found{where}.", file=sys.stderr)
                if watch:
                    await _watch(
                        client,
                        k,
                        ns,
                        t,
                        selector,
                        field_selector,
                        out,
                        k.namespaced and all_namespaces,
                        all_tenants,
                        lst["metadata"]["resourceVersion"],
                        show_labels,
                        show_managed_fields,
                    )
        finally:
            await client.close()

    run(go())


async def _watch(
    client: Client,
    kind: Kind,
    ns: str | None,
    tenant: str | None,
    selector: str | None,
    field_selector: str | None,
    out: str,
    show_ns: bool,
    show_tenant: bool,
    rv: str | None,
    show_labels: bool,
    show_managed_fields: bool = False,
) -> None:
    async for typ, obj in client.watch(kind, ns, tenant, rv, selector, field_selector):
        if not show_managed_fields:
            obj = output.without_managed_fields(obj)
        if out in ("table", "wide"):
            line = output.table(
                kind,
                [obj],
                wide=out == "wide",
                show_namespace=show_ns,
                show_tenant=show_tenant,
                show_labels=show_labels,
            ).split("\n", 1)[-1]
            print(line + ("   (deleted)" if typ == "DELETED" else ""), flush=True)
        elif out == "name":
            print(output.name_of(kind, obj), flush=True)
        elif out == "json":
            print(json.dumps({"type": typ, "object": obj}), flush=True)
        else:
            print("---\n" + output.to_yaml({"type": typ, "object": obj}), end="", flush=True)
