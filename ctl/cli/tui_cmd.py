"""``centaurusctl tui``: the interactive terminal UI (:mod:`ctl.tui`) on the current kubeconfig context.

``--context``, ``--kubeconfig``, ``-n`` and ``--tenant`` choose what it opens on, ``KIND``
(default ``pods``) the first table. The configuration is read (and a bad one reported as
one line) before the screen is taken over; the TUI itself says when the server cannot be
reached and keeps retrying.
"""

from __future__ import annotations

import dataclasses

import typer

from ctl.cli.common import ContextOpt, KubeconfigOpt, NamespaceOpt, TenantOpt
from ctl.client import kubeconfig

app = typer.Typer()


@app.command("tui")
def tui(
    kind: str = typer.Argument("pods", help="the kind to open on (any name the API serves)"),
    namespace: str = NamespaceOpt,
    tenant: str = TenantOpt,
    kubeconfig_path: str = KubeconfigOpt,
    context: str = ContextOpt,
) -> None:
    """Browse and operate the cluster in a terminal UI (k9s-style; press ? for keys).

    Examples:
      centaurusctl tui
      centaurusctl tui deployments -n demo
      centaurusctl tui nodes --context admin
    """
    cfg = kubeconfig.load(kubeconfig_path, context)
    if namespace:
        cfg = dataclasses.replace(cfg, namespace=namespace)
    if tenant:
        cfg = dataclasses.replace(cfg, tenant=tenant)
    from ctl.tui.app import CentaurusApp  # Textual is imported only when the TUI runs

    CentaurusApp(cfg, kind=kind).run()
