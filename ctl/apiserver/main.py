"""``centaurusctl serve apiserver``: the API server process entry.

:func:`run` parses the flags (:func:`build_parser`) and hands :func:`serve` to
:func:`ctl.util.daemon.run_daemon` like every other role: logging, uvloop, SIGTERM/SIGINT
as a stop event, and a start-up ``OSError`` (a port in use, plain HTTP on TCP without
``--insecure-http``) as one ``error: apiserver: ...`` line with exit code 1.

:func:`serve` opens the store, builds the :class:`~ctl.apiserver.app.APIServer` with its
extensions installed explicitly (:func:`build_server`: tenancy - authentication of issued
tokens, isolation, RBAC, admission - and the pod subresources that reach the agent),
listens on TCP (TLS unless ``--insecure-http``) and optionally a Unix socket, compacts the
store periodically (:func:`compact_periodically`), and on the stop event closes the
listeners, ends open watches and flushes the store.

Listener and request-handler options (timeouts, limits) come from :func:`runner_options`
and :func:`site_options`, the one place to extend them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from ctl.apiserver import connections, fairness, metrics_api, network_admission, podsub, tenancy
from ctl.apiserver.app import APIServer
from ctl.apiserver.auth import Authenticator, TokenFile
from ctl.store import Store, encrypted, open_store
from ctl.util.daemon import run_daemon
from ctl.util.private_files import secure_tree
from ctl.util.tasks import cancel_and_wait

log = logging.getLogger("centaurus.apiserver")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="centaurusctl serve apiserver", description="Run the Centaurus API server."
    )
    p.add_argument(
        "--data-dir", default=os.environ.get("CENTAURUS_DATA_DIR", str(Path.home() / ".centaurus"))
    )
    p.add_argument(
        "--store",
        default="",
        help="sqlite:///PATH or etcd://HOST:PORT[,HOST:PORT] (default: sqlite in data dir)",
    )
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=6443)
    p.add_argument("--unix-socket", default="", help="also listen on this Unix socket (plain HTTP)")
    p.add_argument("--tls-cert", default="")
    p.add_argument("--tls-key", default="")
    p.add_argument("--client-ca", default="", help="CA bundle to verify client certificates")
    p.add_argument(
        "--insecure-http",
        action="store_true",
        help="serve plain HTTP on TCP (default: TCP needs --tls-cert/--tls-key)",
    )
    p.add_argument(
        "--anonymous", action="store_true", help="treat unauthenticated callers as the system administrator"
    )
    p.add_argument("--partition-role", choices=["all", "tenant", "resource"], default="all")
    p.add_argument(
        "--compact-interval", type=float, default=300.0, help="seconds between store compactions (0 = never)"
    )
    p.add_argument(
        "--compact-retain", type=int, default=10_000, help="revisions of history each compaction keeps"
    )
    p.add_argument("--log-level", default="INFO")
    for add_arguments in (connections.add_arguments, fairness.add_arguments, encrypted.add_arguments):
        add_arguments(p)
    return p


async def compact_periodically(store: Store, interval: float, retain: int) -> None:
    """Compact the store every ``interval`` seconds, keeping the last ``retain`` revisions.

    Like kube-apiserver (every 5 minutes by default): history older than the window is
    dropped, and a watch or paged list from before it answers 410 Gone.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            target = await store.current_revision() - retain
            if target > await store.compacted_revision():
                await store.compact(target)
                log.info("compacted the store up to revision %d", target)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a failed compaction is retried next interval
            log.warning("store compaction failed: %s", e)


def build_server(store: Store, authenticator: Authenticator, data_dir: Path) -> APIServer:
    """The API server with its extensions: tenancy first (it wraps the authenticator), then pod subresources."""
    server = APIServer(store, authenticator, data_dir)
    tenancy.install(server)
    network_admission.install(server)
    podsub.install(server)
    metrics_api.install(server)  # metrics.k8s.io (kubectl top) and its figures in /metrics
    return server


def runner_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of the :class:`aiohttp.web.AppRunner` (and through it, of each request handler)."""
    return {"handle_signals": False, "access_log": None, "shutdown_timeout": 2.0}


def site_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of the TCP listener."""
    return {"backlog": 1024, "reuse_address": True}


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    if args.client_ca:
        ctx.load_verify_locations(args.client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


async def serve(
    args: argparse.Namespace, stop: asyncio.Event, ready: Callable[[], None] | None = None
) -> None:
    """Serve until ``stop`` is set, then shut down gracefully."""
    if args.port and not args.tls_cert and not getattr(args, "insecure_http", False):
        raise OSError(
            "refusing plain HTTP on TCP: pass --tls-cert/--tls-key (centaurusctl init does), "
            "--insecure-http to mean it, or --port 0 to serve only the Unix socket"
        )
    data_dir = Path(args.data_dir)
    secure_tree(data_dir)  # 0700, and no group/other bits below (files left by an older version)
    store = open_store(
        args.store or f"sqlite://{data_dir / 'store.db'}",
        encryption_key_file=args.encryption_key_file,
        encryption_rewrite=args.encryption_rewrite,
    )
    tokens = TokenFile(data_dir / "tokens.json")
    server = build_server(store, Authenticator(tokens, anonymous=args.anonymous), data_dir)
    await server.start()
    fairness.install(server, args)
    runner = connections.runner(server, args, **runner_options(args))
    await runner.setup()
    sites: list[web.BaseSite] = []
    if args.port:
        sites.append(
            web.TCPSite(
                runner, args.bind_address, args.port, ssl_context=_tls_context(args), **site_options(args)
            )
        )
    if args.unix_socket:
        try:
            os.unlink(args.unix_socket)
        except FileNotFoundError:
            pass
        sites.append(web.UnixSite(runner, args.unix_socket))
    for s in sites:
        await s.start()
    log.info("apiserver listening on %s", ", ".join(s.name for s in sites))
    if ready:
        ready()
    compactor = None
    if getattr(args, "compact_interval", 0) > 0:
        compactor = asyncio.create_task(
            compact_periodically(store, args.compact_interval, args.compact_retain)
        )
    await stop.wait()
    log.info("apiserver shutting down")
    await cancel_and_wait(compactor)
    server.shutting_down.set()
    await runner.cleanup()
    await server.stop()


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)

    async def main(stop: asyncio.Event) -> None:
        await serve(args, stop)

    return run_daemon("apiserver", main, args.log_level)


__all__ = ["build_parser", "build_server", "compact_periodically", "run", "serve"]
