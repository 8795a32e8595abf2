"""``centaurusctl serve scheduler``: the scheduler process entry.

Connects to the tenant partition's API server (``--server``/``--token`` or a kubeconfig)
for pods, bindings and events, and to one or more node sources (``--node-source URL``,
repeatable: the resource partitions' API servers; default the same server) for Nodes.
Optionally serves ``/healthz`` (200 once the caches are synced) and ``/metrics`` on
``--health-port``. SIGTERM/SIGINT stop it; the process frame (logging, uvloop, signals,
one ``error: scheduler: ...`` line and exit 1 on a start-up ``OSError``) is
:func:`ctl.util.daemon.run_daemon`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys

from aiohttp import web

from ctl.client.aio import Client
from ctl.client.kubeconfig import ClientConfig, ConfigError
from ctl.client.kubeconfig import load as load_config
from ctl.scheduler.podinfo import DEFAULT_SCHEDULER
from ctl.scheduler.scheduler import Options, Scheduler
from ctl.util.daemon import run_daemon
from ctl.util.tasks import cancel_and_wait

log = logging.getLogger("centaurus.scheduler")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="centaurusctl serve scheduler", description="Run the Centaurus pod scheduler."
    )
    p.add_argument(
        "--kubeconfig",
        default=None,
        help="kubeconfig to reach the API server (default: $KUBECONFIG or ~/.kube/config)",
    )
    p.add_argument("--context", default=None)
    p.add_argument(
        "--server",
        default=None,
        help="API server URL (http(s)://HOST:PORT or unix:///PATH); overrides the kubeconfig",
    )
    p.add_argument("--token", default=None, help="bearer token for --server")
    p.add_argument("--insecure-skip-tls-verify", action="store_true")
    p.add_argument(
        "--node-source",
        action="append",
        default=[],
        metavar="URL",
        help="API server of a resource partition to watch Nodes from (repeatable; default: the same API server)",
    )
    p.add_argument(
        "--scheduler-name", default=DEFAULT_SCHEDULER, help="schedule only pods with this spec.schedulerName"
    )
    p.add_argument(
        "--percentage-of-nodes-to-score",
        type=float,
        default=0.0,
        help="stop searching after this share of nodes fit (0 = adaptive: 50%% - nodes/125, min 5%%, min 100 nodes)",
    )
    p.add_argument("--parallelism", type=int, default=128, help="binding requests in flight at most")
    p.add_argument("--pod-initial-backoff-seconds", type=float, default=1.0)
    p.add_argument("--pod-max-backoff-seconds", type=float, default=10.0)
    p.add_argument(
        "--unschedulable-timeout-seconds",
        type=float,
        default=60.0,
        help="retry a parked unschedulable pod after this long even if nothing changed",
    )
    p.add_argument(
        "--no-scheduled-events", action="store_true", help="do not record a Scheduled Event per bound pod"
    )
    p.add_argument("--event-workers", type=int, default=4)
    p.add_argument(
        "--health-port", type=int, default=0, help="serve /healthz and /metrics on this port (0: off)"
    )
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--log-level", default="INFO")
    return p


def _check(args: argparse.Namespace) -> str | None:
    if not 0 <= args.percentage_of_nodes_to_score <= 100:
        return f"--percentage-of-nodes-to-score must be between 0 and 100, got {args.percentage_of_nodes_to_score:g}"
    if args.parallelism < 1:
        return f"--parallelism must be at least 1, got {args.parallelism}"
    if (
        args.pod_initial_backoff_seconds < 0
        or args.pod_max_backoff_seconds < args.pod_initial_backoff_seconds
    ):
        return "--pod-max-backoff-seconds must be >= --pod-initial-backoff-seconds >= 0"
    if args.event_workers < 1:
        return "--event-workers must be at least 1"
    for u in args.node_source + ([args.server] if args.server else []):
        if not u.startswith(("http://", "https://", "unix://")):
            return f"invalid API server URL {u!r}: expected http://, https:// or unix://"
    return None


def client_config(args: argparse.Namespace) -> ClientConfig:
    if args.server:
        cfg = ClientConfig(args.server, token=args.token, insecure=args.insecure_skip_tls_verify)
    else:
        cfg = load_config(args.kubeconfig, args.context)
        if args.token:
            cfg.token = args.token
        if args.insecure_skip_tls_verify:
            cfg.insecure = True
    return cfg


async def serve(args: argparse.Namespace, cfg: ClientConfig, stop: asyncio.Event) -> None:
    client = Client(cfg)
    node_clients = [Client(dataclasses.replace(cfg, server=u)) for u in args.node_source] or [client]
    opts = Options(
        scheduler_name=args.scheduler_name,
        percentage_of_nodes_to_score=args.percentage_of_nodes_to_score,
        parallelism=args.parallelism,
        initial_backoff=args.pod_initial_backoff_seconds,
        max_backoff=args.pod_max_backoff_seconds,
        unschedulable_timeout=args.unschedulable_timeout_seconds,
        scheduled_events=not args.no_scheduled_events,
        event_workers=args.event_workers,
    )
    sched = Scheduler(client, node_clients, opts)
    runner = None
    if args.health_port:
        app = web.Application()

        async def healthz(request: web.Request) -> web.Response:
            if sched.synced.is_set():
                return web.Response(text="ok")
            return web.Response(text="not synced", status=503)

        async def metrics(request: web.Request) -> web.Response:
            return web.Response(text=sched.metrics_text(), content_type="text/plain")

        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", healthz)
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, args.bind_address, args.health_port).start()
    log.info(
        "scheduler %s starting: pods from %s, nodes from %s",
        opts.scheduler_name,
        cfg.server,
        ", ".join(args.node_source) or cfg.server,
    )
    start = asyncio.create_task(sched.start(), name="scheduler-start")
    waiter = asyncio.create_task(stop.wait(), name="stop-signal")
    try:
        await asyncio.wait({start, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():
            start.result()
            await stop.wait()
    finally:
        await cancel_and_wait(start, waiter)
    log.info("scheduler shutting down")
    await sched.stop()
    for inf in [sched.pod_informer, *sched.node_informers]:
        await inf.stop()
    if runner is not None:
        await runner.cleanup()
    for c in {id(c): c for c in [client, *node_clients]}.values():
        await c.close()


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    err = _check(args)
    if err:
        print(f"error: scheduler: {err}", file=sys.stderr)
        return 1
    try:
        cfg = client_config(args)
    except (ConfigError, OSError) as e:
        print(f"error: scheduler: {e}", file=sys.stderr)
        return 1

    async def main(stop: asyncio.Event) -> None:
        await serve(args, cfg, stop)

    return run_daemon("scheduler", main, args.log_level)
