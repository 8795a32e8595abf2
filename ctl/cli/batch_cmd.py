"""``centaurusctl create job|cronjob``: batch/v1 objects from the command line, as kubectl makes them.

* ``create job NAME --image IMG [-- COMMAND ARG...]``: a Job of one pod (``restartPolicy:
  Never``), the container named after the Job, running COMMAND if given.
* ``create job NAME --from cronjob/X``: a Job from CronJob X's ``jobTemplate`` (the
  ``cronjob.kubernetes.io/instantiate: manual`` annotation and a controller reference to
  the CronJob, so the CronJob's history rules apply to it, as with kubectl).
* ``create cronjob NAME --image IMG --schedule "*/5 * * * *" [--restart OnFailure|Never]
  [-- COMMAND ARG...]``.

``--dry-run client`` prints the object (``-o yaml`` or ``json``) instead of creating it;
``--dry-run server`` asks the server to validate it without storing. The schedule is parsed
here first (:mod:`ctl.types.cron`), so a typo is one line on stderr before any request.

The sub-commands are added to the existing ``create`` group by :func:`register`.
"""

from __future__ import annotations

import json
from typing import Any

import typer
import yaml

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
from ctl.client import ApiError
from ctl.types.cron import CronError, parse
from ctl.types.jobtemplate import job_from_template

DryRunOpt = typer.Option("none", "--dry-run", help="none, client (print only) or server (validate only)")
OutOpt = typer.Option(None, "-o", "--output", help="yaml, json or name: print the object")


def _pod_template(name: str, image: str, command: list[str] | None, restart: str) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": image}
    if command:
        c["command"] = list(command)
    return {"spec": {"restartPolicy": restart, "containers": [c]}}


def job_object(name: str, image: str, command: list[str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": _pod_template(name, image, command, "Never")},
    }


def cronjob_object(
    name: str, image: str, schedule: str, command: list[str] | None = None, restart: str = "OnFailure"
) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {
                "metadata": {"name": name},
                "spec": {"template": _pod_template(name, image, command, restart)},
            },
        },
    }


def _print(obj: dict[str, Any], output: str | None, verb: str) -> None:
    kind = f"{obj['kind'].lower()}.batch/{obj['metadata']['name']}"
    if output in (None, ""):
        print(f"{kind} {verb}")
    elif output == "name":
        print(kind)
    elif output == "json":
        print(json.dumps(obj, indent=2))
    elif output == "yaml":
        print(yaml.safe_dump(obj, sort_keys=False), end="")
    else:
        raise CLIError(
            f"unable to match a printer suitable for the output format {output!r}, allowed: json, name, yaml"
        )


def _submit(
    obj: dict[str, Any],
    dry_run: str,
    output: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    tenant: str | None,
    from_cronjob: str | None = None,
) -> None:
    if dry_run not in ("none", "client", "server"):
        raise CLIError(f'Invalid dry-run value ({dry_run}). Must be "none", "server", or "client".')
    if output not in (None, "", "name", "json", "yaml"):
        raise CLIError(
            f"unable to match a printer suitable for the output format {output!r}, allowed: json, name, yaml"
        )
    if dry_run == "client" and from_cronjob is None:
        _print(obj, output or "yaml", "created (dry run)")
        return
    client = connect(kubeconfig, context)
    ns = namespace_for(client, namespace)
    t = tenant_for(client, tenant)

    async def go() -> dict[str, Any] | None:
        try:
            body = obj
            if from_cronjob is not None:
                try:
                    cj = await client.get("cronjobs", from_cronjob, namespace=ns, tenant=t)
                except ApiError as e:
                    if e.code == 404:
                        raise CLIError(f'cronjobs.batch "{from_cronjob}" not found') from None
                    raise
                body = job_from_template(cj, obj["metadata"]["name"])
                if dry_run == "client":
                    return body
            params = {"dryRun": "All"} if dry_run == "server" else None
            try:
                made: dict[str, Any] = await client.request(
                    "POST", client.path(body["kind"].lower() + "s", ns, tenant=t), body, params=params
                )
                return made
            except ApiError as e:
                raise CLIError(str(e)) from None
        finally:
            await client.close()

    made = run(go())
    if made is not None:
        verb = {"none": "created", "server": "created (server dry run)", "client": "created (dry run)"}[
            dry_run
        ]
        _print(made, output if output or dry_run != "client" else "yaml", verb)


def register(app: typer.Typer) -> None:
    """Add ``create job`` and ``create cronjob`` to the app's ``create`` group."""
    create_app = next((g.typer_instance for g in app.registered_groups if g.name == "create"), None)
    if create_app is None:
        raise RuntimeError("the create group must be registered before batch_cmd")

    @create_app.command("job")
    def create_job(
        name: str,
        command: list[str] = typer.Argument(None, help="the container's command and arguments, after --"),
        image: str = typer.Option(None, "--image", help="image of the Job's container"),
        from_: str = typer.Option(None, "--from", help="cronjob/NAME: a Job from that CronJob's jobTemplate"),
        dry_run: str = DryRunOpt,
        output: str = OutOpt,
        namespace: str = NamespaceOpt,
        tenant: str = TenantOpt,
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
    ) -> None:
        """Create a Job (a pod run to completion), or a Job from a CronJob with --from=cronjob/NAME."""
        src = None
        if from_:
            if image or command:
                raise CLIError("either --from or --image (and a command) may be given, not both")
            kind, sep, src = from_.partition("/")
            if (
                not sep
                or kind.lower() not in ("cronjob", "cronjobs", "cj", "cronjob.batch", "cronjobs.batch")
                or not src
            ):
                raise CLIError(f"from must be of the form cronjob/NAME, got {from_!r}")
        elif not image:
            raise CLIError("--image is required (or --from=cronjob/NAME)")
        obj = job_object(name, image or "", command)
        _submit(obj, dry_run, output, kubeconfig, context, namespace, tenant, from_cronjob=src)

    @create_app.command("cronjob")
    def create_cronjob(
        name: str,
        command: list[str] = typer.Argument(None, help="the container's command and arguments, after --"),
        image: str = typer.Option(..., "--image", help="image of the Jobs' container"),
        schedule: str = typer.Option(..., "--schedule", help='cron schedule, e.g. "*/5 * * * *" or @hourly'),
        restart: str = typer.Option(
            "OnFailure", "--restart", help="the pods' restartPolicy: OnFailure or Never"
        ),
        dry_run: str = DryRunOpt,
        output: str = OutOpt,
        namespace: str = NamespaceOpt,
        tenant: str = TenantOpt,
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
    ) -> None:
        """Create a CronJob: a Job from IMAGE on a cron schedule."""
        if restart not in ("OnFailure", "Never"):
            raise CLIError(f"invalid restart policy: {restart} (OnFailure or Never)")
        try:
            parse(schedule)
        except CronError as e:
            raise CLIError(f"invalid schedule {schedule!r}: {e}") from None
        _submit(
            cronjob_object(name, image, schedule, command, restart),
            dry_run,
            output,
            kubeconfig,
            context,
            namespace,
            tenant,
        )
