"""``centaurusctl serve controllers``: the controller manager.

One process runs the selected controllers (``--controllers``, default all of
replicaset, deployment, garbagecollector, namespace, nodelifecycle, resourcequota,
job, cronjob) over one API client
and one set of shared informers, each with ``--workers`` concurrent syncs. Several
instances can split the work with ``--hash-range LO-HI`` over ``metadata.hashKey``.
SIGTERM/SIGINT stop it cleanly; the process frame (logging, uvloop, signals) is
:func:`ctl.util.daemon.run_daemon`. A bad flag is one ``error: controllers: ...`` line
on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import socket
import sys
from typing import Any

from ctl.client import Client, ClientConfig, ConfigError
from ctl.client.events import EventRecorder
from ctl.client.informer import SharedInformers
from ctl.client.kubeconfig import load as load_config
from ctl.controllers.base import Controller, HashRange
from ctl.types.meta import parse_duration
from ctl.util.daemon import run_daemon
from ctl.util.tasks import cancel_and_wait

log = logging.getLogger("centaurus.controllers")

ALL_CONTROLLERS = (
    "replicaset",
    "deployment",
    "daemonset",
    "statefulset",
    "garbagecollector",
    "namespace",
    "nodelifecycle",
    "resourcequota",
    "disruption",
    "tenant",
    "job",
    "cronjob",
)
ALIASES = {
    "gc": "garbagecollector",
    "rs": "replicaset",
    "deploy": "deployment",
    "ds": "daemonset",
    "sts": "statefulset",
    "node": "nodelifecycle",
    "ns": "namespace",
    "podgc": "nodelifecycle",
    "quota": "resourcequota",
    "pdb": "disruption",
}


# name -> (module, class) of the controllers built from the shared informers
CONTROLLER_CLASSES = {
    "replicaset": ("ctl.controllers.replicaset", "ReplicaSetController"),
    "deployment": ("ctl.controllers.deployment", "DeploymentController"),
    "daemonset": ("ctl.controllers.daemonset", "DaemonSetController"),
    "statefulset": ("ctl.controllers.statefulset", "StatefulSetController"),
    "garbagecollector": ("ctl.controllers.gc", "GarbageCollector"),
    "namespace": ("ctl.controllers.namespace", "NamespaceController"),
    "nodelifecycle": ("ctl.controllers.nodelifecycle", "NodeLifecycleController"),
    "resourcequota": ("ctl.controllers.quota", "ResourceQuotaController"),
    "disruption": ("ctl.controllers.disruption", "DisruptionController"),
    "job": ("ctl.controllers.job", "JobController"),
    "cronjob": ("ctl.controllers.cronjob", "CronJobController"),
}


def duration(text: str) -> float:
    """An argparse type: '40s', '5m', '1m30s', '300ms' or a plain number of seconds."""
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="centaurusctl serve controllers", description="Run the Centaurus controllers."
    )
    p.add_argument(
        "--server", default="", help="API server URL (http://, https:// or unix://); overrides the kubeconfig"
    )
    p.add_argument(
        "--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG or ~/.centaurus/kubeconfig)"
    )
    p.add_argument("--token", default=None, help="bearer token")
    p.add_argument(
        "--controllers",
        default="*",
        help=f"comma-separated controllers to run, '*' for all ({', '.join(ALL_CONTROLLERS)}); '-NAME' disables one",
    )
    p.add_argument("--workers", type=int, default=2, help="concurrent syncs per controller")
    p.add_argument(
        "--node-monitor-grace-period",
        type=duration,
        default=40.0,
        help="how long a node's lease may go unrenewed before the node is marked Unknown (default 40s)",
    )
    p.add_argument(
        "--node-monitor-period",
        type=duration,
        default=0.0,
        help="how often node health is checked (default: grace period / 8, at most 5s)",
    )
    p.add_argument(
        "--pod-eviction-timeout",
        type=duration,
        default=300.0,
        help="how long pods stay on an unreachable node before they are evicted (default 5m)",
    )
    p.add_argument(
        "--hash-range", default="", help="LO-HI: only handle objects whose metadata.hashKey is in the range"
    )
    p.add_argument("--log-level", default=os.environ.get("CENTAURUS_LOG_LEVEL", "INFO"))
    return p


def select_controllers(spec: str) -> list[str]:
    chosen: list[str] = []
    disabled: set[str] = set()
    for raw in [s.strip() for s in spec.split(",") if s.strip()]:
        neg = raw.startswith("-")
        name = raw.lstrip("-")
        if name == "*":
            chosen.extend(ALL_CONTROLLERS)
            continue
        name = ALIASES.get(name, name)
        if name not in ALL_CONTROLLERS:
            raise ValueError(f"unknown controller {name!r}; controllers: {', '.join(ALL_CONTROLLERS)}")
        (disabled.add(name) if neg else chosen.append(name))
    if not chosen and disabled:
        chosen = list(ALL_CONTROLLERS)
    out: list[str] = []
    for c in chosen:
        if c not in disabled and c not in out:
            out.append(c)
    return out


def client_config(args: argparse.Namespace) -> ClientConfig:
    if args.server:
        cfg = ClientConfig(args.server, token=args.token)
    else:
        cfg = load_config(args.kubeconfig)
        if args.token:
            cfg.token = args.token
    return cfg


async def serve(args: argparse.Namespace, names: list[str], stop: asyncio.Event) -> None:
    client = Client(client_config(args), timeout=30.0)
    informers = SharedInformers(client)
    recorder = EventRecorder(client, "controller-manager", host=socket.gethostname())
    hr = HashRange.parse(args.hash_range)
    controllers: list[Controller] = []
    for name in names:
        if name not in CONTROLLER_CLASSES:
            continue  # the tenant controller runs as its own task below
        module, cls = CONTROLLER_CLASSES[name]
        extra: dict[str, Any] = {}
        if name == "nodelifecycle":
            extra = {
                "grace": args.node_monitor_grace_period,
                "eviction_timeout": args.pod_eviction_timeout,
                "period": args.node_monitor_period or None,
            }
        make = getattr(importlib.import_module(module), cls)
        controllers.append(make(client, informers, recorder, hr, args.workers, **extra))
    extra_tasks: list[asyncio.Task[None]] = []
    recorder.start()
    informers.start()
    log.info("controllers %s: waiting for caches to sync", ",".join(names))
    sync = asyncio.ensure_future(informers.wait_synced())
    halt = asyncio.ensure_future(stop.wait())
    await asyncio.wait({sync, halt}, return_when=asyncio.FIRST_COMPLETED)
    await cancel_and_wait(sync, halt)
    if not stop.is_set():
        for c in controllers:
            await c.prepare()
            c.start()
        if "tenant" in names:
            from ctl.tenancy.controller import run_tenant_controller

            extra_tasks.append(
                asyncio.create_task(run_tenant_controller(client, workers=args.workers), name="tenant")
            )
        log.info("controllers running: %s (hash range %s-%s)", ",".join(names), hr.lo, hr.hi)
        await stop.wait()
    log.info("controllers shutting down")
    await cancel_and_wait(extra_tasks)
    for c in controllers:
        await c.stop()
    await informers.stop()
    await recorder.stop(1.0)
    await client.close()


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        names = select_controllers(args.controllers)
        HashRange.parse(args.hash_range)
        client_config(args)
    except (ValueError, ConfigError) as e:
        print(f"error: controllers: {e}", file=sys.stderr, flush=True)
        return 1
    if args.workers < 1:
        print("error: controllers: --workers must be at least 1", file=sys.stderr, flush=True)
        return 1

    async def main(stop: asyncio.Event) -> None:
        await serve(args, names, stop)

    return run_daemon("controllers", main, args.log_level)
