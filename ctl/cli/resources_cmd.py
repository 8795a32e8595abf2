"""kubectl-style resource commands: apply, get, describe, delete, create, logs, exec, api-resources, version.

``apply`` is declarative like ``kubectl apply``: it remembers what was applied in the
``kubectl.kubernetes.io/last-applied-configuration`` annotation, so a field removed
from the manifest is removed from the object, and it reports ``created``,
``configured`` or ``unchanged`` per object. Every failure is one line and exit 1;
with several objects, the good ones are applied and each bad one is reported.
"""

from __future__ import annotations

import asyncio
import copy
import json
import sys
from typing import Any

import typer

from ctl.cli import output
from ctl.cli.common import (
    ContextOpt,
    KubeconfigOpt,
    NamespaceOpt,
    OutputOpt,
    TenantOpt,
    connect,
    kind_arg,
    namespace_for,
    run,
    split_kind_name,
    tenant_for,
)
from ctl.cli.errors import CLIError
from ctl.cli.manifests import load_manifests
from ctl.client import ApiError, Client, kind_of_object
from ctl.types import kinds, validation
from ctl.types.columns import age
from ctl.types.kinds import Kind
from ctl.types.patch import strategic_merge

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _apply_patch(last: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any]:
    """Merge patch that sets everything in ``desired`` and removes what ``last`` had but ``desired`` dropped."""

    def removed(old: Any, new: Any) -> Any:
        if not isinstance(old, dict) or not isinstance(new, dict):
            return new
        out = dict(new)
        for k, v in old.items():
            if k not in new:
                out[k] = None
            elif isinstance(v, dict) and isinstance(new[k], dict):
                out[k] = removed(v, new[k])
        return out

    result: dict[str, Any] = removed(last or {}, desired)
    return result


async def _apply_one(
    client: Client, obj: dict[str, Any], ns: str | None, tenant: str | None, dry: bool
) -> str:
    kind = kind_of_object(obj)
    md = obj.setdefault("metadata", {})
    if not md.get("name"):
        raise CLIError(f"{kind.kind}: metadata.name is required for apply")
    if kind.namespaced:
        if ns and md.get("namespace") and md["namespace"] != ns:
            raise CLIError(
                f"the namespace from the provided object {md['namespace']!r} does not match the namespace {ns!r}. "
                "You must pass '--namespace' to perform this operation."
            )
        md["namespace"] = md.get("namespace") or ns or client.config.namespace
    t = md.get("tenant") or tenant
    desired = copy.deepcopy(obj)
    desired["metadata"].pop(LAST_APPLIED, None)
    last_json = json.dumps(desired, sort_keys=True, separators=(",", ":"))
    ann = md.setdefault("annotations", {})
    ann[LAST_APPLIED] = last_json
    try:
        existing = await client.get(kind, md["name"], md.get("namespace"), t)
    except ApiError as e:
        if e.code != 404:
            raise
        if not dry:
            await client.create(obj, md.get("namespace"), t, kind=kind)
        return "created" + (" (dry run)" if dry else "")
    last_raw = (existing["metadata"].get("annotations") or {}).get(LAST_APPLIED)
    try:
        last = json.loads(last_raw) if last_raw else None
    except ValueError:
        last = None
    patch = _apply_patch(last, obj)
    patch["metadata"].pop("tenant", None)
    result = strategic_merge(existing, patch)
    validation.default(kind, result)
    if existing == result:
        return "unchanged"
    if not dry:
        await client.patch(kind, md["name"], patch, md.get("namespace"), t, patch_type="strategic")
    return "configured" + (" (dry run)" if dry else "")


def register(app: typer.Typer) -> None:  # noqa: C901 - one registration function per group
    @app.command("apply")
    def apply(
        filename: list[str] = typer.Option(..., "-f", "--filename", help="file, directory or - for stdin"),
        recursive: bool = typer.Option(False, "-R", "--recursive", help="process directories recursively"),
        namespace: str = NamespaceOpt,
        tenant: str = TenantOpt,
        dry_run: bool = typer.Option(False, "--dry-run", help="only show what would happen"),
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
    ) -> None:
        """Create or update objects from manifests (kind/name created|configured|unchanged)."""
        objs = load_manifests(filename, recursive)
        client = connect(kubeconfig, context)

        async def go() -> int:
            failed = 0
            try:
                # Namespaces and tenants first, so that objects inside them can be created in one run.
                order = sorted(objs, key=lambda so: 0 if so[1].get("kind") in ("Tenant", "Namespace") else 1)
                for src, obj in order:
                    label = f"{obj.get('kind', '?').lower()}/{(obj.get('metadata') or {}).get('name', '?')}"
                    try:
                        kind = kind_of_object(obj)
                        label = output.name_of(kind, obj)
                        verdict = await _apply_one(
                            client, obj, namespace, tenant_for(client, tenant), dry_run
                        )
                        print(f"{label} {verdict}")
                    except ValueError as e:
                        failed += 1
                        print(f"error: {src}: {e}", file=sys.stderr)
                    except ApiError as e:
                        failed += 1
                        print(
                            f"Error from server ({e.reason or e.code}) applying {label} from {src}: {e}",
                            file=sys.stderr,
                        )
                    except CLIError as e:
                        failed += 1
                        print(f"error: {src}: {e}", file=sys.stderr)
            finally:
                await client.close()
            return failed

        if run(go()):
            raise typer.Exit(1)

    @app.command("get")
    def get(
        resource: list[str] = typer.Argument(..., help="KIND [NAME...] or KIND/NAME"),
        namespace: str = NamespaceOpt,
        all_namespaces: bool = typer.Option(False, "-A", "--all-namespaces"),
        tenant: str = TenantOpt,
        all_tenants: bool = typer.Option(
            False, "-T", "--all-tenants", help="list across tenants (system users)"
        ),
        selector: str = typer.Option(None, "-l", "--selector", help="label selector"),
        field_selector: str = typer.Option(None, "--field-selector"),
        out: str = OutputOpt,
        watch: bool = typer.Option(False, "-w", "--watch", help="after listing, watch for changes"),
        show_labels: bool = typer.Option(False, "--show-labels"),
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
    ) -> None:
        """Show objects as a table, YAML, JSON or names."""
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
                            items[0][0], [o for _, o in items], out, single=True, show_labels=show_labels
                        )
                    else:
                        for k, o in items:
                            output.emit(k, [o], out, single=True, show_labels=show_labels)
                    if watch:
                        k0, o0 = items[0]
                        await _watch(
                            client,
                            k0,
                            o0["metadata"].get("namespace"),
                            t,
                            None,
                            f"metadata.name={o0['metadata']['name']}",
                            out,
                            False,
                            all_tenants,
                            o0["metadata"]["resourceVersion"],
                            show_labels,
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
                    )
                    if not items_ and out in ("table", "wide") and len(pairs) == 1:
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
                        )
            finally:
                await client.close()

        run(go())

    @app.command("describe")
    def describe(
        resource: list[str] = typer.Argument(..., help="KIND NAME or KIND/NAME"),
        namespace: str = NamespaceOpt,
        tenant: str = TenantOpt,
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
    ) -> None:
        """Show an object in detail, with its events."""
        pairs = split_kind_name(resource)
        client = connect(kubeconfig, context)

        async def go() -> None:
            t = tenant_for(client, tenant)
            try:
                for k, n in pairs:
                    ns = namespace_for(client, namespace) if k.namespaced else None
                    objs = (
                        [await client.get(k, n, ns, t)]
                        if n
                        else (await client.list_all(k, namespace=ns, tenant=t))["items"]
                    )
                    for o in objs:
                        print(_describe(k, o))
                        print(await _events_for(client, o))
            finally:
                await client.close()

        run(go())

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
        wait: bool = typer.Option(False, "--wait", help="wait until the objects are gone"),
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
    ) -> None:
        """Delete objects by name, by file or by label selector."""
        if cascade not in ("background", "foreground", "orphan"):
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
        policy = {"background": "Background", "foreground": "Foreground", "orphan": "Orphan"}[cascade]
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
                        targets.extend((k, o["metadata"]["name"], ns, t) for o in lst["items"])
                    else:
                        raise CLIError(
                            "resource(s) were provided, but no name was specified (use a name, -l SELECTOR or --all)"
                        )
                if not targets and not ignore_not_found:
                    print("No resources found", file=sys.stderr)
                for k, n, ns, tt in targets:
                    try:
                        await client.delete(
                            k, n, ns, tt, propagation_policy=policy, grace_period_seconds=grace
                        )
                        label = k.singular if not k.group else f"{k.singular}.{k.group}"
                        print(f'{label} "{n}" deleted')
                    except ApiError as e:
                        if e.code == 404 and ignore_not_found:
                            continue
                        failed += 1
                        print(f"Error from server ({e.reason or e.code}): {e}", file=sys.stderr)
                if wait:
                    for k, n, ns, tt in targets:
                        for _ in range(600):
                            try:
                                await client.get(k, n, ns, tt)
                            except ApiError as e:
                                if e.code == 404:
                                    break
                                raise
                            await asyncio.sleep(0.2)
            finally:
                await client.close()
            return failed

        if run(go()):
            raise typer.Exit(1)

    create_app = typer.Typer(help="Create an object from the command line.", no_args_is_help=True)
    app.add_typer(create_app, name="create")

    @create_app.command("namespace")
    def create_namespace(
        name: str,
        tenant: str = TenantOpt,
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
    ) -> None:
        """Create a namespace."""
        client = connect(kubeconfig, context)
        obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        run(_create(client, obj, tenant_for(client, tenant)))
        print(f"namespace/{name} created")

    def _meta_edit(
        field: str,
        resource: list[str],
        namespace: str | None,
        tenant: str | None,
        kubeconfig: str | None,
        context: str | None,
        overwrite: bool,
    ) -> None:
        """label/annotate: KIND NAME k=v k2- ... (k- removes a key)."""
        if len(resource) < 2:
            raise CLIError(f"{field[:-1]} needs KIND NAME (or KIND/NAME) and at least one KEY=VALUE or KEY-")
        if "/" in resource[0]:
            targets, changes = split_kind_name([resource[0]]), resource[1:]
        else:
            targets, changes = split_kind_name(resource[:2]), resource[2:]
        if not changes:
            raise CLIError(f"at least one {field[:-1]} update is required (KEY=VALUE or KEY-)")
        patch_vals: dict[str, Any] = {}
        for c in changes:
            if c.endswith("-") and "=" not in c:
                patch_vals[c[:-1]] = None
            elif "=" in c:
                k, v = c.split("=", 1)
                patch_vals[k] = v
            else:
                raise CLIError(f"invalid {field[:-1]} update {c!r}: use KEY=VALUE or KEY-")
        client = connect(kubeconfig, context)

        async def go() -> None:
            t = tenant_for(client, tenant)
            try:
                for k, n in targets:
                    assert n is not None
                    ns = namespace_for(client, namespace) if k.namespaced else None
                    if not overwrite:
                        cur = (await client.get(k, n, ns, t))["metadata"].get(field) or {}
                        clash = [
                            key
                            for key, v in patch_vals.items()
                            if v is not None and key in cur and cur[key] != v
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

    @app.command("label")
    def label(
        resource: list[str] = typer.Argument(..., help="KIND NAME KEY=VALUE... (KEY- removes)"),
        overwrite: bool = typer.Option(False, "--overwrite"),
        namespace: str = NamespaceOpt,
        tenant: str = TenantOpt,
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
    ) -> None:
        """Add, change or remove labels of an object."""
        _meta_edit("labels", resource, namespace, tenant, kubeconfig, context, overwrite)

    @app.command("annotate")
    def annotate(
        resource: list[str] = typer.Argument(..., help="KIND NAME KEY=VALUE... (KEY- removes)"),
        overwrite: bool = typer.Option(False, "--overwrite"),
        namespace: str = NamespaceOpt,
        tenant: str = TenantOpt,
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
    ) -> None:
        """Add, change or remove annotations of an object."""
        _meta_edit("annotations", resource, namespace, tenant, kubeconfig, context, overwrite)

    def _cordon(node: str, on: bool, kubeconfig: str | None, context: str | None) -> None:
        client = connect(kubeconfig, context)

        async def go() -> None:
            try:
                await client.patch("nodes", node, {"spec": {"unschedulable": True if on else None}})
            finally:
                await client.close()

        run(go())
        print(f"node/{node} {'cordoned' if on else 'uncordoned'}")

    @app.command("cordon")
    def cordon(node: str, kubeconfig: str = KubeconfigOpt, context: str = ContextOpt) -> None:
        """Mark a node unschedulable."""
        _cordon(node, True, kubeconfig, context)

    @app.command("uncordon")
    def uncordon(node: str, kubeconfig: str = KubeconfigOpt, context: str = ContextOpt) -> None:
        """Mark a node schedulable again."""
        _cordon(node, False, kubeconfig, context)

    @app.command("api-resources")
    def api_resources(
        out: str = typer.Option("table", "-o", "--output", help="table|wide|name"),
    ) -> None:
        """List the kinds the API serves."""
        rows = []
        for k in kinds.KINDS:
            if out == "name":
                print(k.plural if not k.group else f"{k.plural}.{k.group}")
                continue
            row = [k.plural, ",".join(k.short), k.api_version, str(k.namespaced).lower(), k.kind]
            if out == "wide":
                row += [k.scope, ",".join(k.verbs)]
            rows.append(row)
        if out != "name":
            hdr = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"] + (
                ["SCOPE", "VERBS"] if out == "wide" else []
            )
            print(output.plain_table(hdr, rows))

    @app.command("version")
    def version(
        client_only: bool = typer.Option(False, "--client"),
        out: str = typer.Option("", "-o", "--output", help="json|yaml"),
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
    ) -> None:
        """Client and server versions."""
        import ctl

        info: dict[str, Any] = {
            "clientVersion": {"centaurusVersion": ctl.__version__, "gitVersion": f"v{ctl.__version__}"}
        }
        if not client_only:
            client = connect(kubeconfig, context, timeout=5)
            info["serverVersion"] = run(_with(client, client.request("GET", "/version")))
        if out == "json":
            print(json.dumps(info, indent=2))
        elif out == "yaml":
            print(output.to_yaml(info), end="")
        else:
            print(f"Client Version: v{ctl.__version__}")
            if "serverVersion" in info:
                sv = info["serverVersion"]
                print(
                    f"Server Version: {sv.get('gitVersion')} (Kubernetes API {sv.get('major')}.{sv.get('minor')})"
                )

    @app.command("logs")
    def logs(
        pod: str,
        container: str = typer.Option(None, "-c", "--container"),
        follow: bool = typer.Option(False, "-f", "--follow"),
        tail: int = typer.Option(None, "--tail"),
        previous: bool = typer.Option(False, "-p", "--previous"),
        namespace: str = NamespaceOpt,
        tenant: str = TenantOpt,
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
    ) -> None:
        """Print a container's output (or a VM's console)."""
        client = connect(kubeconfig, context, timeout=3600 if follow else 60)
        name = pod.split("/", 1)[1] if pod.startswith(("pod/", "pods/", "po/")) else pod

        async def go() -> None:
            try:
                path = client.path(
                    "pods", namespace_for(client, namespace), name, "log", tenant_for(client, tenant)
                )
                params = {
                    "container": container,
                    "follow": "true" if follow else None,
                    "tailLines": tail,
                    "previous": "true" if previous else None,
                }
                s = await client.session()
                import aiohttp

                async with s.get(
                    client._url + path,
                    params={k: str(v) for k, v in params.items() if v is not None},
                    timeout=aiohttp.ClientTimeout(total=None),
                ) as resp:
                    if resp.status >= 400:
                        raise client._error(resp.status, await resp.read())
                    async for chunk in resp.content.iter_any():
                        sys.stdout.buffer.write(chunk)
                        sys.stdout.flush()
            finally:
                await client.close()

        run(go())

    @app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def exec_(
        ctx: typer.Context,
        pod: str,
        container: str = typer.Option(None, "-c", "--container"),
        namespace: str = NamespaceOpt,
        tenant: str = TenantOpt,
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
    ) -> None:
        """Run a command in a container: centaurusctl exec POD -- CMD [ARGS...]."""
        argv = [a for a in ctx.args if a != "--"]
        if not argv:
            raise CLIError("you must specify at least one command for the container: exec POD -- CMD")
        client = connect(kubeconfig, context, timeout=120)

        async def go() -> dict[str, Any]:
            try:
                path = client.path(
                    "pods", namespace_for(client, namespace), pod, "exec", tenant_for(client, tenant)
                )
                r: dict[str, Any] = await client.request(
                    "POST", path, {"command": argv, "container": container}
                )
                return r
            finally:
                await client.close()

        res = run(go())
        sys.stdout.write(res.get("stdout", ""))
        sys.stderr.write(res.get("stderr", ""))
        rc = int(res.get("exitCode", 0))
        if rc:
            raise typer.Exit(rc)


async def _with(client: Client, coro: Any) -> Any:
    try:
        return await coro
    finally:
        await client.close()


async def _create(client: Client, obj: dict[str, Any], tenant: str | None) -> None:
    try:
        await client.create(obj, tenant=tenant)
    finally:
        await client.close()


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
    rv: str,
    show_labels: bool,
) -> None:
    async for typ, obj in client.watch(kind, ns, tenant, rv, selector, field_selector):
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


def _describe(kind: Kind, obj: dict[str, Any]) -> str:
    md = obj.get("metadata", {})
    lines = [f"Name:         {md.get('name')}"]
    if md.get("namespace"):
        lines.append(f"Namespace:    {md.get('namespace')}")
    if md.get("tenant"):
        lines.append(f"Tenant:       {md.get('tenant')}")
    lines.append(f"Kind:         {kind.kind} ({kind.api_version})")
    lines.append(f"UID:          {md.get('uid')}")
    lines.append(f"Created:      {md.get('creationTimestamp')} ({age(md.get('creationTimestamp'))} ago)")
    for f, title in (("labels", "Labels"), ("annotations", "Annotations")):
        vals = {k: v for k, v in (md.get(f) or {}).items() if k != LAST_APPLIED}
        lines.append(
            f"{title + ':':<14}" + ("\n              ".join(f"{k}={v}" for k, v in vals.items()) or "<none>")
        )
    for ref in md.get("ownerReferences") or []:
        lines.append(f"Controlled By: {ref.get('kind')}/{ref.get('name')}")
    if md.get("deletionTimestamp"):
        lines.append(f"Terminating since: {md['deletionTimestamp']}")
    for section in ("spec", "status", "data"):
        if obj.get(section):
            body = output.to_yaml(
                obj[section]
                if section != "data" or kind.kind != "Secret"
                else {k: f"<{len(v)} bytes>" for k, v in obj[section].items()}
            )
            lines.append(f"{section.title()}:")
            lines += ["  " + ln for ln in body.rstrip().splitlines()]
    return "\n".join(lines)


async def _events_for(client: Client, obj: dict[str, Any]) -> str:
    md = obj.get("metadata", {})
    ns = md.get("namespace") or "default"
    try:
        lst = await client.list(
            "events",
            namespace=ns,
            tenant=md.get("tenant"),
            field_selector=f"involvedObject.name={md.get('name')}",
        )
    except ApiError:
        return "Events:       <unavailable>"
    evs = [e for e in lst["items"] if (e.get("involvedObject") or {}).get("uid") in (None, md.get("uid"))]
    if not evs:
        return "Events:       <none>\n"
    rows = [
        [
            e.get("type", ""),
            e.get("reason", ""),
            age(e.get("lastTimestamp") or e["metadata"].get("creationTimestamp")),
            (e.get("source") or {}).get("component", ""),
            e.get("message", ""),
        ]
        for e in evs
    ]
    return (
        "Events:\n"
        + "\n".join(
            "  " + ln
            for ln in output.plain_table(["TYPE", "REASON", "AGE", "FROM", "MESSAGE"], rows).splitlines()
        )
        + "\n"
    )


__all__ = ["register", "kind_arg"]
