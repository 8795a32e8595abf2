"""Test harness: real control-plane processes on loopback for tests.

``ApiServerProcess`` starts ``centaurusctl serve apiserver`` as a child process on a
free loopback port with its own data directory (anonymous callers are the system
administrator unless ``anonymous=False``), waits until ``/readyz`` answers and stops
it on exit. ``RoleProcess`` runs any other role the same way. Tests use these
through the fixtures in ``tests/conftest.py``.

Nothing outlives the test run: each role is its own process group (``start_new_session``), so
:meth:`RoleProcess.stop` can kill the whole group when SIGTERM is not enough; when started from the
main thread it runs under ``setpriv --pdeathsig SIGKILL``, so the kernel kills it if pytest itself
is killed (-9, OOM) before any finalizer could run; and :func:`tests.helpers.cleanup.reap_children`
(run by ``tests/conftest.py`` at session end and at exit) kills whatever a fixture leaked.
:meth:`RoleProcess.wait_http` waits for a health endpoint, failing at once if the process exits.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

from ctl.client import Client, ClientConfig, SyncClient
from tests.helpers.wait import eventually_sync

ROOT = Path(__file__).resolve().parent.parent
CTL = [sys.executable, "-m", "ctl"]


SETPRIV = shutil.which("setpriv")


def die_with_parent(argv: list[str]) -> list[str]:
    """``argv`` prefixed so that the kernel SIGKILLs it when this process dies.

    Only from the main thread: the parent-death signal fires when the *thread* that forked exits, and
    worker threads (``asyncio.to_thread``) end long before the test run does.
    """
    if SETPRIV and threading.current_thread() is threading.main_thread():
        return [SETPRIV, "--pdeathsig", "SIGKILL", "--", *argv]
    return argv


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
            die_with_parent([*CTL, "serve", self.role, *self.args]),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=ROOT,
            start_new_session=True,
        )
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_group()
            except BaseException:  # interrupted while waiting (Ctrl-C): do not leave it running
                self._kill_group()
                raise
        if getattr(self, "_log", None):
            self._log.close()

    def _kill_group(self) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_http(self, url: str, timeout: float = 20.0, context: ssl.SSLContext | None = None) -> None:
        """Wait until ``url`` answers 200; raise at once (with the log tail) if the process exits."""

        def answers() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.role} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            with urllib.request.urlopen(url, timeout=1, context=context) as r:
                return bool(r.status == 200)

        try:
            eventually_sync(answers, timeout, 0.05, f"{url} to answer", ignore=(OSError,))
        except AssertionError as e:
            raise RuntimeError(f"{self.role} not ready: {e}\n{self.log()[-3000:]}") from None


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
        try:
            self.wait_ready(timeout)
        except BaseException:  # not ready, or interrupted: a server nobody will stop must not stay
            self.stop(timeout=5)
            raise
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        self.wait_http(self.url + "/readyz", timeout)

    def config(self, token: str | None = None) -> ClientConfig:
        return ClientConfig(self.url, token=token)

    def client(self, token: str | None = None) -> Client:
        return Client(self.config(token))

    def sync_client(self, token: str | None = None) -> SyncClient:
        return SyncClient(self.config(token))
