"""``centaurusctl serve netoperator``: the network operator process.

Start-up: one API client and the shared informers (networks, VPCs, subnets, endpoints,
droplets, bouncers, dividers, nodes) plus the allocation records' informer; once they synced, the
topology is rebuilt from the statuses written before (:func:`ctl.network.controllers.restore`),
allocation records nobody references are released (:meth:`Allocator.reconcile`, again every
``--reconcile-interval``), and then the reconcilers start. Each droplet's programmer lists its
transit daemon and writes only the differences, so a restart re-programs nothing that is
already right. SIGTERM/SIGINT stop it cleanly (the frame is :func:`ctl.util.daemon.run_daemon`);
a bad flag is one ``error: netoperator: ...`` line and exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys

from ctl.client import Client, ConfigError
from ctl.client.events import EventRecorder
from ctl.client.informer import SharedInformers
from ctl.controllers.main import client_config, duration
from ctl.network import objects as ob
from ctl.network.controllers import ALL, restore
from ctl.network.state import DEFAULT_CHECK_RATE, DEFAULT_NODE_GRACE, NetState
from ctl.util.daemon import run_daemon
from ctl.util.tasks import cancel_and_wait

log = logging.getLogger("centaurus.network")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="centaurusctl serve netoperator", description="Run the network operator."
    )
    p.add_argument(
        "--server", default="", help="API server URL (http://, https:// or unix://); overrides the kubeconfig"
    )
    p.add_argument(
        "--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG or ~/.centaurus/kubeconfig)"
    )
    p.add_argument("--token", default=None, help="bearer token")
    p.add_argument("--workers", type=int, default=4, help="concurrent syncs per kind (default 4)")
    p.add_argument(
        "--check-interval", type=float, default=2.0, help="seconds between transitd restart checks"
    )
    p.add_argument(
        "--check-rate",
        type=float,
        default=DEFAULT_CHECK_RATE,
        help="transitd restart checks per second over all droplets (the interval grows past "
        f"--check-interval on large clusters; default {DEFAULT_CHECK_RATE:g})",
    )
    p.add_argument(
        "--program-timeout", type=float, default=10.0, help="seconds a sync waits for transit daemons"
    )
    p.add_argument(
        "--reconcile-interval", type=float, default=60.0, help="seconds between allocation reconciles"
    )
    p.add_argument(
        "--node-grace-period",
        type=duration,
        default=DEFAULT_NODE_GRACE,
        help="how long a droplet's Node may be NotReady before its bouncers/dividers move "
        f"(e.g. 30s, 2m; default {DEFAULT_NODE_GRACE:g}s)",
    )
    p.add_argument("--log-level", default=os.environ.get("CENTAURUS_LOG_LEVEL", "INFO"))
    return p


async def _reconcile_loop(state: NetState, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            n = await state.allocator.reconcile()
            if n:
                log.info("released %d unreferenced allocation records", n)
        except Exception as e:  # the API server away for a moment: next round
            log.warning("allocation reconcile: %s", e)


async def serve(args: argparse.Namespace, stop: asyncio.Event) -> int:
    client = Client(client_config(args), timeout=30.0)
    informers = SharedInformers(client)
    recorder = EventRecorder(client, "netoperator", host=socket.gethostname())
    state = NetState(
        client,
        informers,
        recorder,
        args.check_interval,
        args.program_timeout,
        args.node_grace_period,
        args.check_rate,
    )
    controllers = [c(state, args.workers) for c in ALL]
    for k in (ob.BOUNCER, ob.DIVIDER):
        informers.get(k)
    recorder.start()
    informers.start()
    state.allocator.informer.start()
    tasks: list[asyncio.Task[None]] = []

    async def all_synced() -> None:
        await informers.wait_synced()
        await state.allocator.informer.synced.wait()

    synced = asyncio.ensure_future(all_synced())
    halt = asyncio.ensure_future(stop.wait())
    await asyncio.wait({synced, halt}, return_when=asyncio.FIRST_COMPLETED)
    await cancel_and_wait(synced, halt)
    if not stop.is_set():
        restore(state, {c.name: c.inf for c in controllers})
        for name in state.topology.droplets:
            state.programmer(name)
        released = await state.allocator.reconcile()
        log.info(
            "netoperator running: %d droplets, %d endpoints restored, %d stale allocations released",
            len(state.topology.droplets),
            len(state.topology.endpoints),
            released,
        )
        for c in controllers:
            c.start()
        tasks.append(
            asyncio.create_task(_reconcile_loop(state, args.reconcile_interval), name="alloc-reconcile")
        )
        await stop.wait()
    log.info("netoperator shutting down")
    await cancel_and_wait(tasks)
    for c in controllers:
        await c.stop()
    await state.close()
    await state.allocator.informer.stop()
    await informers.stop()
    await recorder.stop(1.0)
    await client.close()
    return 0


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        client_config(args)
    except (ValueError, ConfigError) as e:
        print(f"error: netoperator: {e}", file=sys.stderr, flush=True)
        return 1
    if args.workers < 1:
        print("error: netoperator: --workers must be at least 1", file=sys.stderr, flush=True)
        return 1
    if args.check_rate <= 0:
        print("error: netoperator: --check-rate must be positive", file=sys.stderr, flush=True)
        return 1

    async def main(stop: asyncio.Event) -> int:
        return await serve(args, stop)

    return run_daemon("netoperator", main, args.log_level)
