"""``centaurusctl describe KIND [NAME]``: one object in detail, with its events.

The header (name, namespace, tenant, uid, age, labels, annotations without the
last-applied copy, owners, termination) is followed by the object's ``spec``,
``status`` and ``data`` as YAML (a Secret's values only as their sizes), then the
Events whose ``involvedObject`` is this object, as kubectl shows them.

The object may be malformed (written by an older version or straight into the store):
every field read here is type-checked, and one of the wrong type is shown as
``<invalid>``, so describing it still works — that is when people need describe most.
"""

from __future__ import annotations

from typing import Any

import typer

from ctl.cli import output
from ctl.cli.apply_cmd import LAST_APPLIED
from ctl.cli.common import (
    ContextOpt,
    KubeconfigOpt,
    NamespaceOpt,
    TenantOpt,
    connect,
    namespace_for,
    run,
    split_kind_name,
    tenant_for,
)
from ctl.cli.network_cmd import MIZAR, find_endpoint
from ctl.cli.output import INVALID, metadata, text
from ctl.client import ApiError, Client
from ctl.types.columns import age
from ctl.types.kinds import Kind

app = typer.Typer()

INDENT = " " * 14


@app.command("describe")
def describe(
    resource: list[str] = typer.Argument(..., help="KIND NAME or KIND/NAME"),
    namespace: str = NamespaceOpt,
    tenant: str = TenantOpt,
    kubeconfig: str = KubeconfigOpt,
    context: str = ContextOpt,
) -> None:
    """Show an object in detail, with its events."""
    pairs = split_kind_name(resource)
    client = connect(kubeconfig, context)

    async def go() -> None:
        t = tenant_for(client, tenant)
        try:
            for k, n in pairs:
                ns = namespace_for(client, namespace) if k.namespaced else None
                objs = (
                    [await client.get(k, n, ns, t)]
                    if n
                    else (await client.list_all(k, namespace=ns, tenant=t))["items"]
                )
                for o in objs:
                    print(describe_object(k, o))
                    if k.kind == "Pod":
                        net = await _pod_network(client, o)
                        if net:
                            print(net)
                    print(await _events_for(client, o))
        finally:
            await client.close()

    run(go())


def _age(ts: Any) -> str:
    if not isinstance(ts, str):
        return "<unknown>"
    try:
        return age(ts)
    except Exception:  # a timestamp that is a string but not RFC 3339
        return "<unknown>"


def _secret_data(data: Any) -> Any:
    if not isinstance(data, dict):
        return INVALID
    return {k: f"<{len(v)} bytes>" if isinstance(v, str) else INVALID for k, v in data.items()}


def describe_object(kind: Kind, obj: dict[str, Any]) -> str:
    """The describe text of one object (without its events)."""
    md = metadata(obj)
    lines = [f"Name:         {text(md.get('name'), INVALID)}"]
    if md.get("namespace"):
        lines.append(f"Namespace:    {text(md.get('namespace'))}")
    if md.get("tenant"):
        lines.append(f"Tenant:       {text(md.get('tenant'))}")
    lines.append(f"Kind:         {kind.kind} ({kind.api_version})")
    lines.append(f"UID:          {text(md.get('uid'), 'None')}")
    ts = md.get("creationTimestamp")
    lines.append(f"Created:      {text(ts, 'None')} ({_age(ts)} ago)")
    for f, title in (("labels", "Labels"), ("annotations", "Annotations")):
        vals = output.mapping(md.get(f))
        body = (
            INVALID
            if vals is None
            else output.pairs({k: v for k, v in vals.items() if k != LAST_APPLIED}, sep="\n" + INDENT)
        )
        lines.append(f"{title + ':':<14}" + body)
    refs = md.get("ownerReferences") or []
    for ref in refs if isinstance(refs, list) else [None]:
        if isinstance(ref, dict):
            lines.append(f"Controlled By: {text(ref.get('kind'), 'None')}/{text(ref.get('name'), 'None')}")
        else:
            lines.append(f"Controlled By: {INVALID}")
    if md.get("deletionTimestamp"):
        lines.append(f"Terminating since: {text(md['deletionTimestamp'])}")
    for section in ("spec", "status", "data"):
        value = obj.get(section) if isinstance(obj, dict) else None
        if value:
            shown = _secret_data(value) if section == "data" and kind.kind == "Secret" else value
            try:
                body = output.to_yaml(shown)
            except Exception:  # not JSON-shaped at all: cannot come from the API, but never a traceback
                body = INVALID
            lines.append(f"{section.title()}:")
            lines += ["  " + ln for ln in body.rstrip().splitlines()]
    return "\n".join(lines)


async def _events_for(client: Client, obj: dict[str, Any]) -> str:
    md = metadata(obj)
    ns = md.get("namespace") if isinstance(md.get("namespace"), str) and md.get("namespace") else "default"
    name = md.get("name")
    if not isinstance(name, str):
        return "Events:       <unavailable>"
    try:
        lst = await client.list(
            "events",
            namespace=ns,
            tenant=md.get("tenant") if isinstance(md.get("tenant"), str) else None,
            field_selector=f"involvedObject.name={name}",
        )
    except ApiError:
        return "Events:       <unavailable>"
    evs = [
        e
        for e in lst["items"]
        if isinstance(e, dict) and _dict_field(e, "involvedObject").get("uid") in (None, md.get("uid"))
    ]
    if not evs:
        return "Events:       <none>\n"
    rows = [
        [
            text(e.get("type")),
            text(e.get("reason")),
            _age(e.get("lastTimestamp") or metadata(e).get("creationTimestamp")),
            text(_dict_field(e, "source").get("component")),
            text(e.get("message")),
        ]
        for e in evs
    ]
    return (
        "Events:\n"
        + "\n".join(
            "  " + ln
            for ln in output.plain_table(["TYPE", "REASON", "AGE", "FROM", "MESSAGE"], rows).splitlines()
        )
        + "\n"
    )


async def _pod_network(client: Client, pod: dict[str, Any]) -> str:
    """The pod's VPC networking (its Endpoint: IP, host, subnet bouncers); '' without an Endpoint."""
    md = metadata(pod)
    name, ns, tenant = md.get("name"), md.get("namespace"), md.get("tenant")
    if not all(isinstance(v, str) and v for v in (name, ns)):
        return ""
    t = tenant if isinstance(tenant, str) and tenant else None
    try:
        ep = await find_endpoint(client, str(name), str(ns), t)
    except ApiError:
        return "Network:      <unavailable>"
    if ep is None:
        return ""
    spec, st = _dict_field(ep, "spec"), _dict_field(ep, "status")
    phase = text(st.get("phase"), "Init")
    lines = [
        "Network:",
        f"  Endpoint:   {text(metadata(ep).get('name'))} ({phase}"
        + (f": {text(st.get('message'))}" if st.get("message") and phase != "Provisioned" else "")
        + ")",
        f"  IP:         {text(st.get('ip'), '<none>')}/{text(st.get('prefixLength'), '?')}"
        f"  MAC {text(st.get('mac'), '<none>')}  gateway {text(st.get('gateway'), '<none>')}"
        f"  VNI {text(st.get('vni'), '<none>')}",
        f"  Host:       {text(spec.get('droplet'), '<none>')} ({text(st.get('host'), '<none>')})"
        f"  veth {text(spec.get('veth'), '<none>')}",
    ]
    bouncers: list[str] = []
    try:
        sub = await client.get(f"subnets.{MIZAR}", str(spec.get("subnet")), tenant=t)
        for b in _dict_field(sub, "status").get("bouncers") or []:
            try:
                d = await client.get(f"droplets.{MIZAR}", str(b))
                bouncers.append(f"{b} ({text(_dict_field(d, 'spec').get('ip'))})")
            except ApiError:  # droplets are cluster-scoped: a tenant user may not read them
                bouncers.append(str(b))
    except ApiError:
        pass
    lines.append(
        f"  Subnet:     {text(spec.get('subnet'), '<none>')}  bouncers: {', '.join(bouncers) or '<none>'}"
    )
    programmed = st.get("programmed")
    if isinstance(programmed, list):
        lines.append(f"  Programmed: {', '.join(map(str, programmed)) or '<none>'}")
    return "\n".join(lines)


def _dict_field(e: dict[str, Any], field: str) -> dict[str, Any]:
    v = e.get(field)
    return v if isinstance(v, dict) else {}
