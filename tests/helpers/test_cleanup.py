"""Nothing outlives an interrupted test run: a real pytest run is killed while it holds an API server.

The inner run uses the suite's own ``apiserver`` fixture and hooks (its conftest imports
``tests/conftest.py``), writes the server's pid and sleeps; the outer test then ends it with SIGTERM
(finalizers run, as for Ctrl-C), SIGINT, or SIGKILL (no finalizer can run: the parent-death signal
must do it) and checks that the API server process is gone. :func:`reap_children` is checked on a
leaked process group directly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster import ROOT
from tests.helpers import eventually_sync
from tests.helpers.cleanup import reap_children

pytestmark = pytest.mark.slow

INNER = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
PROBE = """
import os, time
from pathlib import Path

def test_hold(apiserver):
    Path(os.environ["PROBE_PID_FILE"]).write_text(str(apiserver.proc.pid))
    time.sleep(120)
"""


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may linger where pid 1 does not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_interrupted_run_leaves_no_server_behind(tmp_path: Path, sig: signal.Signals) -> None:
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (tmp_path / "test_probe.py").write_text(PROBE)
    pid_file = tmp_path / "apiserver.pid"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROBE_PID_FILE": str(pid_file)}
    inner = subprocess.Popen(
        # its own basetemp: the default one is shared with (and pruned by) every pytest run on the machine
        [*INNER, "--rootdir", str(tmp_path), "--basetemp", str(tmp_path / "inner"), "."],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        eventually_sync(pid_file.exists, 60, 0.1, "the inner run's API server to start")
        server = int(pid_file.read_text())
        assert running(server)
        inner.send_signal(sig)
        out, _ = inner.communicate(timeout=60)
        eventually_sync(
            lambda: not running(server), 10, 0.1, f"API server {server} to be gone after {sig.name}"
        )
        if sig != signal.SIGKILL:
            assert inner.returncode == 2, out.decode(errors="replace")[-2000:]  # interrupted, torn down
    finally:
        if inner.poll() is None:
            os.killpg(inner.pid, signal.SIGKILL)
            inner.wait()
        if pid_file.exists() and running(server := int(pid_file.read_text())):
            os.killpg(server, signal.SIGKILL)  # the failure is reported; do not leak the server too


def test_reap_children_kills_a_leaked_process_group() -> None:
    leaked = subprocess.Popen(["sh", "-c", "sleep 300 & exec sleep 301"], start_new_session=True)
    eventually_sync(
        lambda: len(Path(f"/proc/{leaked.pid}/task").parent.name) and _group(leaked.pid) >= 2, 10, 0.05
    )
    described = reap_children(grace=2)
    assert any(f"pid {leaked.pid}:" in d and "sleep 301" in d for d in described), described
    assert leaked.poll() is not None
    assert _group(leaked.pid) == 0, "the leaked process's background child survived"


def _group(pgid: int) -> int:
    """How many live processes are in process group ``pgid``."""
    n = 0
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                n += 1
    return n
