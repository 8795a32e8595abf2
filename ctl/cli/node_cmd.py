"""``centaurusctl cordon NODE`` and ``uncordon NODE``: mark a node (un)schedulable.

One merge patch of ``spec.unschedulable`` (set to true, or removed), as kubectl does;
the scheduler skips cordoned nodes and the table shows ``SchedulingDisabled``.
"""

from __future__ import annotations

import typer

from ctl.cli.common import ContextOpt, KubeconfigOpt, connect, run, with_client

app = typer.Typer()


def _cordon(node: str, on: bool, kubeconfig: str | None, context: str | None) -> None:
    client = connect(kubeconfig, context)
    run(with_client(client, client.patch("nodes", node, {"spec": {"unschedulable": True if on else None}})))
    print(f"node/{node} {'cordoned' if on else 'uncordoned'}")


@app.command("cordon")
def cordon(node: str, kubeconfig: str = KubeconfigOpt, context: str = ContextOpt) -> None:
    """Mark a node unschedulable."""
    _cordon(node, True, kubeconfig, context)


@app.command("uncordon")
def uncordon(node: str, kubeconfig: str = KubeconfigOpt, context: str = ContextOpt) -> None:
    """Mark a node schedulable again."""
    _cordon(node, False, kubeconfig, context)
