"""``centaurusctl logs POD`` and ``exec POD -- CMD``: a pod's output and commands in it.

Both go through the API server's ``pods/NAME/log`` and ``pods/NAME/exec`` subresources
(which proxy to the node agent running the pod) with :meth:`Client.log_stream
<ctl.client.aio.Client.log_stream>` and :meth:`Client.exec <ctl.client.aio.Client.exec>`.
``logs -f`` prints chunks as they arrive; ``exec`` without ``-i``/``-t`` is non-interactive:
it prints the command's stdout and stderr when it ends and exits with its exit code. With
``-i`` (stdin) and/or ``-t`` (a TTY: the local terminal goes raw, its size follows) it speaks
the same streaming protocol as ``kubectl exec`` (:meth:`Client.exec_stream
<ctl.client.aio.Client.exec_stream>`, relayed by :mod:`ctl.cli.interactive`).
"""

from __future__ import annotations

import sys

import typer

from ctl.cli.common import (
    ContextOpt,
    KubeconfigOpt,
    NamespaceOpt,
    TenantOpt,
    connect,
    namespace_for,
    run,
    tenant_for,
)
from ctl.cli.errors import CLIError
from ctl.cli.interactive import run_session

app = typer.Typer()

POD_PREFIXES = ("pod/", "pods/", "po/")


def _pod_name(pod: str) -> str:
    """``NAME`` or ``pod/NAME`` (also ``pods/``, ``po/``) as kubectl takes it."""
    return pod.split("/", 1)[1] if pod.startswith(POD_PREFIXES) else pod


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
    client = connect(kubeconfig, context, timeout=60)

    async def go() -> None:
        try:
            async for chunk in client.log_stream(
                _pod_name(pod),
                namespace_for(client, namespace),
                tenant_for(client, tenant),
                container=container,
                follow=follow,
                tail_lines=tail,
                previous=previous,
            ):
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
    stdin: bool = typer.Option(False, "-i", "--stdin", help="Pass stdin to the container."),
    tty: bool = typer.Option(False, "-t", "--tty", help="Stdin is a TTY."),
    namespace: str = NamespaceOpt,
    tenant: str = TenantOpt,
    kubeconfig: str = KubeconfigOpt,
    context: str = ContextOpt,
) -> None:
    """Run a command in a container: centaurusctl exec [-i] [-t] POD -- CMD [ARGS...]."""
    argv = [a for a in ctx.args if a != "--"]
    if not argv:
        raise CLIError("you must specify at least one command for the container: exec POD -- CMD")
    client = connect(kubeconfig, context, timeout=120)
    if stdin or tty:
        if tty and not (stdin and sys.stdin.isatty()):
            sys.stderr.write("Unable to use a TTY - input is not a terminal or the right kind of file\n")
            tty = False

        async def interactive() -> int:
            try:
                ns, tn = namespace_for(client, namespace), tenant_for(client, tenant)
                await client.get("pods", _pod_name(pod), ns, tenant=tn)  # a clear NotFound first
                ws = await client.exec_stream(_pod_name(pod), argv, ns, tn, container, stdin=stdin, tty=tty)
                return await run_session(ws, stdin, tty)
            finally:
                await client.close()

        rc = run(interactive())
        if rc:
            raise typer.Exit(rc)
        return

    async def go() -> dict[str, object]:
        try:
            return await client.exec(
                _pod_name(pod),
                argv,
                namespace_for(client, namespace),
                tenant_for(client, tenant),
                container=container,
            )
        finally:
            await client.close()

    res = run(go())
    out, err, code = res.get("stdout"), res.get("stderr"), res.get("exitCode", 0)
    sys.stdout.write(out if isinstance(out, str) else "")
    sys.stderr.write(err if isinstance(err, str) else "")
    rc = code if isinstance(code, int) else 1
    if rc:
        raise typer.Exit(rc)
