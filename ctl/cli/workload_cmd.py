"""Workload commands: ``centaurusctl rollout status|history|undo|restart|pause|resume`` and ``scale``.

They act on Deployments (``deployment/NAME``, also ``deploy/NAME``) the way kubectl does;
``status``, ``history``, ``undo`` and ``restart`` also take ``daemonset/NAME`` and
``statefulset/NAME`` (their ControllerRevision history, :mod:`ctl.cli.rollout_sets`):

* ``rollout status`` follows a rollout with a Rich progress display until it completes,
  fails (progress deadline exceeded) or ``--timeout`` passes;
* ``rollout history`` lists the revisions kept in the Deployment's ReplicaSets
  (``--revision N`` shows that revision's pod template);
* ``rollout undo [--to-revision N]`` copies a previous ReplicaSet's pod template back into
  the Deployment (the controller then rolls it out as a new revision);
* ``rollout restart`` stamps ``kubectl.kubernetes.io/restartedAt`` on the pod template;
* ``rollout pause|resume`` set ``spec.paused``;
* ``scale TYPE/NAME --replicas N`` (deployment, replicaset or statefulset) writes the scale subresource.

Every command takes ``-n/--namespace``, ``--tenant`` and ``--kubeconfig``; failures are
one line on stderr and exit code 1 (:class:`~ctl.cli.errors.CLIError`).
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ctl.cli import rollout_sets
from ctl.cli.errors import CLIError
from ctl.client import ApiError, Client
from ctl.client.kubeconfig import load as load_config
from ctl.types import kinds, meta

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
_ROLLOUT_KINDS = ("Deployment", "DaemonSet", "StatefulSet")  # pause/resume: Deployments only

rollout_app = typer.Typer(
    no_args_is_help=True, help="Manage the rollout of a deployment, daemon set or stateful set."
)
console = Console()
T = TypeVar("T")

NamespaceOpt = typer.Option(None, "-n", "--namespace", help="namespace (default: the kubeconfig's)")
TenantOpt = typer.Option(None, "--tenant", help="tenant (default: the kubeconfig's)")
KubeconfigOpt = typer.Option(None, "--kubeconfig", envvar="KUBECONFIG", help="kubeconfig file")


class Target:
    def __init__(self, kubeconfig: str | None, namespace: str | None, tenant: str | None) -> None:
        cfg = load_config(kubeconfig)
        self.client = Client(cfg)
        self.namespace = namespace or cfg.namespace or "default"
        self.tenant = tenant or cfg.tenant


def _parse_ref(ref: str, name: str | None, allowed: tuple[str, ...]) -> tuple[kinds.Kind, str]:
    if "/" in ref:
        if name:
            raise CLIError(
                f"there is no need to specify a resource type as a separate argument when passing {ref!r}"
            )
        typ, _, nm = ref.partition("/")
    else:
        typ, nm = ref, name or ""
    k = kinds.resolve(typ)
    if k is None or k.kind not in allowed:
        raise CLIError(
            f"{typ!r} is not supported here; use one of: {', '.join(a.lower() for a in allowed)} (e.g. deployment/NAME)"
        )
    if not nm:
        raise CLIError(f"a resource name is required, e.g. {k.singular}/NAME")
    return k, nm


def _run(t: Target, coro: Callable[[Client], Awaitable[T]]) -> T:
    async def main() -> T:
        try:
            return await coro(t.client)
        except ApiError as e:
            raise CLIError(f"Error from server ({e.reason or e.code}): {e}") from None
        finally:
            await t.client.close()

    return asyncio.run(main())


def _revision(obj: dict[str, Any]) -> int:
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


async def _get_deployment(c: Client, t: Target, name: str) -> dict[str, Any]:
    try:
        return await c.get("deployments", name, namespace=t.namespace, tenant=t.tenant)
    except ApiError as e:
        if e.code == 404:
            raise CLIError(f'deployments.apps "{name}" not found in namespace {t.namespace}') from None
        raise


async def _history(c: Client, t: Target, d: dict[str, Any]) -> list[dict[str, Any]]:
    """The Deployment's ReplicaSets, oldest revision first."""
    lst = await c.list("replicasets", t.namespace, tenant=t.tenant)
    uid = d["metadata"]["uid"]
    out = [rs for rs in lst["items"] if (meta.controller_of(rs) or {}).get("uid") == uid]
    return sorted(out, key=_revision)


def _strip_hash(tpl: dict[str, Any]) -> dict[str, Any]:
    tpl = copy.deepcopy(tpl)
    (tpl.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    return tpl


def rollout_message(d: dict[str, Any]) -> tuple[str, bool]:
    """(message, done) as ``kubectl rollout status`` computes them; raises CLIError on a failed rollout."""
    name = d["metadata"]["name"]
    st = d.get("status") or {}
    spec = d.get("spec") or {}
    want = int(spec.get("replicas", 1))
    if int(d["metadata"].get("generation", 1)) > int(st.get("observedGeneration") or 0):
        return "Waiting for deployment spec update to be observed...", False
    for c in st.get("conditions") or []:
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            raise CLIError(f'deployment "{name}" exceeded its progress deadline')
    updated = int(st.get("updatedReplicas") or 0)
    replicas = int(st.get("replicas") or 0)
    available = int(st.get("availableReplicas") or 0)
    if updated < want:
        return (
            f'Waiting for deployment "{name}" rollout to finish: {updated} out of {want} new replicas have been updated...',
            False,
        )
    if replicas > updated:
        return (
            f'Waiting for deployment "{name}" rollout to finish: {replicas - updated} old replicas are pending termination...',
            False,
        )
    if available < updated:
        return (
            f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} updated replicas are available...',
            False,
        )
    return f'deployment "{name}" successfully rolled out', True


@rollout_app.command("status")
def status(
    ref: str = typer.Argument(..., help="deployment/NAME"),
    name: str | None = typer.Argument(None),
    timeout_text: str = typer.Option(
        "0", "--timeout", help="how long to wait before giving up, e.g. 90s, 5m (0: forever)"
    ),
    watch: bool = typer.Option(True, "--watch/--no-watch", "-w", help="wait until the rollout finishes"),
    namespace: str | None = NamespaceOpt,
    tenant: str | None = TenantOpt,
    kubeconfig: str | None = KubeconfigOpt,
) -> None:
    """Show the status of a rollout, waiting for it to finish."""
    k, nm = _parse_ref(ref, name, _ROLLOUT_KINDS)
    t = Target(kubeconfig, namespace, tenant)
    try:
        timeout = meta.parse_duration(timeout_text)
    except ValueError as e:
        raise CLIError(f"--timeout: {e}") from None
    if k.kind != "Deployment":
        _run(t, lambda c: rollout_sets.status(c, console, k, nm, t.namespace, t.tenant, watch, timeout))
        return

    async def go(c: Client) -> None:
        deadline = time.monotonic() + timeout if timeout > 0 else None
        d = await _get_deployment(c, t, nm)
        msg, done = rollout_message(d)
        if done or not watch:
            console.print(msg, highlight=False)
            return
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as prog:
            want = int((d.get("spec") or {}).get("replicas", 1))
            upd = prog.add_task("updated", total=want, detail="")
            avail = prog.add_task("available", total=want, detail="")
            last = ""
            while True:
                st = d.get("status") or {}
                want = int((d.get("spec") or {}).get("replicas", 1))
                prog.update(
                    upd,
                    total=max(want, 1),
                    completed=min(int(st.get("updatedReplicas") or 0), want),
                    detail="",
                )
                prog.update(
                    avail,
                    total=max(want, 1),
                    completed=min(int(st.get("availableReplicas") or 0), want),
                    detail=f"{max(int(st.get('replicas') or 0) - int(st.get('updatedReplicas') or 0), 0)} old",
                )
                if msg != last:
                    prog.console.print(msg, highlight=False)
                    last = msg
                if done:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise CLIError(
                        f"timed out waiting for the rollout of deployment {nm} to finish ({timeout:g}s)"
                    )
                await asyncio.sleep(0.3)
                d = await _get_deployment(c, t, nm)
                msg, done = rollout_message(d)
        console.print(msg, highlight=False)

    _run(t, go)


@rollout_app.command("history")
def history(
    ref: str = typer.Argument(..., help="deployment/NAME"),
    name: str | None = typer.Argument(None),
    revision: int = typer.Option(0, "--revision", help="show the pod template of this revision"),
    namespace: str | None = NamespaceOpt,
    tenant: str | None = TenantOpt,
    kubeconfig: str | None = KubeconfigOpt,
) -> None:
    """List the revisions of a deployment, daemon set or stateful set."""
    k, nm = _parse_ref(ref, name, _ROLLOUT_KINDS)
    t = Target(kubeconfig, namespace, tenant)
    if k.kind != "Deployment":
        _run(t, lambda c: rollout_sets.history(c, console, k, nm, t.namespace, t.tenant, revision))
        return

    async def go(c: Client) -> None:
        d = await _get_deployment(c, t, nm)
        rss = await _history(c, t, d)
        if revision:
            rs = next((r for r in rss if _revision(r) == revision), None)
            if rs is None:
                raise CLIError(f"unable to find the specified revision {revision} of deployment {nm}")
            console.print(f"deployment.apps/{nm} with revision #{revision}", highlight=False)
            console.print(
                yaml.safe_dump({"Pod Template": _strip_hash(rs["spec"]["template"])}, sort_keys=False),
                highlight=False,
            )
            return
        table = Table(title=f"deployment.apps/{nm}", box=None, title_justify="left")
        table.add_column("REVISION")
        table.add_column("CHANGE-CAUSE")
        for rs in rss:
            cause = (rs["metadata"].get("annotations") or {}).get(CHANGE_CAUSE) or "<none>"
            table.add_row(str(_revision(rs)), cause)
        console.print(table)

    _run(t, go)


@rollout_app.command("undo")
def undo(
    ref: str = typer.Argument(..., help="deployment/NAME"),
    name: str | None = typer.Argument(None),
    to_revision: int = typer.Option(
        0, "--to-revision", help="revision to roll back to (default: the previous one)"
    ),
    namespace: str | None = NamespaceOpt,
    tenant: str | None = TenantOpt,
    kubeconfig: str | None = KubeconfigOpt,
) -> None:
    """Roll back to a previous revision."""
    k, nm = _parse_ref(ref, name, _ROLLOUT_KINDS)
    t = Target(kubeconfig, namespace, tenant)
    if k.kind != "Deployment":
        _run(t, lambda c: rollout_sets.undo(c, console, k, nm, t.namespace, t.tenant, to_revision))
        return

    async def go(c: Client) -> None:
        for _ in range(5):
            d = await _get_deployment(c, t, nm)
            if (d.get("spec") or {}).get("paused"):
                raise CLIError(
                    f"you cannot rollback a paused deployment; resume it first with 'rollout resume deployment/{nm}'"
                )
            rss = [r for r in await _history(c, t, d) if _revision(r) > 0]
            if to_revision:
                target = next((r for r in rss if _revision(r) == to_revision), None)
                if target is None:
                    raise CLIError(f"unable to find the specified revision {to_revision} of deployment {nm}")
            else:
                if len(rss) < 2:
                    raise CLIError(f"no previous revision of deployment {nm} to roll back to")
                target = rss[-2]
            tpl = _strip_hash(target["spec"]["template"])
            if tpl == d["spec"].get("template"):
                console.print(
                    f"deployment.apps/{nm} skipped rollback (current template already matches revision {_revision(target)})",
                    highlight=False,
                )
                return
            d["spec"]["template"] = tpl
            try:
                await c.update(d)
            except ApiError as e:
                if e.code == 409:
                    continue
                raise
            console.print(f"deployment.apps/{nm} rolled back", highlight=False)
            return
        raise CLIError(f"deployment {nm} kept changing; try the rollback again")

    _run(t, go)


@rollout_app.command("restart")
def restart(
    ref: str = typer.Argument(..., help="deployment/NAME"),
    name: str | None = typer.Argument(None),
    namespace: str | None = NamespaceOpt,
    tenant: str | None = TenantOpt,
    kubeconfig: str | None = KubeconfigOpt,
) -> None:
    """Restart every pod of a deployment, daemon set or stateful set with a rolling update."""
    k, nm = _parse_ref(ref, name, _ROLLOUT_KINDS)
    t = Target(kubeconfig, namespace, tenant)

    async def go(c: Client) -> None:
        if k.kind == "Deployment":
            d = await _get_deployment(c, t, nm)
            if (d.get("spec") or {}).get("paused"):
                raise CLIError(
                    f"can't restart paused deployment (run 'rollout resume deployment/{nm}' first)"
                )
        else:
            await rollout_sets.get_owner(c, k, nm, t.namespace, t.tenant)
        now = meta.now_rfc3339()
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
        await c.patch(k.plural, nm, patch, namespace=t.namespace, tenant=t.tenant)
        console.print(f"{k.plural[:-1]}.apps/{nm} restarted", highlight=False)

    _run(t, go)


def _set_paused(
    ref: str,
    name: str | None,
    paused: bool,
    namespace: str | None,
    tenant: str | None,
    kubeconfig: str | None,
) -> None:
    _, nm = _parse_ref(ref, name, ("Deployment",))
    t = Target(kubeconfig, namespace, tenant)

    async def go(c: Client) -> None:
        d = await _get_deployment(c, t, nm)
        word = "paused" if paused else "resumed"
        if bool((d.get("spec") or {}).get("paused")) == paused:
            raise CLIError(
                f"deployment.apps/{nm} is already {word}" if paused else f"deployment.apps/{nm} is not paused"
            )
        await c.patch("deployments", nm, {"spec": {"paused": paused}}, namespace=t.namespace, tenant=t.tenant)
        console.print(f"deployment.apps/{nm} {word}", highlight=False)

    _run(t, go)


@rollout_app.command("pause")
def pause(
    ref: str = typer.Argument(..., help="deployment/NAME"),
    name: str | None = typer.Argument(None),
    namespace: str | None = NamespaceOpt,
    tenant: str | None = TenantOpt,
    kubeconfig: str | None = KubeconfigOpt,
) -> None:
    """Pause a deployment: template changes are not rolled out until it is resumed."""
    _set_paused(ref, name, True, namespace, tenant, kubeconfig)


@rollout_app.command("resume")
def resume(
    ref: str = typer.Argument(..., help="deployment/NAME"),
    name: str | None = typer.Argument(None),
    namespace: str | None = NamespaceOpt,
    tenant: str | None = TenantOpt,
    kubeconfig: str | None = KubeconfigOpt,
) -> None:
    """Resume a paused deployment."""
    _set_paused(ref, name, False, namespace, tenant, kubeconfig)


def scale(
    ref: str = typer.Argument(..., help="deployment/NAME, replicaset/NAME or statefulset/NAME"),
    name: str | None = typer.Argument(None),
    replicas: int = typer.Option(..., "--replicas", help="the new number of replicas"),
    current_replicas: int = typer.Option(
        -1, "--current-replicas", help="only scale if the current count is this"
    ),
    namespace: str | None = NamespaceOpt,
    tenant: str | None = TenantOpt,
    kubeconfig: str | None = KubeconfigOpt,
) -> None:
    """Set the number of replicas of a deployment, replica set or stateful set (the scale subresource)."""
    k, nm = _parse_ref(ref, name, ("Deployment", "ReplicaSet", "StatefulSet"))
    if replicas < 0:
        raise CLIError("--replicas must be a non-negative integer")
    t = Target(kubeconfig, namespace, tenant)

    async def go(c: Client) -> None:
        try:
            sc = await c.get(k, nm, namespace=t.namespace, tenant=t.tenant, subresource="scale")
        except ApiError as e:
            if e.code == 404:
                raise CLIError(f'{k.plural}.{k.group} "{nm}" not found in namespace {t.namespace}') from None
            raise
        if current_replicas >= 0 and int(sc["spec"].get("replicas", 0)) != current_replicas:
            raise CLIError(
                f"expected {current_replicas} replicas of {k.singular}/{nm}, found {sc['spec'].get('replicas', 0)}"
            )
        sc["spec"]["replicas"] = replicas
        await c.request("PUT", c.path(k, t.namespace, nm, "scale", t.tenant), sc)
        console.print(f"{k.singular}.{k.group}/{nm} scaled", highlight=False)

    _run(t, go)


def register(app: typer.Typer) -> None:
    app.add_typer(rollout_app, name="rollout")
    app.command("scale")(scale)
