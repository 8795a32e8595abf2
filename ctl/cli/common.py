"""What every resource command shares: connection options, the client, kind lookup.

Commands take ``--kubeconfig``, ``--context``, ``-n/--namespace`` and ``--tenant``
through the option objects below, build a client with :func:`connect`, and resolve
the user's word for a kind (``po``, ``deploy``, ``pods.apps`` ...) with
:func:`kind_arg`, which fails with the same one-line message as kubectl.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer

from ctl.cli.errors import CLIError
from ctl.cli.output import OBJECT_FORMATS, output_option
from ctl.client import Client
from ctl.client.kubeconfig import ConfigError, load
from ctl.types import kinds
from ctl.types.kinds import Kind

T = TypeVar("T")

KubeconfigOpt = typer.Option(None, "--kubeconfig", envvar="KUBECONFIG", help="path to the client config")
ContextOpt = typer.Option(None, "--context", help="kubeconfig context to use")
NamespaceOpt = typer.Option(None, "-n", "--namespace", help="namespace (default: the context's)")
TenantOpt = typer.Option(None, "--tenant", help="tenant (default: the context's; system users may name any)")
OutputOpt = output_option(OBJECT_FORMATS)


def connect(kubeconfig: str | None, context: str | None = None, timeout: float = 30.0) -> Client:
    try:
        cfg = load(kubeconfig, context)
    except ConfigError as e:
        raise CLIError(str(e)) from None
    return Client(cfg, timeout=timeout)


def kind_arg(word: str) -> Kind:
    k = kinds.resolve(word)
    if k is None:
        raise CLIError(f'the server doesn\'t have a resource type "{word}"')
    return k


def tenant_for(client: Client, tenant: str | None) -> str | None:
    """Explicit --tenant wins, then the context's tenant, else the short path."""
    return tenant if tenant is not None else client.config.tenant


def namespace_for(client: Client, namespace: str | None) -> str:
    return namespace or client.config.namespace or "default"


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


async def with_client(client: Client, coro: Coroutine[Any, Any, T]) -> T:
    try:
        return await coro
    finally:
        await client.close()


def split_kind_name(args: list[str]) -> list[tuple[Kind, str | None]]:
    """``KIND NAME...``, ``KIND/NAME ...`` or ``KIND1,KIND2`` into (kind, name) pairs."""
    if not args:
        raise CLIError("you must specify the type of resource, e.g. 'pods' or 'deployments'")
    out: list[tuple[Kind, str | None]] = []
    if "/" in args[0]:
        for a in args:
            if "/" not in a:
                raise CLIError(
                    f"there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (got {a!r})"
                )
            k, _, n = a.partition("/")
            out.append((kind_arg(k), n))
        return out
    words = args[0].split(",")
    ks: list[Kind] = []
    for w in words:
        if w == "all":
            ks += [k for k in kinds.KINDS if "all" in k.categories]
        else:
            ks.append(kind_arg(w))
    if len(args) == 1:
        return [(k, None) for k in ks]
    if len(ks) != 1:
        raise CLIError("names can only be given with a single resource type")
    return [(ks[0], n) for n in args[1:]]


# ---------------------------------------------------------------- global flags
GLOBAL_FLAGS = {
    "--namespace": "namespace",
    "--context": "context",
    "--tenant": "tenant",
    "--kubeconfig": "kubeconfig",
}


def global_defaults(cmd: Any, values: dict[str, str]) -> dict[str, Any]:
    """A Click ``default_map`` giving every command under ``cmd`` the global flags' values.

    ``centaurusctl -n demo get pods`` works as kubectl's does: each command's own
    ``-n/--namespace``, ``--context``, ``--tenant`` or ``--kubeconfig`` option (found by its
    long flag, whatever the parameter is called) defaults to the value given before the
    command; a flag given after the command still wins.
    """
    out: dict[str, Any] = {}
    for p in getattr(cmd, "params", []):
        for flag, key in GLOBAL_FLAGS.items():
            if flag in getattr(p, "opts", ()) and key in values and p.name:
                out[p.name] = values[key]
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        m = global_defaults(sub, values)
        if m:
            out[name] = m
    return out


# ---------------------------------------------------------------- writes that report unknown fields
FIELD_VALIDATION = "Warn"  # what apply/create send: unknown fields are dropped and reported, as kubectl


async def create_validated(
    client: Client, obj: dict[str, Any], namespace: str | None, tenant: str | None, kind: Kind
) -> dict[str, Any]:
    """``client.create`` with ``?fieldValidation=Warn``; the warnings are printed by :func:`print_warnings`."""
    r: dict[str, Any] = await client.request(
        "POST",
        client.path(kind, namespace if kind.namespaced else None, tenant=tenant),
        obj,
        params={"fieldValidation": FIELD_VALIDATION},
    )
    return r


async def patch_validated(
    client: Client, kind: Kind, name: str, patch: Any, namespace: str | None, tenant: str | None
) -> dict[str, Any]:
    """A strategic merge patch with ``?fieldValidation=Warn``."""
    r: dict[str, Any] = await client.request(
        "PATCH",
        client.path(kind, namespace if kind.namespaced else None, name, tenant=tenant),
        patch,
        params={"fieldValidation": FIELD_VALIDATION},
        content_type="application/strategic-merge-patch+json",
    )
    return r


def warning_text(header: str) -> str:
    """``299 - "unknown field \\"spec.x\\""`` as kubectl prints it: ``unknown field "spec.x"``."""
    parts = header.split(" ", 2)
    text = parts[2] if len(parts) == 3 and parts[0].isdigit() else header
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def print_warnings(client: Client) -> None:
    """Print (and forget) the server's warnings, one ``Warning: ...`` line each on stderr."""
    import sys

    for w in client.warnings:
        print(f"Warning: {warning_text(w)}", file=sys.stderr)
    client.warnings.clear()
