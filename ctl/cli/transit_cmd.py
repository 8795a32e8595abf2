"""``centaurusctl transit --host H ...``: troubleshoot a host's transit daemon.

    centaurusctl transit --host h1 status
    centaurusctl transit --host h1 get ep [100/10.0.1.5]
    centaurusctl transit --host h1 update net --vni 100 --cidr 10.0.1.0/24 --bouncers 192.168.222.2
    centaurusctl transit --host h1 update ep --json '{"vni":100,"ip":"10.0.1.6","mac":"..","host":"192.168.222.3"}'
    centaurusctl transit --host h1 delete ep 100/10.0.1.6
    centaurusctl transit --host h1 dump | stats | load --mode native | unload | learned

Kinds: vpc, net, ep, agent-md, substrate (plurals accepted). Objects are given as JSON
(``--json``, ``--file``, or ``-`` for stdin) or built from flags. The daemon is reached on
``/run/centaurus/transitd/<host>.sock`` unless ``--socket`` or ``--tcp`` says otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from ctl.cli import output
from ctl.cli.errors import CLIError
from ctl.transit.client import DEFAULT_RUN_DIR, TransitClient, TransitError

app = typer.Typer(no_args_is_help=True, help="Inspect and program a host's transit daemon (XDP data plane).")

KINDS = {
    "vpc": "vpcs",
    "vpcs": "vpcs",
    "net": "nets",
    "nets": "nets",
    "subnet": "nets",
    "ep": "endpoints",
    "eps": "endpoints",
    "endpoint": "endpoints",
    "endpoints": "endpoints",
    "agent-md": "agents",
    "agent": "agents",
    "agents": "agents",
    "substrate": "substrates",
    "substrates": "substrates",
}

COLUMNS = {
    "vpcs": ["vni", "dividers", "divider"],
    "nets": ["vni", "cidr", "bouncers", "bouncer"],
    "endpoints": ["vni", "ip", "mac", "host", "local", "veth", "gateway"],
    "agents": ["veth", "ifindex", "vni", "ip", "mac"],
    "substrates": ["ip", "mac"],
    "ep_cache": ["vni", "ip", "host", "host_mac", "age_s"],
}


def _kind(word: str) -> str:
    k = KINDS.get(word.lower())
    if k is None:
        raise CLIError(f"unknown kind {word!r}; use vpc, net, ep, agent-md or substrate")
    return k


def _client(ctx: typer.Context) -> TransitClient:
    obj = ctx.obj or {}
    if obj.get("tcp"):
        return TransitClient(tcp=obj["tcp"])
    if obj.get("socket"):
        return TransitClient(obj["socket"])
    if not obj.get("host"):
        raise CLIError("say which transit daemon: --host NAME (or --socket PATH / --tcp HOST:PORT)")
    return TransitClient(str(Path(obj["run_dir"]) / f"{obj['host']}.sock"))


def _call(fn: Any, *a: Any) -> Any:
    try:
        return fn(*a)
    except TransitError as e:
        raise CLIError(str(e)) from None


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list):
        return ",".join(str(x) for x in v) or "-"
    return str(v)


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    return output.plain_table([c.upper() for c in cols], [[_cell(r.get(c)) for c in cols] for r in rows])


def _out(data: Any, fmt: str, kind: str | None = None) -> None:
    if fmt in ("json", "yaml"):
        typer.echo(output.dump(data, fmt).rstrip())
    elif kind and isinstance(data, list):
        typer.echo(_table(data, COLUMNS[kind]) if data else f"no {kind}")
    elif kind and isinstance(data, dict):
        typer.echo(_table([data], COLUMNS[kind]))
    else:
        typer.echo(json.dumps(data, indent=2))


def _fmt(fmt: str) -> str:
    return output.check_format(fmt, output.DATA_FORMATS)


OutputOpt = output.output_option(output.DATA_FORMATS)


@app.callback()
def main(
    ctx: typer.Context,
    host: str = typer.Option(None, "--host", "-H", help="host whose transit daemon to talk to"),
    socket: str = typer.Option(None, "--socket", help="Unix socket of the daemon (instead of --host)"),
    tcp: str = typer.Option(None, "--tcp", help="HOST:PORT of the daemon (instead of --host)"),
    run_dir: str = typer.Option(str(DEFAULT_RUN_DIR), "--run-dir", help="where <host>.sock lives"),
) -> None:
    ctx.obj = {"host": host, "socket": socket, "tcp": tcp, "run_dir": run_dir}


@app.command()
def status(ctx: typer.Context, output: str = OutputOpt) -> None:
    """Programs, attachments, modes and object counts."""
    st = _call(_client(ctx).status)
    if _fmt(output) != "table":
        return _out(st, output)
    s = st["substrate"]
    typer.echo(f"host {st['host']}  substrate {s['itf']} {s['ip']} {s['mac']}  pid {st['pid']}")
    typer.echo(
        f"programs {'loaded (' + str(st['mode']) + ')' if st['loaded'] else 'not loaded'}  pins {st['pin_dir']}"
    )
    typer.echo(_table(st["attachments"], ["ifname", "ifindex", "program", "mode", "prog_id"]))
    typer.echo("objects: " + "  ".join(f"{k}={v}" for k, v in st["objects"].items()))


@app.command()
def get(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="vpc|net|ep|agent-md|substrate"),
    key: str = typer.Argument(None, help="VNI, VNI/CIDR, VNI/IP, VETH or IP"),
    output: str = OutputOpt,
) -> None:
    """List objects of a kind, or show one by key."""
    k = _kind(kind)
    c = _client(ctx)
    data = _call(c.get, k, key) if key else _call(c.list, k)
    _out(data, _fmt(output), k)


def _read_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as e:
        raise CLIError(f"invalid JSON: {e}") from None


@app.command()
def update(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="vpc|net|ep|agent-md|substrate"),
    json_: str = typer.Option(None, "--json", help="the object (or a list) as JSON"),
    file: str = typer.Option(None, "--file", "-f", help="read JSON from a file ('-' for stdin)"),
    vni: int = typer.Option(None, "--vni"),
    ip: str = typer.Option(None, "--ip"),
    mac: str = typer.Option(None, "--mac"),
    cidr: str = typer.Option(None, "--cidr"),
    host_ip: str = typer.Option(None, "--host-ip", help="endpoint: substrate IP of its host"),
    veth: str = typer.Option(None, "--veth", help="endpoint/agent-md: host-side veth on this host"),
    bouncers: str = typer.Option(None, "--bouncers", help="net: comma-separated substrate IPs"),
    dividers: str = typer.Option(None, "--dividers", help="vpc: comma-separated substrate IPs"),
    gateway: bool = typer.Option(False, "--gateway", help="endpoint: ARP-only gateway entry"),
    output: str = OutputOpt,
) -> None:
    """Create or replace objects (all validated before anything is written)."""
    k = _kind(kind)
    if json_ and file:
        raise CLIError("give --json or --file, not both")
    if json_:
        body = _read_json(json_)
    elif file:
        body = _read_json(sys.stdin.read() if file == "-" else _read_file(file))
    else:
        flags = {"vni": vni, "ip": ip, "mac": mac, "cidr": cidr, "host": host_ip, "veth": veth}
        body = {f: v for f, v in flags.items() if v is not None}
        if bouncers is not None:
            body["bouncers"] = [x for x in bouncers.split(",") if x]
        if dividers is not None:
            body["dividers"] = [x for x in dividers.split(",") if x]
        if gateway:
            body["gateway"] = True
        if not body:
            raise CLIError("nothing to update: give --json, --file or flags (--vni, --ip, ...)")
    _out(_call(_client(ctx).put, k, body), _fmt(output), k)


def _read_file(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as e:
        raise CLIError(f"cannot read {path}: {e.strerror}") from None


@app.command()
def delete(
    ctx: typer.Context,
    kind: str = typer.Argument(...),
    key: str = typer.Argument(..., help="VNI, VNI/CIDR, VNI/IP, VETH or IP"),
) -> None:
    """Delete one object."""
    k = _kind(kind)
    _call(_client(ctx).delete, k, key)
    typer.echo(f"{k.rstrip('s')} {key} deleted")


@app.command()
def dump(ctx: typer.Context, output: str = OutputOpt) -> None:
    """Every map of the host, decoded."""
    d = _call(_client(ctx).dump)
    if _fmt(output) != "table":
        return _out(d, output)
    c = d["config"]
    typer.echo(
        f"== config\nip {c['ip']}  mac {c['mac']}  substrate_ifindex {c['substrate_ifindex']}  learn_ttl {c['learn_ttl_s']}s"
    )
    for title, key, kind in (
        ("substrate", "substrate", "substrates"),
        ("vpcs", "vpcs", "vpcs"),
        ("nets", "nets", "nets"),
        ("endpoints", "endpoints", "endpoints"),
        ("agent_md", "agent_md", "agents"),
        ("ep_cache (learned direct paths)", "ep_cache", "ep_cache"),
    ):
        typer.echo(f"\n== {title} ({len(d[key])})")
        if d[key]:
            typer.echo(_table(d[key], COLUMNS[kind]))
    typer.echo("\n== counters")
    _print_counters(d["counters"], show_all=False)


def _print_counters(cs: dict[str, dict[str, int]], show_all: bool) -> None:
    rows = []
    for prog, c in cs.items():
        for name, v in c.items():
            if v or show_all:
                verdict, _, reason = name.partition("_")
                rows.append({"program": prog, "verdict": verdict, "reason": reason, "packets": v})
    typer.echo(_table(rows, ["program", "verdict", "reason", "packets"]) if rows else "all counters are zero")


@app.command()
def stats(
    ctx: typer.Context,
    all_: bool = typer.Option(False, "--all", help="show zero counters too"),
    reset: bool = typer.Option(False, "--reset", help="reset after reading"),
    output: str = OutputOpt,
) -> None:
    """Per-program counters by verdict and reason."""
    c = _client(ctx)
    cs = _call(c.counters)
    if reset:
        _call(c.reset_counters)
    if _fmt(output) != "table":
        return _out(cs, output)
    _print_counters(cs, all_)


@app.command()
def load(
    ctx: typer.Context,
    mode: str = typer.Option("auto", "--mode", help="auto (native, else generic) | native | generic"),
    agent_hook: str = typer.Option(None, "--agent-hook", help="xdp (default) | tc (keeps TSO/GSO for TCP)"),
) -> None:
    """Attach transit_xdp and transit_agent (or transit_agent_tc)."""
    st = _call(_client(ctx).load, mode, agent_hook)
    typer.echo(_table(st["attachments"], ["ifname", "program", "mode", "prog_id"]))


@app.command()
def unload(ctx: typer.Context) -> None:
    """Detach the programs (maps stay pinned)."""
    _call(_client(ctx).unload)
    typer.echo("programs detached")


@app.command()
def learned(
    ctx: typer.Context,
    flush: bool = typer.Option(False, "--flush", help="forget them"),
    output: str = OutputOpt,
) -> None:
    """Direct paths learned from the source-host option."""
    c = _client(ctx)
    if flush:
        typer.echo(f"flushed {_call(c.flush_learned)} learned path(s)")
        return
    _out(_call(c.learned), _fmt(output), "ep_cache")
