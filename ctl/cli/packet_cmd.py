"""``centaurusctl packet ...``: Geneve packet tools for debugging bouncers and dividers.

    centaurusctl packet craft --netns HOSTNS --itf sub0 --vni 100 --src 10.0.1.5 --dst 10.0.1.6 \\
        --to 192.168.222.2 [--arp|--udp] [--ttl N] [--opt CLASS:TYPE:HEX]... [--no-src-host] \\
        [--sniff-itf PORT --sniff-netns NS]
    centaurusctl packet decode capture.pcap          # or: --itf sub0 --netns HOSTNS --count 10
    centaurusctl packet trace 10.0.1.5 10.0.1.6 --vni 100 [--run-dir DIR] [--ping SRC_NETNS]

``craft`` sends a Geneve packet from a host (its namespace and substrate interface) to a bouncer
and prints what comes back; ``decode`` prints outer/inner headers and named options; ``trace``
shows the hops a flow takes according to every transit daemon's maps and, with ``--ping``, the
counters that rose on each host while one ping ran.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from ctl.cli.errors import CLIError
from ctl.cli.output import PACKET_FORMATS, check_format, output_option
from ctl.transit.client import DEFAULT_RUN_DIR, TransitClient

app = typer.Typer(no_args_is_help=True, help="Craft, decode and trace Geneve packets of the XDP data plane.")


def _lib() -> Any:
    from ctl.transit import packets

    return packets


def _print_decoded(items: list[dict[str, Any]], output: str) -> None:
    from ctl.transit.geneve import summary

    if output == "json":
        typer.echo(json.dumps(items, indent=2))
        return
    if not items:
        typer.echo("(nothing)")
    for d in items:
        typer.echo(summary(d))
        if output == "wide" and d.get("geneve"):
            for o in d["options"]:
                typer.echo(
                    f"    option {o['name']} class={o['class']} type={o['type']} critical={o['critical']} "
                    + " ".join(
                        f"{k}={v}" for k, v in o.items() if k not in ("name", "class", "type", "critical")
                    )
                )
            typer.echo(f"    outer {json.dumps(d['outer'])}")
            typer.echo(f"    inner {json.dumps(d['inner'])}")


def _options(opts: list[str]) -> list[Any]:
    from ctl.transit import geneve as gnv

    out = []
    for o in opts:
        parts = o.split(":")
        if len(parts) not in (2, 3):
            raise CLIError(f"--opt {o!r}: expected CLASS:TYPE[:HEXDATA], e.g. 0x0123:0x85:deadbeef")
        try:
            cls, typ = int(parts[0], 0), int(parts[1], 0)
            data = bytes.fromhex(parts[2]) if len(parts) == 3 else b""
        except ValueError:
            raise CLIError(f"--opt {o!r}: CLASS and TYPE are numbers, DATA is hex") from None
        if not (0 <= cls <= 0xFFFF and 0 <= typ <= 0xFF and len(data) <= 124):
            raise CLIError(f"--opt {o!r}: class 0..0xffff, type 0..0xff, at most 124 data bytes")
        out.append(gnv.raw_option(cls, typ, data))
    return out


def _check_out(fmt: str) -> str:
    return check_format(fmt, PACKET_FORMATS)


OutputOpt = output_option(PACKET_FORMATS)


@app.command()
def craft(
    to: str = typer.Option(..., "--to", help="substrate IP of the bouncer (or any host) to send to"),
    vni: int = typer.Option(..., "--vni"),
    src: str = typer.Option(..., "--src", help="inner source IP"),
    dst: str = typer.Option(..., "--dst", help="inner destination IP"),
    itf: str = typer.Option("sub0", "--itf", help="interface to send from"),
    netns: str = typer.Option(None, "--netns", help="network namespace of the sending host"),
    src_host: str = typer.Option(None, "--src-host", help="outer source IP (default: the interface's)"),
    dst_mac: str = typer.Option(None, "--dst-mac", help="outer destination MAC (default: resolved)"),
    arp: bool = typer.Option(False, "--arp", help="inner ARP request for --dst"),
    udp: bool = typer.Option(False, "--udp", help="inner UDP instead of ICMP echo"),
    ttl: int = typer.Option(64, "--ttl"),
    opt: list[str] = typer.Option([], "--opt", help="extra option CLASS:TYPE[:HEX] (repeatable)"),
    no_src_host: bool = typer.Option(False, "--no-src-host", help="omit the Centaurus source-host option"),
    count: int = typer.Option(1, "--count", min=1, max=100),
    sniff_itf: str = typer.Option(
        None, "--sniff-itf", help="capture replies here (e.g. the host's bridge port)"
    ),
    sniff_netns: str = typer.Option(None, "--sniff-netns"),
    wait: float = typer.Option(2.0, "--wait", help="seconds to wait for replies"),
    output: str = OutputOpt,
) -> None:
    """Send a crafted Geneve packet to a bouncer and show what comes back."""
    import ipaddress

    from ctl.transit import geneve as gnv

    _check_out(output)
    for what, v in (("--to", to), ("--src", src), ("--dst", dst)):
        try:
            ipaddress.IPv4Address(v)
        except ValueError:
            raise CLIError(f"{what}: {v!r} is not an IPv4 address") from None
    if not 1 <= vni <= 0xFFFFFF:
        raise CLIError("--vni: 1..16777215")
    if not 0 <= ttl <= 255:
        raise CLIError("--ttl: 0..255")
    extra = _options(opt)
    p = _lib()
    try:
        options = None  # default: just the source-host option of the sending interface
        if extra or no_src_host:
            options = (
                []
                if no_src_host
                else [gnv.src_host_option(src_host or p._ip_of(itf, netns), p._mac_of(itf, netns))]
            )
            options += extra
        res = p.craft_and_send(
            netns=netns, itf=itf, vni=vni, inner_src=src, inner_dst=dst, dst_host=to, dst_mac=dst_mac, src_host=src_host,
            kind="arp" if arp else "udp" if udp else "icmp", options=options,
            ttl=ttl, count=count, sniff_itf=sniff_itf, sniff_netns=sniff_netns, wait=wait,
        )  # fmt: skip
    except p.PacketError as e:
        raise CLIError(str(e)) from None
    if output == "json":
        typer.echo(json.dumps(res, indent=2))
        return
    typer.echo(f"sent {count}:")
    _print_decoded(res["sent"][:1], output)
    typer.echo(f"received {len(res['received'])}:")
    _print_decoded(res["received"], output)


@app.command()
def decode(
    pcap: str = typer.Argument(None, help="pcap file to decode"),
    itf: str = typer.Option(None, "--itf", help="capture live on this interface instead"),
    netns: str = typer.Option(None, "--netns"),
    count: int = typer.Option(10, "--count", min=1, max=10000),
    seconds: float = typer.Option(5.0, "--seconds", help="stop a live capture after this long"),
    geneve_only: bool = typer.Option(False, "--geneve-only", help="only UDP port 6081"),
    output: str = OutputOpt,
) -> None:
    """Decode a pcap or a live interface into outer/inner headers and named options."""
    _check_out(output)
    p = _lib()
    if bool(pcap) == bool(itf):
        raise CLIError("give a pcap file or --itf (one of them)")
    try:
        items = (
            p.read_pcap(pcap)
            if pcap
            else p.capture(
                itf,
                netns=netns,
                count=count,
                seconds=seconds,
                bpf_filter="udp port 6081" if geneve_only else "",
            )
        )
    except p.PacketError as e:
        raise CLIError(str(e)) from None
    _print_decoded(items[:count] if pcap else items, output)


@app.command()
def trace(
    src_ep: str = typer.Argument(..., help="source endpoint IP (or VNI/IP)"),
    dst_ep: str = typer.Argument(..., help="destination endpoint IP (or VNI/IP)"),
    vni: int = typer.Option(None, "--vni"),
    run_dir: str = typer.Option(str(DEFAULT_RUN_DIR), "--run-dir", help="directory of the daemons' sockets"),
    hosts: str = typer.Option(
        None, "--hosts", help="comma-separated host names (default: every socket in --run-dir)"
    ),
    ping: str = typer.Option(
        None, "--ping", help="netns of the source endpoint: send one ping and show counters"
    ),
    output: str = OutputOpt,
) -> None:
    """The hops a flow takes (agent -> bouncer/divider -> host), from the maps and counters."""
    from pathlib import Path

    _check_out(output)
    p = _lib()

    def split(ep: str) -> tuple[int | None, str]:
        if "/" in ep:
            v, _, ip = ep.partition("/")
            return int(v), ip
        return vni, ep

    v1, src = split(src_ep)
    v2, dst = split(dst_ep)
    v = v1 or v2
    if v is None:
        raise CLIError("say which VPC: --vni N or VNI/IP")
    if hosts:
        clients = {
            h: TransitClient(str(Path(run_dir) / f"{h}.sock"), timeout=10) for h in hosts.split(",") if h
        }
    else:
        clients = p.discover_hosts(run_dir)
    if not clients:
        raise CLIError(f"no transit daemons found in {run_dir} (use --run-dir or --hosts)")
    try:
        hops = p.predict(clients, v, src, dst)
        observed = (
            p.observe(clients, lambda: p.run_in_ns(ping, "ping", "-c", "1", "-W", "2", dst)) if ping else None
        )
    except p.PacketError as e:
        raise CLIError(str(e)) from None
    except Exception as e:  # TransitError and friends
        raise CLIError(str(e)) from None
    if output == "json":
        typer.echo(json.dumps({"hops": hops, "observed": observed}, indent=2))
        return
    typer.echo(f"flow {src} -> {dst} in VNI {v}:")
    for i, h in enumerate(hops, 1):
        typer.echo(f"  {i}. {h['host']:<12} {h['role']:<8} {h['action']}")
    if observed is not None:
        typer.echo("counters that rose during one ping:")
        for host, cs in sorted(observed.items()):
            typer.echo(f"  {host}: " + ", ".join(f"{k}+{n}" for k, n in sorted(cs.items())))
