"""``centaurusctl create ...``: create an object from the command line.

This module holds the ``create`` group and ``create namespace``; other modules add their
own sub-commands to the same group (``create tenant`` and ``create token`` in
:mod:`ctl.cli.tenant_cmd`).
"""

from __future__ import annotations

import typer

from ctl.cli.common import ContextOpt, KubeconfigOpt, TenantOpt, connect, run, tenant_for, with_client

app = typer.Typer(help="Create an object from the command line.", no_args_is_help=True)


@app.command("namespace")
def create_namespace(
    name: str,
    tenant: str = TenantOpt,
    kubeconfig: str = KubeconfigOpt,
    context: str = ContextOpt,
) -> None:
    """Create a namespace."""
    client = connect(kubeconfig, context)
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    run(with_client(client, client.create(obj, tenant=tenant_for(client, tenant))))
    print(f"namespace/{name} created")
