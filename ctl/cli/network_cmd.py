"""``centaurusctl network trace POD_A POD_B``: the path a packet takes between two pods.

Each pod is found by its Endpoint (``mizar.centaurus.io/v1``, in the pod's namespace: the one of
the pod's name, else the one whose ``spec.pod`` names it; ``NAMESPACE/POD`` picks another
namespace). From the Endpoints, their Subnets (bouncers) and VPC (dividers) and the Droplets
(each host's transit daemon address), the command asks the transit daemons of just the hosts
concerned for their state (``/v1/dump`` through :class:`ctl.transit.client.TransitClient`) and
follows the programs' decisions on it (:func:`ctl.network.trace.trace`): agent -> bouncer ->
host, or direct once the path is learned. Every hop shows its counters; ``-o json`` prints the
same as JSON. A pod without an Endpoint, an Endpoint not Provisioned, or an unreachable daemon is
one clear line (the last one marks that hop unknown instead). The exit code is 1 when the
packet would not be delivered (a missing entry, or pods of two VPCs: tenants are isolated).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
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
from ctl.client import ApiError, Client
from ctl.network.programmer import client_for
from ctl.network.trace import HostState, Trace, trace
from ctl.transit.client import TransitError

app = typer.Typer(no_args_is_help=True, help="Troubleshoot VPC networking (Mizar).")
MIZAR = "mizar.centaurus.io"
Obj = dict[str, Any]


def host_state(name: str, droplet: Obj) -> HostState:
    """One droplet's transit daemon state (its dump, or the lists of a daemon without dump)."""
    spec = droplet.get("spec") or {}
    ip = str(spec.get("ip") or "")
    address = str(spec.get("transitd") or "")
    if not address:
        h = HostState(name, ip)
        h.error = "the Droplet names no transit daemon (spec.transitd)"
        return h
    c = client_for(address)
    try:
        try:
            dump = c.dump()
        except TransitError as e:
            if e.code != 404:
                raise
            dump = {k: c.list(k) for k in ("endpoints", "nets", "vpcs", "agents")}
            for k, fn in (("ep_cache", c.learned), ("counters", c.counters)):
                try:
                    dump[k] = fn()
                except TransitError as e2:
                    if e2.code != 404:
                        raise
    except TransitError as e:
        h = HostState(name, ip)
        h.error = str(e)
        return h
    return HostState.from_dump(name, ip, dump)


async def find_endpoint(client: Client, pod: str, namespace: str, tenant: str | None) -> Obj | None:
    """The Endpoint of a pod: the one of its name (unless it names another pod), else by ``spec.pod``."""
    try:
        ep: Obj = await client.get(f"endpoints.{MIZAR}", pod, namespace, tenant)
        if (ep.get("spec") or {}).get("pod") in (None, "", pod):
            return ep
    except ApiError as e:
        if e.code != 404:
            raise
    for ep in (await client.list(f"endpoints.{MIZAR}", namespace, tenant))["items"]:
        if (ep.get("spec") or {}).get("pod") == pod:
            return ep
    return None


async def _endpoint(client: Client, ref: str, namespace: str, tenant: str | None) -> Obj:
    ns, _, pod = ref.rpartition("/")
    ns = ns or namespace
    ep = await find_endpoint(client, pod, ns, tenant)
    if ep is not None:
        return ep
    try:
        await client.get("pods", pod, ns, tenant)
    except ApiError as e:
        if e.code == 404:
            raise CLIError(
                f'pod "{pod}" not found in namespace {ns} (and no Endpoint of that name)'
            ) from None
        raise
    raise CLIError(f'pod "{pod}" has no Endpoint in namespace {ns}: it is not on a VPC network')


def _summary(ep: Obj) -> Obj:
    md, spec, st = ep.get("metadata") or {}, ep.get("spec") or {}, ep.get("status") or {}
    name = f"{md.get('namespace')}/{spec.get('pod') or md.get('name')}"
    if st.get("phase") != "Provisioned":
        why = f": {st['message']}" if st.get("message") else ""
        raise CLIError(f"endpoint {md.get('namespace')}/{md.get('name')} is {st.get('phase') or 'Init'}{why}")
    return {
        "name": name,
        "endpoint": md.get("name"),
        "ip": st.get("ip"),
        "vni": st.get("vni"),
        "droplet": spec.get("droplet"),
        "veth": spec.get("veth"),
        "subnet": spec.get("subnet"),
        "tenant": md.get("tenant"),
    }


async def gather(client: Client, a: str, b: str, namespace: str, tenant: str | None) -> Trace:
    ends = [_summary(await _endpoint(client, r, namespace, tenant)) for r in (a, b)]
    drops = {d["metadata"]["name"]: d for d in (await client.list(f"droplets.{MIZAR}"))["items"]}
    wanted = {str(e["droplet"]) for e in ends}
    for e in ends:
        try:
            sub = await client.get(f"subnets.{MIZAR}", str(e["subnet"]), tenant=e["tenant"])
        except ApiError as err:
            if err.code != 404:
                raise
            continue
        wanted |= set((sub.get("status") or {}).get("bouncers") or [])
        vpc_name = (sub.get("spec") or {}).get("vpc")
        try:
            vpc = await client.get(f"vpcs.{MIZAR}", str(vpc_name), tenant=e["tenant"])
            wanted |= set((vpc.get("status") or {}).get("dividers") or [])
        except ApiError as err:
            if err.code != 404:
                raise
    names = sorted(n for n in wanted if n in drops)
    with ThreadPoolExecutor(max_workers=8) as pool:
        states = dict(zip(names, pool.map(lambda n: host_state(n, drops[n]), names), strict=True))
    return trace(ends[0], ends[1], states)


def render(t: Trace) -> str:
    def end(e: Obj) -> str:
        return f"{e['name']} ({e['ip']}, VNI {e['vni']}, on {e['droplet']})"

    lines = [f"{end(t.src)} -> {end(t.dst)}"]
    for i, h in enumerate(t.hops, 1):
        counters = " ".join(f"{k}={v}" for k, v in h.counters.items())
        lines.append(
            f"  {i}. {h.host:<14} {h.where:<13} {h.action:<8} {h.detail}"
            + (f"  [{counters}]" if counters else "")
        )
    lines.append(("  => " if t.delivered else "  !! ") + t.verdict)
    if not t.learned and t.delivered and t.hops and t.hops[0].action == "bouncer":
        lines.append(
            "  (no learned direct path yet: the destination host learns the source from the Geneve option, "
            "its reply teaches the source; then packets go direct)"
        )
    return "\n".join(lines)


@app.command("trace")
def trace_cmd(
    pod_a: str = typer.Argument(..., help="source pod ([NAMESPACE/]POD)"),
    pod_b: str = typer.Argument(..., help="destination pod ([NAMESPACE/]POD)"),
    namespace: str = NamespaceOpt,
    tenant: str = TenantOpt,
    output: str = typer.Option("text", "-o", "--output", help="text or json"),
    kubeconfig: str = KubeconfigOpt,
    context: str = ContextOpt,
) -> None:
    """Show the path a packet takes from POD_A to POD_B, from the programmed state and the counters."""
    if output not in ("text", "json"):
        raise CLIError(f"unknown output format {output!r}; use text or json")
    client = connect(kubeconfig, context)

    async def go() -> Trace:
        try:
            return await gather(
                client, pod_a, pod_b, namespace_for(client, namespace), tenant_for(client, tenant)
            )
        finally:
            await client.close()

    t = run(go())
    print(json.dumps(asdict(t), indent=2) if output == "json" else render(t))
    if not t.delivered:
        raise typer.Exit(1)
