"""``centaurusctl serve agent``: the node agent process (one real node, or N hollow nodes).

Real mode runs one node named ``--node-name`` (default: the hostname) with the ``runc`` container runtime
(``--runtime runc``) and, if ``--vm-runtime-uri`` is given, the libvirt VM runtime for pods with
``spec.virtualMachine``. Hollow mode (``--hollow-nodes N``) runs N simulated nodes named
``PREFIX-0 .. PREFIX-(N-1)`` (``--hollow-prefix``, default ``hollow-node``) in this one process, each with
its own :class:`~agent.runtime.hollow.HollowRuntime`, registration, lease and pod workers, sharing one
pod watch, one API client per partition and one write-concurrency limit.

Partitions (DESIGN §6): Node and Lease go to every ``--rp-server`` (default ``--server``); pods and
actions are watched in every ``--tp-server`` (default ``--server``) and their status is written back
to the partition they came from.

The process frame (logging, SIGTERM/SIGINT, umask, event loop, one-line start-up errors) is
:func:`ctl.util.daemon.run_daemon`, with asyncio's own event loop for the runc runtime (it runs
``runc`` and ``ip`` per container, and uvloop spawns processes several times slower) and uvloop for
hollow nodes (all HTTP).

Exit codes: 0 after SIGTERM/SIGINT (running containers keep running and are adopted by the next
agent), 1 with a one-line error for bad flags, a runtime that cannot start or an endpoint that
cannot listen.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

from agent.node import netmode, nodeinfo
from agent.node.agent import NodeAgent
from agent.node.droplet import DropletError
from agent.node.endpoint import AgentEndpoint
from agent.node.nodeinfo import NodeSpec
from agent.node.podnet import PodNetworking
from agent.node.shared import Shared, Timing
from agent.node.sources import Sources
from agent.node.statuswriter import StatusWriter
from agent.runtime.base import Runtime, RuntimeError_
from ctl.client.aio import Client
from ctl.client.kubeconfig import ClientConfig, ConfigError
from ctl.client.kubeconfig import load as load_kubeconfig
from ctl.types.quantity import is_quantity
from ctl.util.daemon import run_daemon
from ctl.util.private_files import secure_tree
from ctl.util.tasks import cancel_and_wait

log = logging.getLogger("centaurus.agent")


class UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="centaurusctl serve agent", description="Run the Centaurus node agent.")
    p.add_argument("--server", default="", help="API server URL (http(s)://HOST:PORT or unix:///path)")
    p.add_argument("--kubeconfig", default="", help="kubeconfig to use when --server is not given")
    p.add_argument("--token", default="", help="bearer token (overrides the kubeconfig's)")
    p.add_argument(
        "--rp-server", action="append", default=[], help="resource partition API server (repeatable)"
    )
    p.add_argument(
        "--tp-server", action="append", default=[], help="tenant partition API server (repeatable)"
    )
    p.add_argument("--node-name", default="", help="node name (default: hostname)")
    p.add_argument("--node-ip", default="", help="InternalIP to report (default: the host's primary address)")
    p.add_argument("--runtime", choices=["runc", "hollow"], default="runc")
    p.add_argument(
        "--vm-runtime-uri",
        default="",
        help="libvirt URI for VM pods (test:///default, qemu:///system); empty: no VMs",
    )
    p.add_argument(
        "--data-dir", default=os.environ.get("CENTAURUS_DATA_DIR", str(Path.home() / ".centaurus"))
    )
    p.add_argument("--state-dir", default="", help="runc runtime state (default DATA_DIR/agent/NODE)")
    p.add_argument("--hollow-nodes", type=int, default=0, help="run N hollow nodes in this process")
    p.add_argument("--hollow-prefix", default="hollow-node")
    p.add_argument(
        "--hollow-start-delay", type=float, default=0.5, help="seconds a hollow container takes to start"
    )
    p.add_argument(
        "--pod-cidr", default="", help="pod CIDR of this node (default 10.88.0.0/16; hollow: a /24 per node)"
    )
    p.add_argument("--bridge", default="cbr0")
    netmode.add_arguments(p)
    p.add_argument(
        "--backoff-initial", type=float, default=10.0, help="first crash-loop back-off (kubelet: 10 s)"
    )
    p.add_argument("--backoff-max", type=float, default=300.0, help="back-off cap (kubelet: 300 s)")
    p.add_argument("--resync-seconds", type=float, default=10.0)
    p.add_argument("--transition-resync-seconds", type=float, default=0.5)
    p.add_argument("--lease-seconds", type=float, default=10.0)
    p.add_argument(
        "--pleg-seconds", type=float, default=1.0, help="runtime relist period (container state changes)"
    )
    p.add_argument("--lease-duration-seconds", type=int, default=40)
    p.add_argument(
        "--node-status-seconds",
        type=float,
        default=0,
        help="status report period when nothing changes (default 60; hollow 300)",
    )
    p.add_argument("--endpoint-address", default="127.0.0.1")
    p.add_argument(
        "--endpoint-port",
        type=int,
        default=10250,
        help="TCP port of the agent endpoint (0: any free port, -1: none)",
    )
    p.add_argument(
        "--endpoint-socket",
        default="",
        help="also serve the agent endpoint on this Unix socket (advertised when set)",
    )
    p.add_argument("--max-pods", type=int, default=110)
    p.add_argument("--cpu", default="", help="cpu capacity to report (default: host cores; hollow 4)")
    p.add_argument(
        "--memory", default="", help="memory capacity to report (default: host memory; hollow 16Gi)"
    )
    p.add_argument("--instance-type", default="", help="node.kubernetes.io/instance-type label")
    p.add_argument("--node-labels", default="", help="extra labels k=v,k2=v2")
    p.add_argument("--node-taints", default="", help="taints key=value:Effect,...")
    p.add_argument(
        "--max-inflight-writes", type=int, default=128, help="concurrent API writes of the process"
    )
    p.add_argument("--max-parallel-syncs", type=int, default=16, help="concurrent runtime sync_pod calls")
    p.add_argument(
        "--no-node-selector", action="store_true", help="watch all pods and filter locally even for one node"
    )
    p.add_argument(
        "--event-loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="auto: uvloop for hollow nodes, asyncio's loop for runc (faster subprocesses)",
    )
    p.add_argument(
        "--pod-events",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="report pod Events (Started, BackOff, Unhealthy, Killing); default on, off for hollow nodes",
    )
    p.add_argument("--log-level", default="INFO")
    return p


def _client_config(args: argparse.Namespace) -> ClientConfig:
    if args.server:
        cfg = ClientConfig(args.server)
    else:
        try:
            cfg = load_kubeconfig(args.kubeconfig or None)
        except ConfigError as e:
            raise UsageError(str(e)) from None
    if args.token:
        cfg.token = args.token
    return cfg


def _clients(args: argparse.Namespace) -> tuple[list[Client], list[Client]]:
    base = _client_config(args)
    cache: dict[str, Client] = {base.server: Client(base)}

    def client(url: str) -> Client:
        if url not in cache:
            cache[url] = Client(
                ClientConfig(
                    url,
                    token=base.token,
                    ca_data=base.ca_data,
                    cert_data=base.cert_data,
                    key_data=base.key_data,
                    insecure=base.insecure,
                )
            )
        return cache[url]

    rps = [client(u) for u in args.rp_server] or [cache[base.server]]
    tps = [client(u) for u in args.tp_server] or [cache[base.server]]
    return rps, tps


def hollow_cidr(i: int) -> str:
    """A /24 per hollow node out of 10.128.0.0/9 (32768 nodes before wrapping)."""
    n = i % 32768
    return f"10.{128 + n // 256}.{n % 256}.0/24"


def hollow_ip(i: int) -> str:
    return str(ipaddress.ip_address(int(ipaddress.ip_address("172.16.0.0")) + 1 + (i % 1_000_000)))


def _validate(args: argparse.Namespace) -> None:
    if args.hollow_nodes < 0:
        raise UsageError("--hollow-nodes must be >= 0")
    for flag in ("resync_seconds", "transition_resync_seconds", "lease_seconds", "pleg_seconds"):
        if getattr(args, flag) <= 0:
            raise UsageError(f"--{flag.replace('_', '-')} must be > 0")
    if args.max_pods <= 0:
        raise UsageError("--max-pods must be > 0")
    if args.pod_cidr:
        try:
            ipaddress.ip_network(args.pod_cidr, strict=False)
        except ValueError as e:
            raise UsageError(f"--pod-cidr: {e}") from None
    try:
        nodeinfo.parse_labels(args.node_labels)
        nodeinfo.parse_taints(args.node_taints)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.cpu and not is_quantity(args.cpu):
        raise UsageError(f"--cpu: invalid quantity {args.cpu!r}")
    if (problem := netmode.validate(args)) is not None:
        raise UsageError(problem)


async def _make_runtime(
    args: argparse.Namespace, name: str, data_dir: Path, vpc: netmode.VpcNode | None = None
) -> Runtime:
    if args.runtime == "hollow":
        from agent.runtime.hollow import HollowRuntime

        return HollowRuntime(
            node_name=name,
            pod_cidr=args.pod_cidr or "10.200.0.0/16",
            start_delay=args.hollow_start_delay,
            backoff_initial=args.backoff_initial,
            backoff_max=args.backoff_max,
        )
    from agent.runtime.runc import RuncRuntime

    rt = RuncRuntime(
        data_dir=data_dir,
        node_name=name,
        pod_cidr=args.pod_cidr or "10.88.0.0/16",
        bridge=args.bridge,
        state_dir=args.state_dir or None,
        backoff_initial=args.backoff_initial,
        backoff_max=args.backoff_max,
        network=vpc.plumbing if vpc is not None else None,
    )
    await rt.start()
    return rt


async def _make_vm_runtime(args: argparse.Namespace, name: str, data_dir: Path) -> tuple[Runtime | None, str]:
    if not args.vm_runtime_uri:
        return None, ""
    try:
        from agent.runtime.libvirt_vm import LibvirtRuntime
    except ImportError as e:
        return None, f"the libvirt VM runtime is not available: {e}"
    rt = LibvirtRuntime(uri=args.vm_runtime_uri, data_dir=data_dir, node_name=name)
    try:
        await rt.start()
    except RuntimeError_ as e:
        return None, str(e)
    return rt, ""


async def pleg_loop(agents: dict[str, NodeAgent], period: float) -> None:
    """Relist every node's runtimes each ``period`` seconds (one loop for all nodes of the process)."""
    while True:
        t0 = asyncio.get_running_loop().time()
        for i, a in enumerate(list(agents.values())):
            try:
                await a.relist()
            except Exception:  # noqa: BLE001 - one bad node must not stop the others
                log.exception("relist of node %s failed", a.name)
            if i % 100 == 99:
                await asyncio.sleep(0)
        loop_time = asyncio.get_running_loop().time()
        await asyncio.sleep(max(0.05, period - (loop_time - t0)))


async def serve(args: argparse.Namespace, stop: asyncio.Event) -> int:
    """Run the agent's nodes until ``stop`` is set; containers and VMs are left running."""
    data_dir = Path(args.data_dir)
    secure_tree(data_dir)  # 0700, and an older data dir's group/other bits removed (pod logs, pod.json)
    rps, tps = _clients(args)
    hollow = args.hollow_nodes > 0
    if hollow:
        args.runtime = "hollow"
    timing = Timing(
        lease_seconds=args.lease_seconds,
        lease_duration=args.lease_duration_seconds,
        node_status_seconds=args.node_status_seconds or (300.0 if hollow else 60.0),
        resync_seconds=args.resync_seconds,
        transition_resync=args.transition_resync_seconds,
    )
    shared = Shared(
        rp_clients=rps,
        tp_clients=tps,
        write_limit=asyncio.Semaphore(args.max_inflight_writes),
        sync_limit=asyncio.Semaphore(args.max_parallel_syncs),
        timing=timing,
        stagger=args.lease_seconds if hollow else 0.0,
        pod_events=not hollow if args.pod_events is None else args.pod_events,
    )
    shared.status_writer = StatusWriter(args.max_inflight_writes)
    shared.status_writer.start()
    agents: dict[str, NodeAgent] = {}
    endpoint = AgentEndpoint(agents)
    await endpoint.start(
        args.endpoint_address, None if args.endpoint_port < 0 else args.endpoint_port, args.endpoint_socket
    )
    log.info("agent endpoint %s (tcp port %s)", endpoint.url() or "disabled", endpoint.port or "-")
    host = nodeinfo.host_defaults()
    labels = nodeinfo.parse_labels(args.node_labels)
    taints = nodeinfo.parse_taints(args.node_taints)
    if hollow:
        names = [f"{args.hollow_prefix}-{i}" for i in range(args.hollow_nodes)]
    else:
        names = [args.node_name or socket.gethostname().lower()]
    runc_ver = nodeinfo.runc_version() if args.runtime == "runc" else "0.1.0"
    vpcs: list[netmode.VpcNode] = []
    for i, name in enumerate(names):
        vpc = None
        if netmode.mode(args) == "vpc":
            try:
                state = Path(args.state_dir) if args.state_dir else data_dir / "agent" / name
                vpc = await netmode.vpc_node(args, name, state)
            except DropletError as e:
                raise UsageError(str(e)) from None
            vpcs.append(vpc)
        try:
            if hollow:
                args.pod_cidr = hollow_cidr(i)
            rt = await _make_runtime(args, name, data_dir, vpc)
        except RuntimeError_ as e:
            raise UsageError(f"cannot start the {args.runtime} runtime: {e}") from None
        vm_rt, vm_err = (None, "") if hollow else await _make_vm_runtime(args, name, data_dir)
        if vm_err:
            log.warning("VM runtime unavailable: %s", vm_err)
        spec = NodeSpec(
            name=name,
            internal_ip=hollow_ip(i)
            if hollow
            else (args.node_ip or (vpc.substrate.ip if vpc else nodeinfo.primary_ip())),
            hostname=name if hollow else host["hostname"],
            cpu=args.cpu or ("4" if hollow else host["cpu"]),
            memory=args.memory or ("16Gi" if hollow else host["memory"]),
            pods=args.max_pods,
            runtime=args.runtime,
            runtime_version=runc_ver,
            os_image="hollow" if hollow else host["os_image"],
            kernel=host["kernel"],
            architecture=host["architecture"],
            labels=labels,
            taints=taints,
            pod_cidr=args.pod_cidr or "10.88.0.0/16",
            endpoint_port=endpoint.port,
            endpoint_url=endpoint.url(),
            instance_type=args.instance_type or ("hollow" if hollow else "centaurus.local"),
            hollow=hollow,
            vm_runtime="libvirt" if vm_rt is not None else "",
        )
        agents[name] = NodeAgent(
            spec,
            rt,
            shared,
            vm_runtime=vm_rt,
            vm_runtime_error=vm_err,
            data_dir=None if hollow else data_dir,
            podnet=PodNetworking(vpc.plumbing, vpc.droplet) if vpc else None,
        )
    # Register (bounded concurrency through the shared write limit), then start the loops.
    # A SIGTERM while registration still retries (API server unreachable) stops the agent too.
    stopped = asyncio.create_task(stop.wait(), name="stop")

    async def register_all() -> None:
        for vn in vpcs:  # the Droplet first: the operator can program the host before pods arrive
            await netmode.register_droplets(tps, vn)
        await asyncio.gather(*(a.register() for a in agents.values()))

    registering: asyncio.Future[Any] = asyncio.ensure_future(register_all())
    first: list[asyncio.Future[Any]] = [registering, stopped]
    await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
    sources = Sources(agents, tps, node_selector=not args.no_node_selector and not hollow)
    start_task: asyncio.Task[None] | None = None
    if registering.done() and not stop.is_set():
        try:
            registering.result()
        except DropletError as e:
            raise UsageError(str(e)) from None
        log.info("%d node(s) registered", len(agents))
        for a in agents.values():
            a.start_loops()
        start_task = asyncio.create_task(sources.start(), name="sources")
        await asyncio.wait([start_task, stopped], return_when=asyncio.FIRST_COMPLETED)
    pleg: asyncio.Task[None] | None = None
    if start_task is not None and start_task.done() and start_task.exception() is None:
        log.info("agent ready: %d node(s), watching %d partition(s)", len(agents), len(tps))
        pleg = asyncio.create_task(pleg_loop(agents, args.pleg_seconds), name="pleg")
        await stop.wait()
    log.info("agent shutting down")
    await cancel_and_wait(registering, start_task, pleg, stopped)
    await sources.stop()
    await asyncio.gather(*(a.stop() for a in agents.values()), return_exceptions=True)
    for a in agents.values():
        for rt in filter(None, (a.runtime, a.vm_runtime)):
            try:
                await rt.close()
            except Exception:  # noqa: BLE001 - closing must not hide the shutdown
                log.exception("closing %s runtime", rt.name)
    await shared.status_writer.stop()
    await endpoint.stop()
    for c in {id(c): c for c in rps + tps}.values():
        await c.close()
    return 0


def run(argv: list[str]) -> int:
    """``centaurusctl serve agent ARGS``: 0 after SIGTERM/SIGINT, 1 with one ``error: agent:`` line."""
    args = build_parser().parse_args(argv)
    try:
        _validate(args)
    except UsageError as e:
        print(f"error: agent: {e}", file=sys.stderr)
        return 1
    if args.netns:  # before any thread starts: every thread of the agent is then in the host's namespace
        try:
            netmode.enter_netns(args.netns)
        except OSError as e:
            print(f"error: agent: --netns {args.netns}: {e.strerror or e}", file=sys.stderr)
            return 1
    loop = args.event_loop
    if loop == "auto":
        # uvloop spawns subprocesses about 5x slower than asyncio's default loop here (runc and ip
        # are run per container), while hollow mode is all HTTP and gains from it.
        loop = "uvloop" if args.hollow_nodes > 0 or args.runtime == "hollow" else "asyncio"
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

    async def main(stop: asyncio.Event) -> int:
        try:
            return await serve(args, stop)
        except UsageError as e:
            print(f"error: agent: {e}", file=sys.stderr, flush=True)
            return 1

    return run_daemon("agent", main, args.log_level, use_uvloop=loop == "uvloop")


def main() -> None:  # pragma: no cover - python -m agent.node.main
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":  # pragma: no cover
    main()


__all__: list[Any] = ["run", "build_parser"]
