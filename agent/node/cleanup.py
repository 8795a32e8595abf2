"""``centaurusctl serve agent-cleanup``: stop every pod a node's runtimes left on this host.

Stopping the agent deliberately leaves containers and VMs running, so that a restarted
agent adopts them (as kubelet does). When the cluster itself is being taken down for
good (``centaurusctl down --kill-pods``) the workloads must go too: this role opens the
node's runtimes on the same data directory, lists what they hold and kills each pod,
removing its network namespace, veth, mounts, state and VM domain. It runs in the common role
frame (:func:`ctl.util.daemon.run_daemon`); an error is one ``error: agent-cleanup:`` line and
exit code 1. For a simulated host of ``init --hosts`` it joins that host's namespace
(``--netns``) and uses the agent's state dir and VPC plumbing (``--state-dir``, ``--vpc``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from pathlib import Path

from agent.runtime.base import Runtime
from ctl.util.daemon import run_daemon


async def _cleanup(args: argparse.Namespace) -> int:
    runtimes: list[Runtime] = []
    data_dir = Path(args.data_dir)
    state = Path(args.state_dir) if args.state_dir else data_dir / "agent" / args.node_name
    if os.geteuid() == 0 and state.exists():
        from agent.runtime.runc import RuncRuntime

        network = None
        if args.vpc:  # the pods' netns and veths are the VPC plumbing's (their Endpoints stay in the API)
            from agent.cni.vpc import VpcPlumbing

            network = VpcPlumbing(state)
        runc_rt = RuncRuntime(
            data_dir=data_dir, node_name=args.node_name, state_dir=args.state_dir or None, network=network
        )
        await runc_rt.start()
        runtimes.append(runc_rt)
    if args.vm_runtime_uri:
        from agent.runtime.libvirt_vm import LibvirtRuntime

        vm = LibvirtRuntime(uri=args.vm_runtime_uri, data_dir=data_dir, node_name=args.node_name)
        await vm.start()
        runtimes.append(vm)
    killed = 0
    for rt in runtimes:
        for p in await rt.list_pods():
            await rt.kill_pod(p.uid, grace_seconds=args.grace)
            killed += 1
            print(f"removed pod {p.tenant}/{p.namespace}/{p.name} ({rt.name})", flush=True)
        await rt.close()
    print(f"{killed} pod(s) removed", flush=True)
    return 0


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="centaurusctl serve agent-cleanup", description=__doc__)
    p.add_argument(
        "--data-dir", default=os.environ.get("CENTAURUS_DATA_DIR", str(Path.home() / ".centaurus"))
    )
    p.add_argument("--node-name", default=socket.gethostname())
    p.add_argument("--vm-runtime-uri", default="")
    p.add_argument("--grace", type=float, default=5.0)
    p.add_argument("--state-dir", default="", help="the agent's --state-dir (default DATA_DIR/agent/NODE)")
    p.add_argument("--vpc", action="store_true", help="the node ran with VPC pod networking")
    p.add_argument("--netns", default="", help="the network namespace the agent ran in (a simulated host)")
    args = p.parse_args(argv)
    if args.netns:
        from agent.node.netmode import enter_netns

        try:
            enter_netns(args.netns)
        except OSError as e:
            print(f"error: agent-cleanup: --netns {args.netns}: {e.strerror or e}", file=sys.stderr)
            return 1

    async def main(stop: asyncio.Event) -> int:
        try:
            return await _cleanup(args)
        except Exception as e:  # one line, no traceback
            print(f"error: agent-cleanup: {e}", file=sys.stderr, flush=True)
            return 1

    # asyncio's own loop: runc and ip are run per pod, and uvloop spawns processes slower
    return run_daemon("agent-cleanup", main, "warning", use_uvloop=False)
