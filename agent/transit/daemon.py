"""``centaurusctl serve transitd``: the per-host transit daemon.

One per host. It enters the host's network namespace if asked (``--netns``; only the network
namespace, so /sys/fs/bpf stays the machine's bpffs and pins survive restarts), compiles the
XDP programs with bcc reusing the maps pinned under /sys/fs/bpf/centaurus/<host>/, resumes the
attachments recorded in its state file, and serves the RPC API of ``agent.transit.rpc`` on a
Unix socket (default /run/centaurus/transitd/<host>.sock) and optionally on TCP.

Stopping it (SIGTERM/SIGINT) leaves the programs attached and the maps pinned: forwarding
continues while no daemon runs, and the next daemon takes over atomically.

The process frame is the one every role shares (:func:`ctl.util.daemon.run_daemon`: logging,
signals, umask, one ``error: transitd: ...`` line and exit 1 for a start-up failure), on
asyncio's own event loop: pyroute2's netlink sockets do not run on uvloop. The compile and the
first attachment run in an executor thread (pyroute2 runs its own loop there, as it does for
every RPC); the network namespace is entered first, on the main thread, so that every thread
the daemon starts afterwards is in it.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ctl.util.daemon import run_daemon

ROLE = "transitd"

if TYPE_CHECKING:
    from agent.transit.host import TransitHost

DEFAULT_RUN_DIR = Path("/run/centaurus/transitd")
CLONE_NEWNET = 0x40000000


def default_socket(host: str) -> Path:
    return DEFAULT_RUN_DIR / f"{host}.sock"


def enter_netns(name: str) -> None:
    """Join network namespace ``name`` (a /run/netns entry or a path) — network only."""
    path = name if "/" in name else f"/run/netns/{name}"
    fd = os.open(path, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({path})")
    finally:
        os.close(fd)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="centaurusctl serve transitd", description=__doc__.split("\n")[0])
    p.add_argument("--host", required=True, help="host (droplet) name; names the pin dir and socket")
    p.add_argument("--itf", required=True, help="substrate interface (transit_xdp goes here)")
    p.add_argument("--ip", help="substrate IPv4 address (default: the interface's)")
    p.add_argument("--mac", help="substrate MAC (default: the interface's)")
    p.add_argument("--netns", help="network namespace to run in (name under /run/netns or a path)")
    p.add_argument("--socket", help="Unix socket path (default /run/centaurus/transitd/<host>.sock)")
    p.add_argument("--tcp", help="also listen on HOST:PORT")
    p.add_argument("--state-dir", help="state directory (default /run/centaurus/transitd/<host>)")
    p.add_argument("--learn-ttl", type=float, default=30.0, help="seconds a learned direct path stays usable")
    p.add_argument(
        "--load", choices=["auto", "native", "generic"], help="attach the programs at start (if not already)"
    )
    p.add_argument(
        "--agent-hook",
        choices=["xdp", "tc"],
        help="endpoint egress program: XDP (default) or TC (keeps TSO/GSO)",
    )
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def make_host(args: argparse.Namespace) -> TransitHost:
    """Compile/load and resume (synchronous: pyroute2 runs its own event loop)."""
    from agent.transit.host import TransitHost

    host = TransitHost(
        args.host,
        args.itf,
        ip=args.ip,
        mac=args.mac,
        learn_ttl_s=args.learn_ttl,
        state_dir=Path(args.state_dir) if args.state_dir else None,
    )
    if args.load and not host.loaded:
        host.load(args.load, args.agent_hook)
    return host


def _fail(message: object) -> int:
    print(f"error: {ROLE}: {message}", file=sys.stderr, flush=True)
    return 1


async def serve(args: argparse.Namespace, stop: asyncio.Event) -> int:
    """Load (in an executor thread), serve the RPC API until ``stop``, then close the sockets."""
    from aiohttp import web

    from agent.transit.loader import LoaderError
    from agent.transit.model import Invalid
    from agent.transit.rpc import make_app

    log = logging.getLogger(ROLE)
    try:
        host = await asyncio.get_running_loop().run_in_executor(None, make_host, args)
    except (LoaderError, Invalid) as e:  # OSError: run_daemon prints the same line
        return _fail(e)
    runner = web.AppRunner(make_app(host), access_log=None)
    await runner.setup()
    sock = Path(args.socket) if args.socket else default_socket(args.host)
    try:
        sock.parent.mkdir(parents=True, exist_ok=True)
        if sock.exists():
            sock.unlink()
        await web.UnixSite(runner, str(sock)).start()
        os.chmod(sock, 0o660)
        if args.tcp:
            h, _, port = args.tcp.rpartition(":")
            await web.TCPSite(runner, h or "127.0.0.1", int(port)).start()
        log.info(
            "transitd %s ready on %s (ip %s, itf %s, loaded=%s)",
            args.host,
            sock,
            host.ip,
            args.itf,
            host.loaded,
        )
        print(f"transitd {args.host} ready on {sock}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
        try:
            sock.unlink()
        except OSError:
            pass
    log.info("transitd %s stopped; programs stay attached", args.host)
    return 0


def run(argv: list[str]) -> int:
    """Role entry point (``centaurus.roles``: transitd); exit 0 when stopped, 1 on a start-up error."""
    args = parse_args(argv)
    if args.tcp and not args.tcp.rpartition(":")[2].isdigit():
        return _fail(f"--tcp {args.tcp!r}: want HOST:PORT")
    if args.netns:
        try:
            enter_netns(args.netns)
        except OSError as e:
            return _fail(e)
    return run_daemon(ROLE, lambda stop: serve(args, stop), args.log_level, use_uvloop=False)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
