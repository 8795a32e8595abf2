"""``centaurusctl serve transitd`` as a process: start-up errors, readiness, a clean stop.

A start-up failure (bad host name, missing interface or namespace, a malformed ``--tcp``) is one
``error: transitd: ...`` line on stderr and exit code 1, before anything is compiled or
pinned. With root and bcc, a daemon on the loopback interface of a namespace made here
compiles the programs, answers /healthz on its socket, and on SIGTERM removes its socket and
exits 0 (leaving nothing attached: it was never asked to load).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from agent.testbed.dataplane import transitd_command
from tests.dataplane.conftest import need_dataplane
from tests.helpers import eventually_sync


def transitd(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*transitd_command(), *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.parametrize(
    "args,message",
    [
        (["--host", "bad/name", "--itf", "lo"], "invalid host name 'bad/name'"),
        (["--host", "ut-nosuch", "--itf", "nosuch0"], "no interface named 'nosuch0'"),
        (["--host", "ut-nosuch", "--itf", "lo", "--netns", "centaurus-ut-no-such-ns"], "No such file"),
        (["--host", "ut-nosuch", "--itf", "lo", "--tcp", "127.0.0.1:http"], "--tcp '127.0.0.1:http'"),
    ],
    ids=["host-name", "interface", "netns", "tcp"],
)
def test_startup_error_is_one_line_and_exit_1(args: list[str], message: str) -> None:
    cp = transitd(*args)
    assert cp.returncode == 1, cp.stderr
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: transitd: ") and message in lines[0], cp.stderr
    assert "Traceback" not in cp.stderr


@pytest.mark.bpf
@pytest.mark.root
def test_serves_until_sigterm_then_exits_0(tmp_path: Path) -> None:
    need_dataplane()
    from agent.testbed import netns
    from ctl.transit.client import TransitClient

    ns, host = f"cut-d{os.getpid()}", f"ut-d-{os.getpid()}"
    sock = tmp_path / "d.sock"
    netns.add_netns(ns)
    proc = None
    try:
        cmd = [*transitd_command(), "--host", host, "--itf", "lo", "--netns", ns]
        cmd += ["--socket", str(sock), "--state-dir", str(tmp_path / "state")]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        client = TransitClient(str(sock), timeout=5)

        def ready() -> bool:
            assert proc is not None and proc.poll() is None, proc and proc.communicate()
            return sock.exists() and client.healthy()

        eventually_sync(ready, 60, 0.1, "transitd ready")
        st = client.status()
        assert st["loaded"] is False and st["substrate"]["ip"] == "127.0.0.1"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert f"transitd {host} ready on {sock}" in out
        assert not sock.exists()
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)
        netns.del_netns(ns)
        shutil.rmtree(f"/sys/fs/bpf/centaurus/{host}", ignore_errors=True)
