"""``centaurusctl config``: view the client config, list and switch contexts."""

from __future__ import annotations

import copy

import typer

from ctl.cli import output
from ctl.cli.common import KubeconfigOpt
from ctl.cli.errors import CLIError
from ctl.client.kubeconfig import TENANT_EXT, kubeconfig_path, read_doc, write_doc

app = typer.Typer(help="Show and change the client config (kubeconfig).", no_args_is_help=True)


@app.command("view")
def view(
    raw: bool = typer.Option(False, "--raw", help="show secrets (tokens, keys)"),
    kubeconfig: str = KubeconfigOpt,
) -> None:
    """Print the client config (secrets redacted unless --raw)."""
    p = kubeconfig_path(kubeconfig)
    if not p.exists():
        raise CLIError(f"no client config at {p}: run 'centaurusctl init' first")
    doc = copy.deepcopy(read_doc(p))
    if not raw:
        for u in doc.get("users", []):
            for k in ("token", "client-key-data"):
                if (u.get("user") or {}).get(k):
                    u["user"][k] = "REDACTED"
        for c in doc.get("clusters", []):
            if (c.get("cluster") or {}).get("certificate-authority-data"):
                c["cluster"]["certificate-authority-data"] = "DATA+OMITTED"
    print(output.to_yaml(doc), end="")


@app.command("get-contexts")
def get_contexts(kubeconfig: str = KubeconfigOpt) -> None:
    """List the contexts; the current one is marked with '*'."""
    doc = read_doc(kubeconfig_path(kubeconfig))
    cur = doc.get("current-context")
    rows = []
    for c in doc.get("contexts", []):
        ctx = c.get("context") or {}
        tenant = next(
            (
                (e.get("extension") or {}).get("tenant", "")
                for e in ctx.get("extensions") or []
                if e.get("name") == TENANT_EXT
            ),
            "",
        )
        rows.append(
            [
                "*" if c.get("name") == cur else "",
                c.get("name", ""),
                ctx.get("cluster", ""),
                ctx.get("user", ""),
                tenant or "system",
                ctx.get("namespace", ""),
            ]
        )
    print(output.plain_table(["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "TENANT", "NAMESPACE"], rows))


@app.command("current-context")
def current_context(kubeconfig: str = KubeconfigOpt) -> None:
    """Print the current context's name."""
    doc = read_doc(kubeconfig_path(kubeconfig))
    if not doc.get("current-context"):
        raise CLIError("current-context is not set")
    print(doc["current-context"])


@app.command("use-context")
def use_context(name: str, kubeconfig: str = KubeconfigOpt) -> None:
    """Switch the current context."""
    p = kubeconfig_path(kubeconfig)
    doc = read_doc(p)
    if not any(c.get("name") == name for c in doc.get("contexts", [])):
        raise CLIError(f"no context exists with the name: {name!r}")
    doc["current-context"] = name
    write_doc(p, doc)
    print(f'Switched to context "{name}".')


@app.command("set-namespace")
def set_namespace(namespace: str, kubeconfig: str = KubeconfigOpt) -> None:
    """Set the current context's default namespace."""
    p = kubeconfig_path(kubeconfig)
    doc = read_doc(p)
    for c in doc.get("contexts", []):
        if c.get("name") == doc.get("current-context"):
            c.setdefault("context", {})["namespace"] = namespace
            write_doc(p, doc)
            print(f'Context "{c["name"]}" now uses namespace "{namespace}".')
            return
    raise CLIError("current-context is not set")
