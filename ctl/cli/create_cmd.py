"""``centaurusctl create ...``: create objects from files or from the command line.

``create -f FILE|DIR|-`` creates every object of the manifests (an object that exists is an
error, as in kubectl; unlike ``apply`` nothing is updated). The generators build the object
kubectl's would: ``create namespace NAME``, ``create deployment NAME --image IMG [--replicas N]
[-- CMD...]`` (labels ``app: NAME``, one container named after the image),
``create configmap NAME --from-literal k=v --from-file [KEY=]PATH`` and ``create secret
generic NAME`` with the same sources (values base64-encoded into ``data``). Other modules add
their own sub-commands to the same group (``create tenant`` and ``create token`` in
:mod:`ctl.cli.tenant_cmd`, ``create job|cronjob`` in :mod:`ctl.cli.batch_cmd`).
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import typer

from ctl.cli import output
from ctl.cli.common import (
    ContextOpt,
    KubeconfigOpt,
    NamespaceOpt,
    TenantOpt,
    connect,
    create_validated,
    global_defaults,
    namespace_for,
    print_warnings,
    run,
    tenant_for,
    with_client,
)
from ctl.cli.errors import CLIError
from ctl.cli.manifests import load_manifests
from ctl.client import ApiError, Client, kind_of_object

app = typer.Typer(no_args_is_help=True)


@app.callback(invoke_without_command=True)
def create_from_files(
    ctx: typer.Context,
    filename: list[str] = typer.Option(
        None, "-f", "--filename", help="manifest file, directory or - (stdin)"
    ),
    recursive: bool = typer.Option(False, "-R", "--recursive", help="read directories recursively"),
    namespace: str = NamespaceOpt,
    tenant: str = TenantOpt,
    kubeconfig: str = KubeconfigOpt,
    context: str = ContextOpt,
) -> None:
    """Create objects from files or from the command line.

    Examples:
      centaurusctl create -f manifests/demo.yaml
      centaurusctl create deployment web --image busybox:latest --replicas 2 -n demo
      centaurusctl create configmap settings --from-literal mode=fast --from-file conf=./app.conf
      centaurusctl create secret generic creds --from-literal password=s3cret
    """
    if ctx.invoked_subcommand is not None:
        if filename:
            raise CLIError("-f/--filename cannot be combined with a generator: use create -f FILE alone")
        given = {"namespace": namespace, "tenant": tenant, "kubeconfig": kubeconfig, "context": context}
        values = {k: v for k, v in given.items() if v}
        if values:  # create -n demo deployment ...: the generator's own options default to them
            ctx.default_map = {**(ctx.default_map or {}), **global_defaults(ctx.command, values)}
        return
    if not filename:
        raise CLIError(
            "must specify -f/--filename or a generator (create deployment|configmap|secret|namespace)"
        )
    objs = load_manifests(filename, recursive)
    client = connect(kubeconfig, context)

    async def go() -> int:
        failed = 0
        ns = namespace_for(client, namespace) if namespace else None
        t = tenant_for(client, tenant)
        for src, obj in objs:
            try:
                kind = kind_of_object(obj)
                md = obj.setdefault("metadata", {})
                if kind.namespaced:
                    md["namespace"] = md.get("namespace") or ns or client.config.namespace
                try:
                    created = await create_validated(
                        client, obj, md.get("namespace"), md.get("tenant") or t, kind
                    )
                finally:
                    print_warnings(client)
                print(f"{output.name_of(kind, created)} created")
            except (
                ApiError,
                CLIError,
                ValueError,
                KeyError,
            ) as e:  # one line each, the others are still created
                if isinstance(e, ApiError):
                    print(
                        f"Error from server ({e.reason or e.code}): error when creating {src!r}: {e}",
                        file=sys.stderr,
                    )
                else:
                    print(f"error: {src}: {e}", file=sys.stderr)
                failed += 1
        return failed

    failed = run(with_client(client, go()))
    if failed:
        raise typer.Exit(1)
    raise typer.Exit(0)


def _create(
    client: Client, obj: dict[str, Any], namespaced: bool, namespace: str | None, tenant: str | None
) -> None:
    async def go() -> dict[str, Any]:
        ns = namespace_for(client, namespace) if namespaced else None
        if ns:
            obj["metadata"]["namespace"] = ns
        return await client.create(obj, ns, tenant_for(client, tenant))

    created = run(with_client(client, go()))
    print(f"{output.name_of(kind_of_object(created), created)} created")


@app.command("namespace")
def create_namespace(
    name: str,
    tenant: str = TenantOpt,
    kubeconfig: str = KubeconfigOpt,
    context: str = ContextOpt,
) -> None:
    """Create a namespace.

    Examples:
      centaurusctl create namespace demo
    """
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    _create(connect(kubeconfig, context), obj, False, None, tenant)


@app.command("deployment", context_settings={"allow_extra_args": True})
def create_deployment(
    ctx: typer.Context,
    name: str,
    image: str = typer.Option(None, "--image", help="the container image (required)"),
    replicas: int = typer.Option(1, "-r", "--replicas", min=0),
    port: int = typer.Option(None, "--port", help="the container port to expose"),
    namespace: str = NamespaceOpt,
    tenant: str = TenantOpt,
    kubeconfig: str = KubeconfigOpt,
    context: str = ContextOpt,
) -> None:
    """Create a deployment of one image (labels app=NAME), as kubectl's generator does.

    Examples:
      centaurusctl create deployment web --image busybox:latest --replicas 3
      centaurusctl create deployment sleeper --image busybox:latest -- sleep 3600
    """
    if not image:
        raise CLIError('required flag "--image" not set: create deployment NAME --image IMAGE')
    labels = {"app": name}
    cname = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0] or "main"
    container: dict[str, Any] = {"name": cname, "image": image}
    cmd = [a for a in ctx.args if a != "--"]
    if cmd:
        container["command"] = cmd
    if port:
        container["ports"] = [{"containerPort": port}]
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": [container]}},
        },
    }
    _create(connect(kubeconfig, context), obj, True, namespace, tenant)


def _data_from(literals: list[str] | None, files: list[str] | None) -> dict[str, bytes]:
    """``--from-literal KEY=VALUE`` and ``--from-file [KEY=]PATH`` (a directory: each file in it)."""
    data: dict[str, bytes] = {}
    for lit in literals or []:
        k, sep, v = lit.partition("=")
        if not sep or not k:
            raise CLIError(f"invalid literal source {lit!r}, expected KEY=VALUE")
        data[k] = v.encode()
    for spec in files or []:
        k, sep, path = spec.partition("=")
        if not sep:
            k, path = "", spec
        p = Path(path)
        try:
            if p.is_dir():
                if k:
                    raise CLIError(f"cannot give a key for a directory source {spec!r}")
                for f in sorted(p.iterdir()):
                    if f.is_file():
                        data[f.name] = f.read_bytes()
                continue
            data[k or p.name] = p.read_bytes()
        except OSError as e:
            raise CLIError(f"cannot read {path}: {e.strerror or e}") from None
    return data


@app.command("configmap")
def create_configmap(
    name: str,
    from_literal: list[str] = typer.Option(None, "--from-literal", help="KEY=VALUE (repeatable)"),
    from_file: list[str] = typer.Option(
        None, "--from-file", help="[KEY=]PATH, a file or a directory (repeatable)"
    ),
    namespace: str = NamespaceOpt,
    tenant: str = TenantOpt,
    kubeconfig: str = KubeconfigOpt,
    context: str = ContextOpt,
) -> None:
    """Create a config map from literals and files.

    Examples:
      centaurusctl create configmap settings --from-literal mode=fast --from-literal level=3
      centaurusctl create configmap conf --from-file app.conf=./config/app.conf
    """
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    text: dict[str, str] = {}
    binary: dict[str, str] = {}
    for k, v in _data_from(from_literal, from_file).items():
        try:
            text[k] = v.decode()
        except UnicodeDecodeError:
            binary[k] = base64.b64encode(v).decode()
    if text:
        obj["data"] = text
    if binary:
        obj["binaryData"] = binary
    _create(connect(kubeconfig, context), obj, True, namespace, tenant)


secret_app = typer.Typer(help="Create a secret.", no_args_is_help=True)
app.add_typer(secret_app, name="secret")


@secret_app.command("generic")
def create_secret_generic(
    name: str,
    from_literal: list[str] = typer.Option(None, "--from-literal", help="KEY=VALUE (repeatable)"),
    from_file: list[str] = typer.Option(
        None, "--from-file", help="[KEY=]PATH, a file or a directory (repeatable)"
    ),
    type_: str = typer.Option("Opaque", "--type", help="the secret's type"),
    namespace: str = NamespaceOpt,
    tenant: str = TenantOpt,
    kubeconfig: str = KubeconfigOpt,
    context: str = ContextOpt,
) -> None:
    """Create a secret from literals and files (values base64-encoded into data).

    Examples:
      centaurusctl create secret generic creds --from-literal user=admin --from-literal password=s3cret
      centaurusctl create secret generic tls-files --from-file ./certs
    """
    data = {k: base64.b64encode(v).decode() for k, v in _data_from(from_literal, from_file).items()}
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": type_, "data": data}
    _create(connect(kubeconfig, context), obj, True, namespace, tenant)
