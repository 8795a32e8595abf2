"""Fixtures for the streaming tests: one ``init``-started cluster with the runc agent and its pods.

``streams`` is an :class:`~tests.e2e.conftest.E2ECluster` (real API server, scheduler,
controllers and runc node agent, checked for leftovers at the end) with three pods in
``default``: ``two`` (containers ``c`` and ``d`` that sleep), ``att`` (``sh`` started with
``stdin`` and ``tty``, for attach) and ``web`` (busybox ``httpd`` on 8080, for port-forward).
:func:`kubectl` runs the real kubectl against it; :func:`in_pty` runs a command under a
pseudo-terminal and types into it, the way a user at a terminal would.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import E2ECluster, cluster_factory, is_ready, require_root_runc, wait_for

__all__ = ["cluster_factory"]

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
needs_kubectl = pytest.mark.skipif(not os.access(KUBECTL, os.X_OK), reason="kubectl is not installed")
LOOP = "trap 'exit 0' TERM; while true; do sleep 1; done"


def _pod(name: str, *containers: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": list(containers), "terminationGracePeriodSeconds": 1},
    }


PODS = [
    _pod(
        "two",
        {"name": "c", "image": "busybox:latest", "command": ["sh", "-c", LOOP]},
        {"name": "d", "image": "busybox:latest", "command": ["sh", "-c", LOOP]},
    ),
    _pod("att", {"name": "c", "image": "busybox:latest", "command": ["sh"], "stdin": True, "tty": True}),
    _pod(
        "web",
        {
            "name": "c",
            "image": "busybox:latest",
            "command": [
                "sh",
                "-c",
                "mkdir -p /www; echo hello-pf > /www/index.html; exec httpd -f -p 8080 -h /www",
            ],
        },
    ),
]


@pytest.fixture(scope="module")
def streams(cluster_factory: Callable[..., E2ECluster]) -> Iterator[E2ECluster]:
    require_root_runc()
    c = cluster_factory(["--runtime", "runc"])
    c.apply(*PODS)
    for p in PODS:
        name = p["metadata"]["name"]
        wait_for(
            lambda n=name: is_ready(c.pod("default", n) or {}),
            60,
            f"pod {name} Ready",
            diag=lambda: c.describe_pods("default"),
        )
    yield c


def kubectl(
    c: E2ECluster, *args: str, env: dict[str, str] | None = None, timeout: float = 60, **kw: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(c.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        **kw,
    )


class Pty:
    """A process on a pseudo-terminal: type into it, read what it shows, resize it."""

    def __init__(self, argv: list[str], env: dict[str, str], cols: int = 100, rows: int = 30) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the command
            os.execvpe(argv[0], argv, env)
        self.resize(cols, rows)
        self.out = b""

    def resize(self, cols: int, rows: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def read_until(self, needle: bytes, timeout: float = 15) -> bytes:
        end = time.monotonic() + timeout
        while needle not in self.out and time.monotonic() < end:
            r, _, _ = select.select([self.fd], [], [], 0.1)
            if r:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                self.out += data
        assert needle in self.out, f"{needle!r} never appeared; the terminal showed {self.out[-2000:]!r}"
        return self.out

    def type(self, text: bytes) -> None:
        os.write(self.fd, text)

    def wait(self, timeout: float = 20) -> int:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with_data, _, _ = select.select([self.fd], [], [], 0.1)
            if with_data:
                try:
                    self.out += os.read(self.fd, 4096)
                except OSError:
                    pass
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(st)
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)
        os.close(self.fd)
        raise AssertionError(f"the command did not end; the terminal showed {self.out[-2000:]!r}")
