"""End-to-end harness: a whole cluster started the way a user starts it, and checked for leaks.

:class:`E2ECluster` runs ``python -m ctl init --detach --port 0 --data-dir DIR [flags]`` (the
supervisor then runs the real API server, scheduler, controllers, node agent with runc and, when
asked, hollow nodes and the libvirt VM runtime), drives it with the CLI as subprocesses
(``KUBECONFIG=DIR/kubeconfig``) and polls it with the client library. A background watch records
the uid of every pod the cluster ever had, so :meth:`E2ECluster.teardown` can prove that deleting
the workloads and running ``down`` leaves no runc container, pod network namespace or libvirt
domain behind. Each test module starts one cluster (module-scoped fixture) and ends with a test
that calls ``teardown`` and asserts the machine is clean; the fixture's finaliser only cleans up
by force (``serve agent-cleanup``) if a test failed before that.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from ctl.client import SyncClient
from ctl.client.kubeconfig import load as load_kubeconfig
from tests.helpers import eventually_sync

ROOT = Path(__file__).resolve().parent.parent.parent
CTL = [sys.executable, "-m", "ctl"]
T = TypeVar("T")


def require_root_runc() -> None:
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests run real containers: they need root")
    runc = shutil.which("runc")
    if not runc:
        pytest.skip("runc is not installed (./setup.sh installs it)")
    try:
        subprocess.run([runc, "--version"], check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"runc does not run here: {e}")


def wait_for(
    fn: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.25,
    diag: Callable[[], str] | None = None,
) -> T:
    """Poll ``fn`` until it returns something truthy; fail with ``what`` (and diagnostics) after ``timeout``."""
    return eventually_sync(fn, timeout, interval, what, diag=diag)  # type: ignore[return-value]


def condition(obj: dict[str, Any], typ: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == typ:
            return dict(c)
    return None


def is_ready(pod: dict[str, Any]) -> bool:
    c = condition(pod, "Ready")
    return (
        (pod.get("status") or {}).get("phase") == "Running"
        and c is not None
        and c.get("status") == "True"
        and not pod["metadata"].get("deletionTimestamp")
    )


def netns_names() -> set[str]:
    try:
        return set(os.listdir("/run/netns"))
    except FileNotFoundError:
        return set()


class E2ECluster:
    """One detached cluster in its own data directory."""

    def __init__(self, data_dir: Path, flags: list[str]) -> None:
        self.data_dir = data_dir
        self.flags = flags
        self.kubeconfig = data_dir / "kubeconfig"
        self.env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "COLUMNS": "200", "NO_COLOR": "1"}
        self.env.pop("CENTAURUS_DATA_DIR", None)
        self.init_output = ""
        self.client: SyncClient | None = None
        self.node = ""
        self.pod_uids: set[str] = set()
        self._watch_stop = threading.Event()
        self._watch_thread: threading.Thread | None = None
        self.down_done = False

    # ------------------------------------------------------------------ lifecycle
    def start(self, extra: list[str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        t0 = time.monotonic()
        r = subprocess.run(
            [
                *CTL,
                "init",
                "--detach",
                "--port",
                "0",
                "--data-dir",
                str(self.data_dir),
                *self.flags,
                *(extra or []),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            cwd=ROOT,
        )
        self.init_output = r.stdout + r.stderr
        if r.returncode != 0:
            raise RuntimeError(
                f"centaurusctl init failed ({r.returncode}):\n{self.init_output[-3000:]}\n{self.log('supervisor')[-3000:]}"
            )
        self.startup_seconds = time.monotonic() - t0
        settings = yaml.safe_load((self.data_dir / "cluster.yaml").read_text())
        self.node = settings["node_name"]
        self.client = SyncClient(load_kubeconfig(str(self.kubeconfig)))
        self._watch_thread = threading.Thread(target=self._record_pods, daemon=True, name="e2e-pod-uids")
        self._watch_thread.start()
        return r

    def _record_pods(self) -> None:
        """Remember every pod uid (for the leak check), from a list plus a watch."""
        assert self.client is not None
        while not self._watch_stop.is_set():
            try:
                lst = self.client.list("pods")
                self.pod_uids.update(p["metadata"]["uid"] for p in lst["items"])
                rv = lst["metadata"].get("resourceVersion")
                for _typ, obj in self.client.watch("pods", resource_version=rv, timeout_seconds=5):
                    uid = (obj.get("metadata") or {}).get("uid")
                    if uid:
                        self.pod_uids.add(uid)
                    if self._watch_stop.is_set():
                        return
            except Exception:  # noqa: BLE001 - reconnect (410, apiserver restart) and keep recording
                if self._watch_stop.wait(0.5):
                    return

    def log(self, name: str) -> str:
        try:
            return (self.data_dir / "logs" / f"{name}.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def pid(self, name: str) -> int | None:
        try:
            return int((self.data_dir / "run" / f"{name}.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    # ------------------------------------------------------------------ CLI
    def ctl(
        self, *args: str, check: bool = True, timeout: float = 120, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [*CTL, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            cwd=ROOT,
            input=input,
        )
        if check and r.returncode != 0:
            pytest.fail(f"centaurusctl {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    def apply(self, *objs: dict[str, Any]) -> str:
        """``centaurusctl apply -f`` of the given objects (written to a temporary manifest)."""
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=self.data_dir, delete=False) as f:
            yaml.safe_dump_all(list(objs), f)
        try:
            return self.ctl("apply", "-f", f.name).stdout
        finally:
            os.unlink(f.name)

    # ------------------------------------------------------------------ API polling
    @property
    def api(self) -> SyncClient:
        assert self.client is not None
        return self.client

    def pods(self, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
        return list(self.api.list("pods", namespace, label_selector=selector)["items"])

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        from ctl.client import ApiError

        try:
            return dict(self.api.get("pods", name, namespace))
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        items = self.api.list("events", namespace)["items"]
        return [e for e in items if (e.get("involvedObject") or {}).get("name") == name]

    def describe_pods(self, namespace: str) -> str:
        return self.ctl("get", "pods", "-n", namespace, "-o", "wide", check=False).stdout

    def runc_root(self) -> Path:
        return self.data_dir / "agent" / self.node / "runc"

    def runc_containers(self) -> dict[str, str]:
        """id -> status of the containers runc has under this cluster's agent."""
        root = self.runc_root()
        if not root.exists():
            return {}
        r = subprocess.run(
            ["runc", "--root", str(root), "list", "--format", "json"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if r.returncode != 0:
            return {}
        return {c["id"]: c["status"] for c in json.loads(r.stdout or "null") or []}

    def pod_netns(self) -> set[str]:
        mine = {"cpod-" + u.replace("-", "")[:12] for u in self.pod_uids}
        return netns_names() & mine

    def libvirt_domains(self) -> list[str]:
        """Names of libvirt domains (qemu:///system) that belong to pods of this cluster."""
        try:
            import libvirt
        except ImportError:
            return []
        libvirt.registerErrorHandler(lambda _c, _e: None, None)
        try:
            conn = libvirt.open("qemu:///system")
        except libvirt.libvirtError:
            return []
        try:
            out = []
            for d in conn.listAllDomains(0):
                xml = d.XMLDesc(0)
                if any(u in xml for u in self.pod_uids):
                    out.append(d.name())
            return out
        finally:
            conn.close()

    def leftovers(self) -> dict[str, Any]:
        left: dict[str, Any] = {}
        if c := self.runc_containers():
            left["runc containers"] = c
        if n := self.pod_netns():
            left["pod netns"] = sorted(n)
        if d := self.libvirt_domains():
            left["libvirt domains"] = d
        vms = self.data_dir / "vms"
        if vms.exists() and (v := [p.name for p in vms.iterdir() if p.is_dir()]):
            left["vm dirs"] = v
        return left

    # ------------------------------------------------------------------ teardown
    def delete_workloads(self, timeout: float = 90) -> None:
        """Delete every user namespace's objects, wait until no pod is left and the node is clean."""
        system = {"default", "kube-system", "kube-public", "kube-node-lease"}
        for ns in self.api.list("namespaces")["items"]:
            name = ns["metadata"]["name"]
            if name not in system:
                self.ctl("delete", "namespace", name, "--ignore-not-found", check=False)
        for kind in ("deployments", "replicasets"):
            for o in self.api.list(kind, "default")["items"]:
                self.ctl(
                    "delete", kind, o["metadata"]["name"], "-n", "default", "--ignore-not-found", check=False
                )
        for p in self.api.list("pods", "default")["items"]:
            self.ctl(
                "delete", "pod", p["metadata"]["name"], "-n", "default", "--ignore-not-found", check=False
            )
        wait_for(
            lambda: not self.api.list("pods")["items"],
            timeout,
            "every pod to be deleted",
            interval=0.5,
            diag=lambda: self.ctl("get", "pods", "-A", "-o", "wide", check=False).stdout,
        )
        wait_for(
            lambda: not self.leftovers(),
            30,
            "the agent to remove every container, pod netns and VM domain",
            interval=0.5,
            diag=lambda: repr(self.leftovers()),
        )

    def down(self) -> subprocess.CompletedProcess[str]:
        self._watch_stop.set()
        if self.client is not None:
            try:
                self.client.close()
            except Exception:  # noqa: BLE001
                pass
            self.client = None
        r = subprocess.run(
            [*CTL, "down", "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=90,
            env=self.env,
            cwd=ROOT,
        )
        self.down_done = True
        return r

    def role_processes(self) -> list[int]:
        """Processes still running from this cluster's data directory."""
        out = []
        needle = str(self.data_dir).encode()
        for p in Path("/proc").iterdir():
            if not p.name.isdigit() or int(p.name) == os.getpid():
                continue
            try:
                cmd = (p / "cmdline").read_bytes()
            except OSError:
                continue
            if needle in cmd and b"ctl" in cmd:
                out.append(int(p.name))
        return out

    def force_cleanup(self) -> None:
        """Last resort after a failed test: stop everything and remove whatever pods were left."""
        if not self.down_done:
            self.down()
        for pid in self.role_processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        settings = (
            yaml.safe_load((self.data_dir / "cluster.yaml").read_text())
            if (self.data_dir / "cluster.yaml").exists()
            else {}
        )
        argv = [
            *CTL,
            "serve",
            "agent-cleanup",
            "--data-dir",
            str(self.data_dir),
            "--node-name",
            self.node or settings.get("node_name", ""),
        ]
        if settings.get("vm_runtime_uri"):
            argv += ["--vm-runtime-uri", settings["vm_runtime_uri"]]
        subprocess.run(argv, capture_output=True, timeout=120, cwd=ROOT)
        for c in self.runc_containers():
            subprocess.run(
                ["runc", "--root", str(self.runc_root()), "delete", "-f", c], capture_output=True, timeout=30
            )
        for ns in self.pod_netns():
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=30)

    def teardown(self) -> None:
        """What the last test of each module checks: delete, ``down``, nothing left behind."""
        self.delete_workloads()
        uids = set(self.pod_uids)
        r = self.down()
        assert r.returncode == 0, r.stdout + r.stderr
        assert "stopped" in r.stdout + r.stderr
        assert not self.role_processes(), "processes of the cluster still running after down"
        self.pod_uids = uids
        assert not self.leftovers(), f"left behind after down: {self.leftovers()}"


@pytest.fixture(scope="module")
def cluster_factory() -> Iterator[Callable[..., E2ECluster]]:
    # Not tmp_path_factory: pytest prunes old basetemp dirs, and other pytest sessions on the same
    # machine could remove a data directory while its cluster is running.
    made: list[E2ECluster] = []

    def make(flags: list[str], extra: list[str] | None = None) -> E2ECluster:
        d = Path(tempfile.mkdtemp(prefix="centaurus-e2e-"))
        os.chmod(d, 0o755)  # libvirt's qemu user reads the VM images and console files in here
        c = E2ECluster(d, flags)
        made.append(c)
        try:
            c.start(extra)
        except Exception as e:
            c.force_cleanup()
            pytest.fail(str(e))
        return c

    yield make
    for c in made:
        if not c.down_done or c.leftovers():
            c.force_cleanup()
        if not c.leftovers() and not c.role_processes():
            shutil.rmtree(c.data_dir, ignore_errors=True)
