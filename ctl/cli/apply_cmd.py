"""``centaurusctl apply -f FILE|DIR|-``: declarative create-or-update, like ``kubectl apply``.

``apply`` remembers what was applied in the
``kubectl.kubernetes.io/last-applied-configuration`` annotation, so a field removed
from the manifest is removed from the object, and it reports ``created``,
``configured`` or ``unchanged`` per object. Whether an object would change is decided
locally with the same strategic merge the server applies (:mod:`ctl.types.patch`).
Every failure is one line and exit 1; with several objects, the good ones are applied
and each bad one is reported. ``init --demo`` applies its manifests through
:func:`apply_one` too.
"""

from __future__ import annotations

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
    TenantOpt,
    connect,
    create_validated,
    patch_validated,
    print_warnings,
    run,
    tenant_for,
)
from ctl.cli.errors import CLIError
from ctl.cli.manifests import load_manifests
from ctl.client import ApiError, Client, kind_of_object
from ctl.types import validation
from ctl.types.patch import strategic_merge

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

app = typer.Typer()


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


async def apply_one(
    client: Client, obj: dict[str, Any], ns: str | None, tenant: str | None, dry: bool
) -> str:
    """Apply one manifest object; returns ``created``, ``configured`` or ``unchanged`` (``(dry run)`` added)."""
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
            await create_validated(client, obj, md.get("namespace"), t, kind)
        return "created" + (" (dry run)" if dry else "")
    last_raw = (output.mapping(output.metadata(existing).get("annotations")) or {}).get(LAST_APPLIED)
    try:
        last = json.loads(last_raw) if isinstance(last_raw, str) and last_raw else None
    except ValueError:
        last = None
    patch = _apply_patch(last, obj)
    patch["metadata"].pop("tenant", None)
    result = strategic_merge(existing, patch)
    validation.default(kind, result)
    if existing == result:
        return "unchanged"
    if not dry:
        await patch_validated(client, kind, md["name"], patch, md.get("namespace"), t)
    return "configured" + (" (dry run)" if dry else "")


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
    """Create or update objects from manifests (kind/name created|configured|unchanged).

    Unknown fields are dropped and reported (``Warning: unknown field "spec.x"``), as kubectl
    does with the server's fieldValidation=Warn.

    Examples:
      centaurusctl apply -f manifests/demo.yaml
      centaurusctl apply -f manifests/examples/ -R
      cat app.yaml | centaurusctl apply -f -
      centaurusctl apply -f deploy.yaml --dry-run
    """
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
                    try:
                        verdict = await apply_one(client, obj, namespace, tenant_for(client, tenant), dry_run)
                    finally:
                        print_warnings(client)  # before the object's line, as kubectl
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
