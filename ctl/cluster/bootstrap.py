"""What ``centaurusctl init`` sets up: settings, credentials, client configs and the component list.

The data directory holds everything a cluster needs to come back exactly as it was:
``cluster.yaml`` (the settings chosen at first init; later runs reuse them unless a
flag overrides), ``tokens.json`` (hashed bearer tokens), ``kubeconfig`` (the system
administrator's client config), ``components/*.kubeconfig`` (one credential per
component), ``pki/`` (the cluster CA and the API server's certificate, made once by
:mod:`ctl.cluster.pki`), the store (``store.db`` or ``etcd/``), logs and pid files.

The API server serves HTTPS on TCP; the administrator's kubeconfig carries the CA as
``certificate-authority-data`` (kubectl and the official clients verify it as they do
with k3s or kubeadm). Components on this machine talk to it over its Unix socket
(plain HTTP, still with their own tokens), which is also where health is checked.

:func:`components` turns the settings into the supervised processes, in start order:
etcd (if local), the API server, then scheduler, controllers, the network operator and
the node agent when their roles are installed. With ``hosts`` (``init --hosts N``) the node
agents are those of N simulated hosts, each after its transit daemon (:mod:`ctl.cluster.hosts`);
with ``extra.network = vpc`` the machine's own agent runs VPC pods over a transit daemon on the
substrate interface (``extra.substrate_itf`` or the default route's). That stays opt-in:
it attaches XDP to the machine's own interface.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import shutil
import socket
import ssl
import subprocess
import sys
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ctl.client import kubeconfig as kc
from ctl.cluster import pki
from ctl.cluster.supervisor import Component, SupervisorError
from ctl.types.tokens import SYSTEM_MASTERS, TokenFile, new_token

SETTINGS = "cluster.yaml"
CTL = [sys.executable, "-m", "ctl"]


@dataclass
class Settings:
    store: str = "sqlite"  # sqlite | etcd (local etcd) | external
    etcd_endpoints: str = ""
    port: int = 6443
    bind_address: str = "127.0.0.1"
    runtime: str = "auto"  # auto | runc | hollow | none
    hollow_nodes: int = 0
    node_name: str = field(default_factory=socket.gethostname)
    vm_runtime_uri: str = ""
    hosts: int = 0  # simulated hosts (network namespaces), each with a transitd and a node agent
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, data_dir: Path) -> Settings | None:
        p = data_dir / SETTINGS
        if not p.exists():
            return None
        raw = yaml.safe_load(p.read_text()) or {}
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / SETTINGS).write_text(yaml.safe_dump(asdict(self), sort_keys=False))


def server_url(s: Settings) -> str:
    host = "127.0.0.1" if s.bind_address in ("0.0.0.0", "::") else s.bind_address
    return f"https://{host}:{s.port}"


def socket_url(data_dir: Path) -> str:
    """Components on this machine use the Unix socket (plain HTTP, still token-authenticated)."""
    return f"unix://{data_dir / 'apiserver.sock'}"


def ensure_credentials(data_dir: Path, s: Settings, names: list[str]) -> dict[str, Path]:
    """Admin kubeconfig plus one kubeconfig per component; tokens are created once and kept."""
    tokens = TokenFile(data_dir / "tokens.json")
    url = server_url(s)
    pki_paths = pki.ensure_pki(data_dir, [s.bind_address])
    ca_pem = pki_paths.ca_cert.read_bytes()
    admin_cfg = data_dir / "kubeconfig"
    out: dict[str, Path] = {}
    for name in ["admin", *names]:
        path = admin_cfg if name == "admin" else data_dir / "components" / f"{name}.kubeconfig"
        token = None
        if path.exists():
            try:
                token = kc.load(path).token
            except kc.ConfigError:
                token = None
        if not token or tokens.entry(token) is None:
            token = new_token()
            user = "system:admin" if name == "admin" else f"system:{name}"
            tokens.add(token, user, "system", [SYSTEM_MASTERS, "system:authenticated"])
        user_name = "system-admin" if name == "admin" else f"system-{name}"
        kc.add_context(
            path,
            "centaurus" if name == "admin" else name,
            url if name == "admin" else socket_url(data_dir),
            user_name,
            token=token,
            ca_pem=ca_pem if name == "admin" else None,
            tenant="system",
            make_current=True,
        )
        out[name] = path
    return out


def role_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def runc_usable() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "not running as root"
    runc = shutil.which("runc")
    if not runc:
        return False, "runc is not installed"
    try:
        subprocess.run([runc, "--version"], check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        return False, f"runc does not run: {e}"
    return True, "runc"


def http_ok(url: str, cafile: Path | None = None) -> bool:
    ctx = ssl.create_default_context(cafile=str(cafile)) if cafile and url.startswith("https://") else None
    try:
        with urllib.request.urlopen(url, timeout=1, context=ctx) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def apiserver_ready(data_dir: Path) -> bool:
    """GET /readyz over the API server's Unix socket."""

    class _UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(1)
            self.sock.connect(str(data_dir / "apiserver.sock"))

    conn = _UnixConnection("localhost", timeout=1)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def ensure_default_images(data_dir: Path, with_vm: bool = False) -> list[str]:
    """Build busybox:latest (and the tiny VM image) into the cluster's image store; idempotent."""
    from ctl.images.busybox import build_busybox_image
    from ctl.images.store import ImageStore

    notes: list[str] = []
    try:
        build_busybox_image(ImageStore(data_dir))
    except Exception as e:  # a missing busybox-static must not stop the control plane
        notes.append(f"busybox:latest image not built ({e}); run ./setup.sh")
    if with_vm:
        try:
            from ctl.images.vm_image import build_default_vm_images

            build_default_vm_images(data_dir)
        except Exception as e:
            notes.append(f"VM images not built ({e})")
    return notes


def components(
    data_dir: Path, s: Settings, creds: dict[str, Path], log_level: str = "INFO"
) -> tuple[list[Component], list[str]]:
    """The supervised processes in start order, plus notes to show the user."""
    notes: list[str] = []
    comps: list[Component] = []
    store_url = f"sqlite://{data_dir / 'store.db'}"
    if s.store == "etcd":
        port = int(s.extra.get("etcd_client_port") or 2379)
        peer = int(s.extra.get("etcd_peer_port") or 2380)
        etcd_dir = data_dir / "etcd"
        comps.append(
            Component(
                "etcd",
                [
                    "/usr/bin/etcd",
                    "--name",
                    "centaurus",
                    "--data-dir",
                    str(etcd_dir),
                    "--listen-client-urls",
                    f"http://127.0.0.1:{port}",
                    "--advertise-client-urls",
                    f"http://127.0.0.1:{port}",
                    "--listen-peer-urls",
                    f"http://127.0.0.1:{peer}",
                    "--initial-advertise-peer-urls",
                    f"http://127.0.0.1:{peer}",
                    "--initial-cluster",
                    f"centaurus=http://127.0.0.1:{peer}",
                ],
                health=lambda: http_ok(f"http://127.0.0.1:{port}/health"),
                description=f"etcd on 127.0.0.1:{port}",
            )
        )
        store_url = f"etcd://127.0.0.1:{port}"
    elif s.store == "external":
        store_url = "etcd://" + s.etcd_endpoints.replace("http://", "")
    url = server_url(s)
    comps.append(
        Component(
            "apiserver",
            [
                *CTL,
                "serve",
                "apiserver",
                "--data-dir",
                str(data_dir),
                "--store",
                store_url,
                "--bind-address",
                s.bind_address,
                "--port",
                str(s.port),
                "--unix-socket",
                str(data_dir / "apiserver.sock"),
                "--tls-cert",
                str(pki.paths(data_dir).server_cert),
                "--tls-key",
                str(pki.paths(data_dir).server_key),
                "--client-ca",
                str(pki.paths(data_dir).ca_cert),
                "--log-level",
                log_level,
                *(
                    ["--encryption-key-file", s.extra["encryption_key_file"]]
                    if s.extra.get("encryption_key_file")
                    else []
                ),
            ],
            health=lambda: apiserver_ready(data_dir),
            description=f"API server on {url} ({'embedded store' if s.store == 'sqlite' else store_url})",
        )
    )
    if role_installed("ctl.scheduler.main"):
        comps.append(
            Component(
                "scheduler",
                [*CTL, "serve", "scheduler", "--kubeconfig", str(creds["scheduler"])],
                description="scheduler",
            )
        )
    grace = s.extra.get("node_monitor_grace_period")
    ctrl_args: list[str] = []
    agent_args: list[str] = []
    if grace:
        ctrl_args += ["--node-monitor-grace-period", str(grace)]
        # Agents renew their lease well within the grace period (kubelet: 10 s of 40 s).
        agent_args += ["--lease-seconds", str(min(10.0, float(grace) / 4))]
    if s.extra.get("pod_eviction_timeout") is not None:
        ctrl_args += ["--pod-eviction-timeout", str(s.extra["pod_eviction_timeout"])]
    if s.extra.get("restart_backoff"):
        agent_args += ["--backoff-initial", str(s.extra["restart_backoff"])]
    if role_installed("ctl.controllers.main"):
        comps.append(
            Component(
                "controllers",
                [*CTL, "serve", "controllers", "--kubeconfig", str(creds["controllers"]), *ctrl_args],
                description="controllers",
            )
        )
    if role_installed("ctl.network.main"):
        comps.append(
            Component(
                "netoperator",
                [*CTL, "serve", "netoperator", "--kubeconfig", str(creds["netoperator"])],
                description="network operator (VPCs, subnets, endpoints -> transit daemons)",
            )
        )
    if s.hosts and role_installed("agent.node.main"):
        from ctl.cluster import hosts as sim

        try:
            made = sim.ensure_hosts(data_dir, s.hosts)
        except sim.HostsError as e:
            raise SupervisorError(f"--hosts {s.hosts}: {e}") from None
        notes.extend(ensure_default_images(data_dir))
        comps.extend(sim.host_components(data_dir, made, CTL, creds["agent"], agent_args))
        notes.append(
            f"{len(made)} simulated hosts on substrate {made[0]['ip'].rsplit('.', 1)[0]}.0/24: "
            + ", ".join(h["ns"] for h in made)
            + " (VPC pod networking; 'centaurusctl down' removes them)"
        )
    elif role_installed("agent.node.main") and (s.runtime != "none" or s.hollow_nodes):
        runtime = s.runtime
        if runtime == "auto":
            ok, why = runc_usable()
            runtime = "runc" if ok else "hollow"
            if not ok:
                notes.append(f"runtime: hollow (simulated pods), because {why}")
        if runtime == "runc":
            notes.extend(ensure_default_images(data_dir, with_vm=bool(s.vm_runtime_uri)))
        if runtime != "none":
            argv = [
                *CTL,
                "serve",
                "agent",
                "--kubeconfig",
                str(creds["agent"]),
                "--node-name",
                s.node_name,
                "--runtime",
                runtime,
                "--data-dir",
                str(data_dir),
                "--endpoint-port",
                "-1",
                "--endpoint-socket",
                str(data_dir / "agent.sock"),
            ]
            if s.vm_runtime_uri:
                argv += ["--vm-runtime-uri", s.vm_runtime_uri]
            if runtime == "runc" and s.extra.get("network") == "vpc":
                itf = s.extra.get("substrate_itf") or default_route_interface() or ""
                sock = data_dir / "run" / f"transitd-{s.node_name}.sock"
                comps.append(
                    Component(
                        "transitd",
                        [*CTL, "serve", "transitd", "--host", s.node_name, "--itf", itf, "--socket", str(sock),
                         "--state-dir", str(data_dir / "transitd" / s.node_name), "--load", "auto"],
                        health=lambda: transitd_healthy(sock),
                        start_timeout=120.0,
                        description=f"transit daemon on {itf}",
                    )
                )  # fmt: skip
                argv += ["--transitd", str(sock), "--substrate-itf", itf]
            argv += agent_args
            comps.append(
                Component(
                    "agent", argv, settle=2.0, description=f"node agent {s.node_name} (runtime {runtime})"
                )
            )
            notes.append(
                f"node {s.node_name}: runtime {runtime}"
                + (f", VMs via {s.vm_runtime_uri}" if s.vm_runtime_uri else "")
            )
        if s.hollow_nodes:
            comps.append(
                Component(
                    "hollow-nodes",
                    [
                        *CTL,
                        "serve",
                        "agent",
                        "--kubeconfig",
                        str(creds["agent"]),
                        "--runtime",
                        "hollow",
                        "--hollow-nodes",
                        str(s.hollow_nodes),
                        "--node-name",
                        "hollow-node",
                        "--data-dir",
                        str(data_dir),
                        "--endpoint-port",
                        "-1",
                        "--endpoint-socket",
                        str(data_dir / "hollow-agent.sock"),
                        *agent_args,
                    ],
                    settle=2.0,
                    description=f"{s.hollow_nodes} hollow nodes",
                )
            )
    disabled = set(s.extra.get("disable") or [])
    unknown = disabled - {c.name for c in comps} - {"scheduler", "controllers", "agent", "hollow-nodes"}
    if unknown:
        notes.append(f"ignored unknown --disable entries: {', '.join(sorted(unknown))}")
    return [c for c in comps if c.name not in disabled or c.name in ("apiserver", "etcd")], notes


COMPONENT_USERS = ["scheduler", "controllers", "agent", "netoperator"]


def default_route_interface() -> str | None:
    """The interface of this machine's IPv4 default route (``/proc/net/route``)."""
    try:
        rows = [r.split() for r in Path("/proc/net/route").read_text().splitlines()[1:]]
    except OSError:
        return None
    return next((r[0] for r in rows if len(r) > 7 and r[1] == "00000000" and r[7] == "00000000"), None)


def transitd_healthy(sock: Path) -> bool:
    from ctl.transit.client import TransitClient

    return sock.exists() and TransitClient(str(sock), timeout=2).healthy()
