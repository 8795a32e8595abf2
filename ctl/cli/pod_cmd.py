"""``centaurusctl logs POD`` and ``exec POD -- CMD``: a pod's output and commands in it.

Both go through the API server's ``pods/NAME/log`` and ``pods/NAME/exec`` subresources
(which proxy to the node agent running the pod) with :meth:`Client.log_stream
<ctl.client.aio.Client.log_stream>` and :meth:`Client.exec <ctl.client.aio.Client.exec>`.
``logs`` takes a pod, or ``TYPE/NAME`` of a deployment, replica set or job (the first of
its pods, running ones first, as kubectl picks), or ``-l SELECTOR`` (every matching pod);
``--prefix`` marks each line with its pod and container, ``--timestamps`` with the time the
client received it (the node agent keeps no per-line times). ``logs -f`` prints chunks as
they arrive; ``exec`` without ``-i``/``-t`` is non-interactive:
it prints the command's stdout and stderr when it ends and exits with its exit code. With
``-i`` (stdin) and/or ``-t`` (a TTY: the local terminal goes raw, its size follows) it speaks
the same streaming protocol as ``kubectl exec`` (:meth:`Client.exec_stream
<ctl.client.aio.Client.exec_stream>`, relayed by :mod:`ctl.cli.interactive`).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

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
from ctl.client import Client
from ctl.types import kinds
from ctl.types.selectors import LabelSelector, SelectorError

app = typer.Typer()

POD_PREFIXES = ("pod/", "pods/", "po/")


def _pod_name(pod: str) -> str:
    """``NAME`` or ``pod/NAME`` (also ``pods/``, ``po/``) as kubectl takes it."""
    return pod.split("/", 1)[1] if pod.startswith(POD_PREFIXES) else pod


# kinds whose pods ``logs TYPE/NAME`` reads: their spec.selector picks the pods
LOG_OWNER_KINDS = ("deployments", "replicasets", "jobs", "daemonsets", "statefulsets")


async def _log_targets(
    client: Client, target: str | None, selector: str | None, ns: str, tn: str | None
) -> tuple[list[str], bool]:
    """The pods ``logs`` reads and whether it reads them all (``-l``) or only the first (``deploy/X``)."""
    if selector:
        if target:
            raise CLIError("only one of a pod name (or TYPE/NAME) and -l/--selector may be given")
        pods = (await client.list("pods", ns, tn, label_selector=selector))["items"]
        if not pods:
            raise CLIError(f"no pods match selector {selector!r} in namespace {ns!r}")
        return sorted(p["metadata"]["name"] for p in pods), True
    if not target:
        raise CLIError("expected POD or TYPE/NAME (or -l SELECTOR): logs POD [-c CONTAINER]")
    if "/" not in target or target.startswith(POD_PREFIXES):
        return [_pod_name(target)], False
    word, _, name = target.partition("/")
    k = kinds.resolve(word)
    if k is None or k.plural not in LOG_OWNER_KINDS:
        raise CLIError(f"cannot read logs of {word!r}: use a pod, deployment, replicaset or job")
    owner = await client.get(k, name, ns, tn)
    try:
        sel = str(LabelSelector.from_spec((owner.get("spec") or {}).get("selector")))
    except SelectorError as e:
        raise CLIError(f"{word}/{name}: {e}") from None
    if sel:
        pods = (await client.list("pods", ns, tn, label_selector=sel))["items"]
    else:  # a Job that names no selector: the pods it owns
        uid = (owner.get("metadata") or {}).get("uid")
        pods = [
            p
            for p in (await client.list("pods", ns, tn))["items"]
            if any(r.get("uid") == uid for r in (p.get("metadata") or {}).get("ownerReferences") or [])
        ]
    if not pods:
        raise CLIError(f"{word}/{name} has no pods")
    pods.sort(key=lambda p: (p.get("status", {}).get("phase") != "Running", p["metadata"]["name"]))
    if len(pods) > 1:
        print(f"Found {len(pods)} pods, using pod/{pods[0]['metadata']['name']}", file=sys.stderr)
    return [pods[0]["metadata"]["name"]], False


class _LineWriter:
    """Writes a stream of chunks to stdout line by line, with a prefix and/or a timestamp on each line."""

    def __init__(self, prefix: str, timestamps: bool) -> None:
        self.prefix, self.timestamps, self.buf = prefix.encode(), timestamps, b""

    def _head(self) -> bytes:
        ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ ").encode() if self.timestamps else b""
        return self.prefix + ts

    def write(self, chunk: bytes) -> None:
        if not self.prefix and not self.timestamps:
            sys.stdout.buffer.write(chunk)
        else:
            *lines, self.buf = (self.buf + chunk).split(b"\n")
            for ln in lines:
                sys.stdout.buffer.write(self._head() + ln + b"\n")
        sys.stdout.flush()

    def close(self) -> None:
        if self.buf:
            sys.stdout.buffer.write(self._head() + self.buf + b"\n")
            self.buf = b""
            sys.stdout.flush()


@app.command("logs")
def logs(
    pod: str = typer.Argument(None, help="POD, or TYPE/NAME (pod/, deploy/, rs/, job/)"),
    container: str = typer.Option(None, "-c", "--container"),
    follow: bool = typer.Option(False, "-f", "--follow"),
    tail: int = typer.Option(None, "--tail"),
    previous: bool = typer.Option(False, "-p", "--previous"),
    selector: str = typer.Option(
        None, "-l", "--selector", help="read every pod matching this label selector"
    ),
    prefix: bool = typer.Option(
        None, "--prefix/--no-prefix", help="prefix each line with [pod/NAME/CONTAINER]"
    ),
    timestamps: bool = typer.Option(
        False, "--timestamps", help="prefix each line with the time it was received"
    ),
    namespace: str = NamespaceOpt,
    tenant: str = TenantOpt,
    kubeconfig: str = KubeconfigOpt,
    context: str = ContextOpt,
) -> None:
    """Print a container's output (or a VM's console).

    Examples:
      centaurusctl logs -n demo hello-7d4f9-abcde
      centaurusctl logs -n demo deploy/hello
      centaurusctl logs -n demo -l app=hello --prefix --tail 20
      centaurusctl logs -f pod/web -c sidecar --timestamps
    """
    client = connect(kubeconfig, context, timeout=60)

    async def one(name: str, ns: str, tn: str | None, show_prefix: bool) -> None:
        label = ""
        if show_prefix:
            cname: Any = container
            if not cname:
                spec = (await client.get("pods", name, ns, tn)).get("spec") or {}
                cname = next((c.get("name") for c in spec.get("containers") or [] if isinstance(c, dict)), "")
            label = f"[pod/{name}/{cname}] "
        w = _LineWriter(label, timestamps)
        try:
            async for chunk in client.log_stream(
                name, ns, tn, container=container, follow=follow, tail_lines=tail, previous=previous
            ):
                w.write(chunk)
        finally:
            w.close()

    async def go() -> None:
        try:
            ns, tn = namespace_for(client, namespace), tenant_for(client, tenant)
            names, many = await _log_targets(client, pod, selector, ns, tn)
            show_prefix = prefix if prefix is not None else False
            if many and follow:
                await asyncio.gather(*(one(n, ns, tn, show_prefix) for n in names))
            else:
                for n in names:
                    await one(n, ns, tn, show_prefix)
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
