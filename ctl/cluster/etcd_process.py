"""Run a local, single-member etcd on loopback.

``centaurusctl init --store etcd`` and the store tests need a real etcd without any
system service: :class:`EtcdProcess` starts ``/usr/bin/etcd`` (Debian ``etcd-server``)
with its own data directory, client and peer listeners on 127.0.0.1 (free ports are
picked when none are given), waits until ``/health`` reports healthy, and stops it
cleanly (SIGTERM, then SIGKILL after a grace period). The data directory is kept, so
a later ``start()`` resumes the same cluster on the same ports.

Usage::

    proc = EtcdProcess("/var/lib/centaurus/etcd")
    url = proc.start()            # "http://127.0.0.1:PORT"
    store = EtcdStore(proc.endpoints)
    ...
    proc.stop()

The process output goes to ``log_path`` (default: ``<data_dir>.log``, next to the data
directory, because etcd warns about foreign files inside its data dir).
``die_with_parent=True`` asks the kernel to SIGKILL etcd if the starting process dies
(useful for tests); leave it off when etcd must outlive the CLI that started it.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

ETCD_BINARY = "/usr/bin/etcd"
_PR_SET_PDEATHSIG = 1


class EtcdProcessError(RuntimeError):
    """etcd could not be started or did not become healthy."""


def free_port() -> int:
    """A loopback TCP port that is free right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class EtcdProcess:
    """One local etcd member listening on 127.0.0.1 (see module docstring)."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        client_port: int = 0,
        peer_port: int = 0,
        *,
        name: str = "centaurus",
        binary: str = ETCD_BINARY,
        log_path: str | os.PathLike[str] | None = None,
        die_with_parent: bool = False,
        extra_args: list[str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self._want_client_port = client_port
        self._want_peer_port = peer_port
        self.client_port = client_port
        self.peer_port = peer_port
        self.name = name
        self.binary = binary
        self.log_path = Path(log_path) if log_path else self.data_dir.with_name(self.data_dir.name + ".log")
        self.die_with_parent = die_with_parent
        self.extra_args = list(extra_args or [])
        self._proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ addresses
    @property
    def url(self) -> str:
        """Client URL, e.g. ``http://127.0.0.1:2379``."""
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def endpoints(self) -> list[str]:
        """``host:port`` endpoints for :class:`ctl.store.etcd.EtcdStore`."""
        return [f"127.0.0.1:{self.client_port}"]

    @property
    def store_url(self) -> str:
        """URL for :func:`ctl.store.open_store`, e.g. ``etcd://127.0.0.1:2379``."""
        return "etcd://" + ",".join(self.endpoints)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ------------------------------------------------------------------ lifecycle
    def _command(self) -> list[str]:
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [
            self.binary,
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.url,
            "--advertise-client-urls", self.url,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"{self.name}={peer}",
            "--initial-cluster-state", "new",
            "--initial-cluster-token", f"centaurus-{self.name}",
            "--logger", "zap",
            "--log-outputs", "stderr",
            *self.extra_args,
        ]  # fmt: skip

    def start(self, timeout: float = 30.0) -> str:
        """Start etcd and wait until it is healthy; returns the client URL. Idempotent."""
        if self.running():
            return self.url
        if not os.access(self.binary, os.X_OK) and not shutil.which(self.binary):
            raise EtcdProcessError(f"etcd binary {self.binary} not found (apt-get install etcd-server)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)  # etcd insists on 0700
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        attempts = 1 if (self._want_client_port and self._want_peer_port) else 3
        last_error: EtcdProcessError | None = None
        for _ in range(attempts):
            self.client_port = self._want_client_port or free_port()
            self.peer_port = self._want_peer_port or free_port()
            while self.peer_port == self.client_port:
                self.peer_port = free_port()
            try:
                self._spawn_and_wait(timeout)
                # A restart reuses the same ports so saved endpoints stay valid.
                self._want_client_port, self._want_peer_port = self.client_port, self.peer_port
                return self.url
            except EtcdProcessError as e:  # e.g. a port taken between pick and bind: retry
                last_error = e
                self._kill()
        assert last_error is not None
        raise last_error

    def _spawn_and_wait(self, timeout: float) -> None:
        log = open(self.log_path, "ab")
        try:
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=_set_pdeathsig if self.die_with_parent else None,
                start_new_session=not self.die_with_parent,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EtcdProcessError(
                    f"etcd exited with status {self._proc.returncode} during startup: {self._log_tail()}"
                )
            if self.healthy():
                return
            time.sleep(0.05)
        raise EtcdProcessError(f"etcd not healthy on {self.url} after {timeout:.0f}s: {self._log_tail()}")

    def healthy(self, timeout: float = 1.0) -> bool:
        """True when ``GET /health`` answers ``{"health": "true"}``."""
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=timeout) as resp:
                return bool(json.loads(resp.read()).get("health") == "true")
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def _log_tail(self, lines: int = 5) -> str:
        try:
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return "(no log)"
        return " | ".join(tail) + f" (log: {self.log_path})"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Safe to call twice."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL immediately (crash simulation)."""
        self._kill()

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self._proc = None

    def __enter__(self) -> EtcdProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
