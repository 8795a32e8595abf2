"""``centaurusctl init``, ``status`` and ``down``: a one-machine cluster in one command.

``init`` writes the settings and credentials (:mod:`ctl.cluster.bootstrap`), starts
every component under the supervisor with a Rich progress display, and then either
stays in the foreground (Ctrl-C stops everything cleanly) or, with ``--detach``,
hands the supervisor to a background process and returns once the cluster is
healthy. Running ``init`` again on the same data directory resumes the same cluster
with its data. ``--demo`` applies ``manifests/demo.yaml`` and waits until its pods run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ctl.cli import output
from ctl.cli.errors import CLIError
from ctl.client.kubeconfig import default_data_dir
from ctl.cluster import bootstrap
from ctl.cluster.supervisor import Supervisor, SupervisorError
from ctl.types.meta import parse_duration
from ctl.util.private_files import secure_tree, set_private_umask
from ctl.util.procs import pid_alive, read_pid

console = Console(stderr=True)
REPO = Path(__file__).resolve().parent.parent.parent
DEMO = REPO / "manifests" / "demo.yaml"


def _settings(
    data_dir: Path,
    store: str | None,
    etcd_endpoints: str | None,
    port: int | None,
    runtime: str | None,
    hollow: int | None,
    vm_uri: str | None,
    bind: str | None,
) -> bootstrap.Settings:
    s = bootstrap.Settings.load(data_dir) or bootstrap.Settings()
    if etcd_endpoints:
        s.store, s.etcd_endpoints = "external", etcd_endpoints
    elif store:
        if store not in ("sqlite", "etcd"):
            raise CLIError(f"--store must be sqlite or etcd, got {store!r}")
        s.store = store
    if port is not None:
        s.port = port or bootstrap_free_port()
    if runtime:
        if runtime not in ("auto", "runc", "hollow", "none"):
            raise CLIError(f"--runtime must be auto, runc, hollow or none, got {runtime!r}")
        s.runtime = runtime
    if hollow is not None:
        s.hollow_nodes = hollow
    if vm_uri is not None:
        s.vm_runtime_uri = vm_uri
    if bind:
        s.bind_address = bind
    if s.store == "etcd" and "etcd_client_port" not in s.extra:
        s.extra["etcd_client_port"] = bootstrap_free_port()
        s.extra["etcd_peer_port"] = bootstrap_free_port()
    return s


def _existing_data_dir(data_dir: Path | None) -> Path:
    """The data dir of an existing cluster: ``--data-dir``/``$CENTAURUS_DATA_DIR``; else the
    directory of ``$KUBECONFIG`` when it is the kubeconfig ``init`` wrote there; else the default."""
    if data_dir is None:
        kc = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
        if kc and bootstrap.Settings.load(Path(kc).expanduser().resolve().parent) is not None:
            data_dir = Path(kc).expanduser().parent
    return (data_dir or default_data_dir()).expanduser().resolve()


def _timing_settings(
    s: bootstrap.Settings, grace: str | None, eviction: str | None, backoff: float | None
) -> None:
    """Node lifecycle and restart timings (kept in the settings, so a resumed cluster keeps them)."""
    for flag, value, key in (
        ("--node-monitor-grace-period", grace, "node_monitor_grace_period"),
        ("--pod-eviction-timeout", eviction, "pod_eviction_timeout"),
    ):
        if value is None:
            continue
        try:
            secs = parse_duration(value)
        except ValueError as e:
            raise CLIError(f"{flag}: {e}") from None
        if secs < 0 or (secs == 0 and key == "node_monitor_grace_period"):
            raise CLIError(f"{flag} must be positive")
        s.extra[key] = secs
    if backoff is not None:
        if backoff <= 0:
            raise CLIError("--restart-backoff must be positive")
        s.extra["restart_backoff"] = backoff


def bootstrap_free_port() -> int:
    import socket

    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return int(so.getsockname()[1])


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as so:
        so.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            so.bind((host, port))
            return True
        except OSError:
            return False


def _running_supervisor(data_dir: Path) -> int | None:
    pid = read_pid(data_dir / "run" / "supervisor.pid")
    return pid if pid and pid_alive(pid) else None


def _start(
    data_dir: Path, s: bootstrap.Settings, log_level: str, quiet: bool
) -> tuple[Supervisor, list[str]]:
    creds = bootstrap.ensure_credentials(data_dir, s, bootstrap.COMPONENT_USERS)
    comps, notes = bootstrap.components(data_dir, s, creds, log_level)
    sup = Supervisor(data_dir, comps)
    if quiet:
        sup.start_all()
        return sup, notes
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as prog:
        tasks: dict[str, Any] = {}

        def on(c: Any, state: str) -> None:
            if state == "starting":
                tasks[c.name] = prog.add_task(f"starting {c.description or c.name}", total=1)
            else:
                prog.update(
                    tasks[c.name], completed=1, description=f"[green]✓[/green] {c.description or c.name}"
                )

        sup.start_all(on)
    return sup, notes


def _print_next(data_dir: Path, s: bootstrap.Settings, notes: list[str], detached: bool) -> None:
    kc = data_dir / "kubeconfig"
    console.print(
        f"[bold green]Centaurus is running[/bold green] — API server {bootstrap.server_url(s)}, data in {data_dir}"
    )
    for n in notes:
        console.print(f"  • {n}")
    console.print(f"  client config: {kc}  (export KUBECONFIG={kc}; kubectl works with it too)")
    console.print("  next: centaurusctl get nodes · centaurusctl apply -f manifests/ · centaurusctl status")
    if detached:
        console.print(f"  stop with: centaurusctl down --data-dir {data_dir}")
    else:
        console.print(
            "  press Ctrl-C to stop the cluster (data is kept and pods keep running; init again resumes"
            " and adopts them, 'serve agent-cleanup' removes them)"
        )


async def _demo(data_dir: Path, timeout: float = 180.0) -> None:
    from ctl.cli import output
    from ctl.cli.apply_cmd import apply_one
    from ctl.cli.manifests import load_manifests
    from ctl.client import ApiError, Client
    from ctl.client.kubeconfig import load

    client = Client(load(data_dir / "kubeconfig"))
    try:
        for _, obj in load_manifests([str(DEMO)]):
            kind = obj["kind"].lower()
            verdict = await apply_one(client, obj, None, None, False)
            console.print(f"{kind}/{obj['metadata']['name']} {verdict}")
        want = 0
        for _, obj in load_manifests([str(DEMO)]):
            if obj["kind"] == "Deployment":
                want += int(obj["spec"].get("replicas", 1))
        deadline = time.monotonic() + timeout
        pods: list[dict[str, Any]] = []
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
        ) as prog:
            t = prog.add_task("waiting for the demo pods to run", total=want)
            while time.monotonic() < deadline:
                try:
                    pods = (await client.list("pods", "demo", label_selector="app=demo"))["items"]
                except ApiError:
                    pods = []
                running = [
                    p
                    for p in pods
                    if (p.get("status") or {}).get("phase") == "Running"
                    and not p["metadata"].get("deletionTimestamp")
                ]
                prog.update(
                    t, completed=len(running), description=f"demo pods running: {len(running)}/{want}"
                )
                if want and len(running) >= want:
                    break
                await asyncio.sleep(0.5)
        from ctl.types import kinds

        pk = kinds.resolve("pods")
        assert pk is not None
        print(output.table(pk, pods, wide=True, show_namespace=True))
        if not want or len([p for p in pods if (p.get("status") or {}).get("phase") == "Running"]) < want:
            console.print(
                "[yellow]the demo pods are not all running yet; see 'centaurusctl get pods -n demo' and 'centaurusctl status'[/yellow]"
            )
    finally:
        await client.close()


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        data_dir: Path = typer.Option(
            None, "--data-dir", envvar="CENTAURUS_DATA_DIR", help="default ~/.centaurus"
        ),
        store: str = typer.Option(
            None, "--store", help="sqlite (embedded, default) or etcd (starts a local etcd)"
        ),
        etcd_endpoints: str = typer.Option(
            None, "--etcd-endpoints", help="use an existing etcd: http://HOST:PORT[,...]"
        ),
        port: int = typer.Option(None, "--port", help="API server port (default 6443; 0 picks a free one)"),
        bind_address: str = typer.Option(None, "--bind-address"),
        runtime: str = typer.Option(None, "--runtime", help="auto|runc|hollow|none for the local node"),
        hollow_nodes: int = typer.Option(None, "--hollow-nodes", help="also run N simulated nodes"),
        vm_runtime_uri: str = typer.Option(
            None, "--vm-runtime-uri", help="libvirt URI for VM pods (qemu:///system, test:///default)"
        ),
        detach: bool = typer.Option(
            False, "--detach", "-d", help="run in the background (pid and log files in the data dir)"
        ),
        demo: bool = typer.Option(False, "--demo", help="apply the demo workload and wait until it runs"),
        log_level: str = typer.Option("INFO", "--log-level"),
        disable: str = typer.Option(
            None, "--disable", help="components not to run, comma-separated (e.g. scheduler,agent)"
        ),
        node_monitor_grace_period: str = typer.Option(
            None,
            "--node-monitor-grace-period",
            help="how long a node may miss lease renewals before it is NotReady (default 40s; agents renew at a quarter of it)",
        ),
        pod_eviction_timeout: str = typer.Option(
            None, "--pod-eviction-timeout", help="how long pods stay on an unreachable node (default 5m)"
        ),
        restart_backoff: float = typer.Option(
            None,
            "--restart-backoff",
            help="first crash-loop restart back-off of the node agents in seconds (default 10)",
        ),
        encryption_key_file: Path = typer.Option(
            None, "--encryption-key-file", help="EncryptionConfiguration: encrypt Secrets at rest (AES-GCM)"
        ),
        hosts: int = typer.Option(
            None,
            "--hosts",
            help="run N simulated hosts (network namespaces on one substrate bridge), each with its own transitd and node agent (VPC pods); 0: none",
        ),
        network: str = typer.Option(
            None,
            "--network",
            help="pod networking of this machine's node: bridge (cbr0, default) or vpc (a transitd on --substrate-itf)",
        ),
        substrate_itf: str = typer.Option(
            None,
            "--substrate-itf",
            help="substrate interface for --network vpc (default: the default route's)",
        ),
        supervise_child: bool = typer.Option(False, "--_supervise", hidden=True),
    ) -> None:
        """Bootstrap (or resume) a one-machine cluster and supervise it."""
        data_dir = (data_dir or default_data_dir()).expanduser().resolve()
        pid = _running_supervisor(data_dir)
        if pid and not supervise_child:
            raise CLIError(
                f"a cluster is already running from {data_dir} (supervisor pid {pid}); use 'centaurusctl status' or 'centaurusctl down'"
            )
        s = _settings(
            data_dir, store, etcd_endpoints, port, runtime, hollow_nodes, vm_runtime_uri, bind_address
        )
        if disable is not None:
            s.extra["disable"] = [d.strip() for d in disable.split(",") if d.strip()]
        _timing_settings(s, node_monitor_grace_period, pod_eviction_timeout, restart_backoff)
        _network_settings(s, hosts, network, substrate_itf)
        if s.store == "etcd" and not Path("/usr/bin/etcd").exists():
            raise CLIError(
                "--store etcd needs etcd-server (/usr/bin/etcd); run ./setup.sh or use the embedded store"
            )
        if not supervise_child and not _port_free(s.bind_address, s.port):
            raise CLIError(
                f"port {s.port} on {s.bind_address} is in use; pass --port N (or --port 0 for a free one)"
            )
        if encryption_key_file is not None:
            s.extra["encryption_key_file"] = str(encryption_key_file.expanduser().resolve())
        set_private_umask()  # what init and its children create is root's alone (ctl.util.private_files)
        secure_tree(data_dir)
        s.save(data_dir)
        if detach and not supervise_child:
            _detach(data_dir, demo)
            return
        if supervise_child:
            # Background supervisor: report readiness through files the parent polls.
            run_dir = data_dir / "run"
            run_dir.mkdir(parents=True, exist_ok=True)
            for f in ("ready", "failed"):
                (run_dir / f).unlink(missing_ok=True)
            (run_dir / "supervisor.pid").write_text(str(os.getpid()))
            try:
                sup, notes = _start(data_dir, s, log_level, quiet=True)
            except SupervisorError as e:
                (run_dir / "failed").write_text(str(e))
                (run_dir / "supervisor.pid").unlink(missing_ok=True)
                raise CLIError(str(e)) from None
            (run_dir / "ready").write_text("\n".join(notes))
            sup.supervise(lambda m: print(m, flush=True))
            _remove_hosts(data_dir)
            return
        try:
            sup, notes = _start(data_dir, s, log_level, quiet=False)
        except SupervisorError as e:
            raise CLIError(str(e)) from None
        (data_dir / "run" / "supervisor.pid").write_text(str(os.getpid()))
        _print_next(data_dir, s, notes, detached=False)
        if demo:
            try:
                asyncio.run(_demo_hosts(data_dir) if s.hosts else _demo(data_dir))
            except Exception as e:  # keep the cluster up; report the demo failure in one line
                console.print(f"[red]demo failed:[/red] {e}")
            except KeyboardInterrupt:
                sup.stop_all()
                _remove_hosts(data_dir)
                return
        sup.supervise(lambda m: console.print(f"[dim]{m}[/dim]"))
        _remove_hosts(data_dir)

    @app.command("status")
    def status(
        data_dir: Path = typer.Option(None, "--data-dir", envvar="CENTAURUS_DATA_DIR"),
        out: str = output.output_option(output.DATA_FORMATS),
    ) -> None:
        """Report the health of every component of the local cluster."""
        output.check_format(out, output.DATA_FORMATS)
        data_dir = _existing_data_dir(data_dir)
        s = bootstrap.Settings.load(data_dir)
        if s is None:
            raise CLIError(f"no cluster in {data_dir}: run 'centaurusctl init' first")
        rows: list[dict[str, Any]] = []
        sup_pid = _running_supervisor(data_dir)
        rows.append(
            {
                "component": "supervisor",
                "pid": sup_pid,
                "state": "running" if sup_pid else "stopped",
                "detail": "",
            }
        )
        for pf in sorted((data_dir / "run").glob("*.pid")):
            name = pf.stem
            if name == "supervisor":
                continue
            pid = read_pid(pf)
            alive = bool(pid and pid_alive(pid))
            detail = ""
            if name == "apiserver" and alive:
                ok = bootstrap.apiserver_ready(data_dir)
                detail = "ready" if ok else "not ready"
            rows.append(
                {"component": name, "pid": pid, "state": "running" if alive else "dead", "detail": detail}
            )
        nodes = _node_summary(data_dir) if sup_pid else ""
        healthy = bool(sup_pid) and all(r["state"] == "running" for r in rows)
        if out in ("json", "yaml"):
            doc = {
                "dataDir": str(data_dir),
                "server": bootstrap.server_url(s),
                "healthy": healthy,
                "components": rows,
                "nodes": nodes,
            }
            print(output.dump(doc, out), end="")
        else:
            print(
                output.plain_table(
                    ["COMPONENT", "PID", "STATE", "DETAIL"],
                    [[r["component"], str(r["pid"] or "-"), r["state"], r["detail"]] for r in rows],
                )
            )
            print(f"\nAPI server: {bootstrap.server_url(s)}   store: {s.store}   data: {data_dir}")
            if nodes:
                print(f"nodes: {nodes}")
        if not healthy:
            raise typer.Exit(1)

    @app.command("down")
    def down(
        data_dir: Path = typer.Option(None, "--data-dir", envvar="CENTAURUS_DATA_DIR"),
        timeout: float = typer.Option(60, "--timeout"),
        kill_pods: bool = typer.Option(
            False, "--kill-pods", help="also stop the pods' containers and VMs (they keep running otherwise)"
        ),
    ) -> None:
        """Stop a detached cluster (data is kept; running pods are adopted by the next init)."""
        data_dir = _existing_data_dir(data_dir)
        pid = _running_supervisor(data_dir)
        if not pid:
            raise CLIError(f"no running cluster in {data_dir}")
        os.kill(pid, 15)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.1)
        if pid_alive(pid):
            raise CLIError(f"the supervisor (pid {pid}) did not stop within {timeout:.0f}s")
        console.print(f"cluster in {data_dir} stopped")
        _remove_hosts(data_dir)  # normally done by the supervisor already
        if kill_pods:
            _kill_pods(data_dir)


def _network_settings(s: bootstrap.Settings, hosts: int | None, network: str | None, itf: str | None) -> None:
    if hosts is not None:
        if not 0 <= hosts <= 32:
            raise CLIError(f"--hosts must be between 0 and 32, got {hosts}")
        if hosts and os.geteuid() != 0:
            raise CLIError("--hosts needs root (network namespaces, XDP programs, runc)")
        s.hosts = hosts
    if network is not None:
        if network not in ("bridge", "vpc"):
            raise CLIError(f"--network must be bridge or vpc, got {network!r}")
        s.extra["network"] = network
    if itf is not None:
        s.extra["substrate_itf"] = itf


def _remove_hosts(data_dir: Path) -> None:
    """Remove the simulated hosts of ``init --hosts`` (their pods, namespaces, links, pins)."""
    from ctl.cluster import hosts as sim

    try:
        done = sim.remove_hosts(data_dir, bootstrap.CTL)
    except (sim.HostsError, OSError, subprocess.SubprocessError) as e:
        console.print(f"[red]removing the simulated hosts failed:[/red] {e}")
        return
    if done:
        console.print(done)


async def _demo_hosts(data_dir: Path) -> None:
    import json

    from ctl.cluster import hosts as sim

    made = json.loads(sim.record_path(data_dir).read_text())["hosts"]
    if not await sim.demo(data_dir / "kubeconfig", made, console):
        console.print("[yellow]not every demo pod is running yet; see 'centaurusctl get pods -A'[/yellow]")


def _kill_pods(data_dir: Path) -> None:
    s = bootstrap.Settings.load(data_dir)
    if s is None:
        return
    argv = [*bootstrap.CTL, "serve", "agent-cleanup", "--data-dir", str(data_dir), "--node-name", s.node_name]
    if s.vm_runtime_uri:
        argv += ["--vm-runtime-uri", s.vm_runtime_uri]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    last = (r.stdout.strip().splitlines() or [""])[-1]
    if r.returncode != 0:
        raise CLIError((r.stderr.strip().splitlines() or ["pod cleanup failed"])[-1])
    console.print(last)


def _node_summary(data_dir: Path) -> str:
    try:
        from ctl.client import SyncClient

        with SyncClient.from_kubeconfig(str(data_dir / "kubeconfig")) as c:
            items = c.list("nodes")["items"]
    except Exception:
        return ""
    return node_summary(items)


def node_summary(nodes: Any) -> str:
    """``READY/TOTAL ready`` for a node list; a malformed node counts as not ready, never a crash."""
    if not isinstance(nodes, list):
        return ""

    def ready(n: Any) -> bool:
        st = n.get("status") if isinstance(n, dict) else None
        conds = st.get("conditions") if isinstance(st, dict) else None
        return isinstance(conds, list) and any(
            isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True" for c in conds
        )

    return f"{sum(1 for n in nodes if ready(n))}/{len(nodes)} ready"


def _detach(data_dir: Path, demo: bool) -> None:
    run_dir = data_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    for f in ("ready", "failed"):
        (run_dir / f).unlink(missing_ok=True)
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "logs" / "supervisor.log", "ab")
    argv = [sys.executable, "-m", "ctl", "init", "--data-dir", str(data_dir), "--_supervise"]
    proc = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as prog:
        prog.add_task("starting the cluster in the background", total=None)
        while True:
            if (run_dir / "ready").exists():
                break
            if (run_dir / "failed").exists():
                raise CLIError((run_dir / "failed").read_text().strip())
            if proc.poll() is not None:
                raise CLIError(
                    f"the supervisor exited with code {proc.returncode}; see {data_dir / 'logs' / 'supervisor.log'}"
                )
            time.sleep(0.1)
    s = bootstrap.Settings.load(data_dir)
    assert s is not None
    notes = [n for n in (run_dir / "ready").read_text().splitlines() if n]
    _print_next(data_dir, s, notes, detached=True)
    console.print(f"  supervisor pid {proc.pid}, logs in {data_dir / 'logs'}")
    if demo:
        asyncio.run(_demo_hosts(data_dir) if s.hosts else _demo(data_dir))
