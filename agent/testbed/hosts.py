"""Simulated hosts on one substrate bridge, as ``centaurusctl init --hosts N`` runs them.

The topology of :class:`agent.testbed.dataplane.Testbed` without its daemons: a Linux bridge
``<prefix>br`` in the root namespace is the substrate (192.168.222.0/24 by default); host ``hI``
is the network namespace ``<prefix>-hI`` whose ``sub0`` veth is a port of that bridge (GRO on at
the bridge end, so native XDP delivers). ``init`` supervises one transit daemon and one node
agent per host (both join the namespace with ``--netns``; the API server is reached over its
Unix socket, DESIGN §8), so nothing is routed between the test network and the machine's.

What was made is recorded in a JSON file, so that ``down`` (another process, maybe after the
supervisor died) removes exactly that: the pods' namespaces the hosts' agents left (listed in
their VPC state dirs), the host namespaces, the bridge and the transit daemons' BPF pins::

    python -m agent.testbed.hosts up --hosts 3 --prefix cx1 --record DATA/hosts.json
    python -m agent.testbed.hosts down --record DATA/hosts.json [--state-root DATA/agent]

``ctl`` runs this module as a process (ctl never imports agent). Errors are one line, exit 1.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from agent.testbed import netns

PIN_ROOT = Path("/sys/fs/bpf/centaurus")
SUBSTRATE = "192.168.222.0/24"


def plumb_host(prefix: str, name: str, bridge: str, addr: str, plen: int, mtu: int = 1500,
               port_csum_off: bool = False) -> dict[str, str]:  # fmt: skip
    """Namespace ``<prefix>-<name>`` with ``sub0`` (``addr/plen``) on ``bridge``; returns its facts."""
    ns = f"{prefix}-{name}"
    netns.add_netns(ns)
    port = netns.ifname_ok(f"{prefix}{name}"[:15])
    netns.add_veth("sub0", port, a_ns=ns, mtu=mtu)
    netns.ip("link", "set", port, "master", bridge)
    netns.ip("link", "set", port, "up")
    netns.gro_on(port)
    if port_csum_off:
        netns.tx_csum_off(port)
    netns.ip("addr", "add", f"{addr}/{plen}", "dev", "sub0", ns=ns)
    netns.ip("link", "set", "sub0", "up", ns=ns)
    return {"name": name, "ns": ns, "ip": addr, "port": port, "mac": netns.link_mac("sub0", ns)}


def up(n: int, prefix: str, record: Path, substrate: str = SUBSTRATE) -> dict[str, Any]:
    """Create (or find, when ``record`` says they exist) ``n`` hosts; returns the record."""
    if record.exists():
        rec: dict[str, Any] = json.loads(record.read_text())
        existing = set(netns.list_netns())
        if len(rec.get("hosts", [])) == n and all(h["ns"] in existing for h in rec["hosts"]):
            return rec
        down(record)
    net = ipaddress.IPv4Network(substrate)
    addrs = net.hosts()
    bridge = netns.ifname_ok(f"{prefix}br")
    rec = {"prefix": prefix, "bridge": bridge, "substrate": substrate, "hosts": []}
    record.parent.mkdir(parents=True, exist_ok=True)
    try:
        netns.ip("link", "add", bridge, "type", "bridge")
        netns.ip("link", "set", bridge, "up")
        for i in range(n):
            rec["hosts"].append(plumb_host(prefix, f"h{i + 1}", bridge, str(next(addrs)), net.prefixlen))
            record.write_text(json.dumps(rec, indent=1))
    except BaseException:
        record.write_text(json.dumps(rec, indent=1))
        down(record)
        raise
    return rec


def down(record: Path, state_root: Path | None = None) -> int:
    """Remove what ``record`` lists (and the pods' namespaces under ``state_root``); returns the count."""
    try:
        rec = json.loads(record.read_text())
    except (OSError, ValueError):
        return 0
    removed = 0
    present = set(netns.list_netns())
    if state_root is not None:
        for h in rec.get("hosts", []):
            vpc = state_root / h["name"] / "vpc"
            for f in vpc.iterdir() if vpc.is_dir() else []:
                if f.suffix in (".json", ".plumbed"):
                    name = "cpod-" + f.stem.replace("-", "")[:12]
                    if name in present:
                        netns.del_netns(name)
                        removed += 1
                    f.unlink(missing_ok=True)
    for h in rec.get("hosts", []):
        if h["ns"] in present:
            netns.del_netns(h["ns"])
            removed += 1
        shutil.rmtree(PIN_ROOT / h["ns"], ignore_errors=True)
    netns.ip("link", "del", rec.get("bridge", ""), check=False)
    record.unlink(missing_ok=True)
    return removed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m agent.testbed.hosts", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up")
    u.add_argument("--hosts", type=int, required=True)
    u.add_argument("--prefix", required=True)
    u.add_argument("--record", type=Path, required=True)
    u.add_argument("--substrate", default=SUBSTRATE)
    d = sub.add_parser("down")
    d.add_argument("--record", type=Path, required=True)
    d.add_argument("--state-root", type=Path)
    args = p.parse_args(argv)
    try:
        if args.cmd == "up":
            if not 1 <= args.hosts <= 32:
                raise ValueError("--hosts must be between 1 and 32")
            rec = up(args.hosts, args.prefix, args.record, args.substrate)
            print(" ".join(f"{h['ns']}={h['ip']}" for h in rec["hosts"]))
        else:
            print(f"{down(args.record, args.state_root)} namespace(s) removed")
    except (netns.NetnsError, OSError, ValueError) as e:
        print(f"error: hosts: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
