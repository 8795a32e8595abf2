"""``rollout status|history|undo|restart`` for DaemonSets and StatefulSets.

:mod:`ctl.cli.workload_cmd` owns the commands and hands ``daemonset/NAME`` and
``statefulset/NAME`` here. Their history is the owner's ControllerRevisions
(:mod:`ctl.controllers.revisions`), numbered by ``revision``; ``undo`` copies a
revision's pod template back into the owner (its controller then rolls it out, and the
old revision is renumbered as the newest, as in Kubernetes). ``status`` prints kubectl's
own messages for these kinds (``daemon set "X" successfully rolled out``,
``partitioned roll out complete: ...``, ``statefulset rolling update complete ...``) and
refuses ``OnDelete`` objects, as kubectl does.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from ctl.cli.errors import CLIError
from ctl.client import ApiError, Client
from ctl.types import kinds, meta
from ctl.types.revisions import clean_template, revision_number, sorted_history, template_of

CHANGE_CAUSE = "kubernetes.io/change-cause"


def _singular(k: kinds.Kind) -> str:
    return "daemon set" if k.kind == "DaemonSet" else "statefulset"


async def get_owner(
    c: Client, k: kinds.Kind, name: str, namespace: str, tenant: str | None
) -> dict[str, Any]:
    try:
        return await c.get(k.plural, name, namespace=namespace, tenant=tenant)
    except ApiError as e:
        if e.code == 404:
            raise CLIError(f'{k.plural}.{k.group} "{name}" not found in namespace {namespace}') from None
        raise


def status_message(k: kinds.Kind, obj: dict[str, Any]) -> tuple[str, bool]:
    """(message, done) as ``kubectl rollout status`` computes them for these kinds."""
    spec, st, md = obj.get("spec") or {}, obj.get("status") or {}, obj["metadata"]
    strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
    if strategy != "RollingUpdate":
        raise CLIError(f"rollout status is only available for RollingUpdate strategy type, not {strategy}")
    if int(md.get("generation") or 0) > int(st.get("observedGeneration") or 0):
        return f"Waiting for {_singular(k)} spec update to be observed...", False
    name = md["name"]
    if k.kind == "DaemonSet":
        desired = int(st.get("desiredNumberScheduled") or 0)
        updated = int(st.get("updatedNumberScheduled") or 0)
        available = int(st.get("numberAvailable") or 0)
        if updated < desired:
            return (
                f'Waiting for daemon set "{name}" rollout to finish: {updated} out of {desired} new pods have been updated...',
                False,
            )
        if available < desired:
            return (
                f'Waiting for daemon set "{name}" rollout to finish: {available} of {desired} updated pods are available...',
                False,
            )
        return f'daemon set "{name}" successfully rolled out', True
    replicas = int(spec.get("replicas", 1))
    ready = int(st.get("readyReplicas") or 0)
    updated = int(st.get("updatedReplicas") or 0)
    if ready < replicas:
        return f"Waiting for {replicas - ready} pods to be ready...", False
    rolling = (spec.get("updateStrategy") or {}).get("rollingUpdate") or {}
    if rolling.get("partition") is not None:  # as kubectl: a set partition, even 0 (the default)
        partition = int(rolling["partition"])
        if updated < replicas - partition:
            return (
                f"Waiting for partitioned roll out to finish: {updated} out of {replicas - partition} new pods have been updated...",
                False,
            )
        return f"partitioned roll out complete: {updated} new pods have been updated...", True
    if st.get("updateRevision") != st.get("currentRevision"):
        return (
            f"waiting for statefulset rolling update to complete {updated} pods at revision {st.get('updateRevision')}...",
            False,
        )
    return (
        f"statefulset rolling update complete {st.get('currentReplicas', 0)} pods at revision {st.get('currentRevision')}...",
        True,
    )


async def status(
    c: Client,
    console: Console,
    k: kinds.Kind,
    name: str,
    ns: str,
    tenant: str | None,
    watch: bool,
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout if timeout > 0 else None
    last = ""
    while True:
        obj = await get_owner(c, k, name, ns, tenant)
        msg, done = status_message(k, obj)
        if msg != last:
            console.print(msg, highlight=False)
            last = msg
        if done or not watch:
            return
        if deadline is not None and time.monotonic() > deadline:
            raise CLIError(
                f"timed out waiting for the rollout of {k.singular} {name} to finish ({timeout:g}s)"
            )
        await asyncio.sleep(0.3)


async def revisions_of(c: Client, obj: dict[str, Any], ns: str, tenant: str | None) -> list[dict[str, Any]]:
    """The object's ControllerRevisions, oldest revision first."""
    lst = await c.list("controllerrevisions", ns, tenant=tenant)
    uid = obj["metadata"]["uid"]
    return sorted_history([r for r in lst["items"] if (meta.controller_of(r) or {}).get("uid") == uid])


def _template(rev: dict[str, Any]) -> dict[str, Any]:
    t = template_of(rev)
    t.pop("$patch", None)
    return t


async def history(
    c: Client, console: Console, k: kinds.Kind, name: str, ns: str, tenant: str | None, revision: int
) -> None:
    obj = await get_owner(c, k, name, ns, tenant)
    revs = await revisions_of(c, obj, ns, tenant)
    title = f"{k.plural[:-1]}.{k.group}/{name}"
    if revision:
        rev = next((r for r in revs if revision_number(r) == revision), None)
        if rev is None:
            raise CLIError(f"unable to find the specified revision {revision} of {k.singular} {name}")
        console.print(f"{title} with revision #{revision}", highlight=False)
        console.print(yaml.safe_dump({"Pod Template": _template(rev)}, sort_keys=False), highlight=False)
        return
    table = Table(title=title, box=None, title_justify="left")
    table.add_column("REVISION")
    table.add_column("CHANGE-CAUSE")
    for r in revs:
        table.add_row(
            str(revision_number(r)), (r["metadata"].get("annotations") or {}).get(CHANGE_CAUSE) or "<none>"
        )
    console.print(table)


async def undo(
    c: Client, console: Console, k: kinds.Kind, name: str, ns: str, tenant: str | None, to_revision: int
) -> None:
    title = f"{k.plural[:-1]}.{k.group}/{name}"
    for _ in range(5):
        obj = await get_owner(c, k, name, ns, tenant)
        revs = await revisions_of(c, obj, ns, tenant)
        if to_revision:
            target = next((r for r in revs if revision_number(r) == to_revision), None)
            if target is None:
                raise CLIError(f"unable to find the specified revision {to_revision} of {k.singular} {name}")
        else:
            if len(revs) < 2:
                raise CLIError(f"no previous revision of {k.singular} {name} to roll back to")
            target = revs[-2]
        tpl = _template(target)
        if clean_template(tpl) == clean_template(obj["spec"].get("template") or {}):
            console.print(
                f"{title} skipped rollback (current template already matches revision {revision_number(target)})",
                highlight=False,
            )
            return
        obj["spec"]["template"] = tpl
        try:
            await c.update(obj)
        except ApiError as e:
            if e.code == 409:
                continue
            raise
        console.print(f"{title} rolled back", highlight=False)
        return
    raise CLIError(f"{k.singular} {name} kept changing; try the rollback again")
