"""Test harness: real control-plane processes on loopback for tests.

``ApiServerProcess`` starts ``centaurusctl serve apiserver`` as a child process on a
free loopback port with its own data directory (anonymous callers are the system
administrator unless ``anonymous=False``), waits until ``/readyz`` answers and stops
it on exit. ``RoleProcess`` runs any other role the same way. Tests use these
through the fixtures in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ctl.client import Client, ClientConfig, SyncClient

ROOT = Path(__file__).resolve().parent.parent
CTL = [sys.executable, "-m", "ctl"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RoleProcess:
    def __init__(self, role: str, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.role = role
        self.args = args
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RoleProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [*CTL, "serve", self.role, *self.args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=ROOT,
            start_new_session=True,
        )
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class ApiServerProcess(RoleProcess):
    def __init__(
        self,
        data_dir: Path,
        store: str = "",
        anonymous: bool = True,
        port: int = 0,
        extra: list[str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir
        self.socket = str(data_dir / "apiserver.sock")
        args = [
            "--data-dir",
            str(data_dir),
            "--port",
            str(self.port),
            "--unix-socket",
            self.socket,
            "--insecure-http",
        ]
        if store:
            args += ["--store", store]
        if anonymous:
            args.append("--anonymous")
        super().__init__("apiserver", args + (extra or []), data_dir / "apiserver.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> ApiServerProcess:
        super().start()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"apiserver exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"apiserver not ready after {timeout}s:\n{self.log()[-3000:]}")

    def config(self, token: str | None = None) -> ClientConfig:
        return ClientConfig(self.url, token=token)

    def client(self, token: str | None = None) -> Client:
        return Client(self.config(token))

    def sync_client(self, token: str | None = None) -> SyncClient:
        return SyncClient(self.config(token))
