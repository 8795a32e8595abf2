"""The process supervisor behind ``centaurusctl init``.

Each platform role runs as its own child process (the GIL would make one process a
bottleneck). The supervisor starts the components in order, waits for each to be
healthy before starting the ones that depend on it, restarts a component that dies
(with back-off, so a crash loop does not spin), and on SIGINT/SIGTERM stops them all
in reverse order, SIGTERM first and SIGKILL after a grace period.

State lives under the data directory: ``logs/NAME.log`` per component,
``run/NAME.pid`` per component and ``run/supervisor.pid`` for the supervisor itself,
which ``centaurusctl status`` and ``centaurusctl down`` read.

Adding a role to the cluster is adding a :class:`Component` to the list ``init``
builds; nothing here knows about specific roles.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HealthCheck = Callable[[], bool]


@dataclass
class Component:
    name: str
    argv: list[str]
    health: HealthCheck | None = None  # None: healthy once it has stayed up for `settle` seconds
    settle: float = 1.0
    env: dict[str, str] = field(default_factory=dict)
    start_timeout: float = 60.0
    stop_timeout: float = 15.0
    description: str = ""
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0


class SupervisorError(Exception):
    pass


class Supervisor:
    def __init__(self, data_dir: Path, components: list[Component]) -> None:
        self.data_dir = data_dir
        self.components = components
        self.log_dir = data_dir / "logs"
        self.run_dir = data_dir / "run"
        self._stopping = False

    # ------------------------------------------------------------------ process control
    def _spawn(self, c: Component) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{c.name}.log", "ab")
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {' '.join(c.argv)}\n".encode())
        log.flush()
        c.proc = subprocess.Popen(
            c.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **c.env},
            start_new_session=True,
        )
        log.close()
        c.started_at = time.monotonic()
        (self.run_dir / f"{c.name}.pid").write_text(str(c.proc.pid))

    def log_tail(self, c: Component, lines: int = 15) -> str:
        try:
            text = (self.log_dir / f"{c.name}.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def _healthy(self, c: Component) -> bool:
        if c.proc is None or c.proc.poll() is not None:
            return False
        if c.health is None:
            return time.monotonic() - c.started_at >= c.settle
        try:
            return c.health()
        except Exception:
            return False

    def start_one(self, c: Component, progress: Callable[[str], None] | None = None) -> None:
        self._spawn(c)
        deadline = time.monotonic() + c.start_timeout
        while time.monotonic() < deadline:
            if c.proc is not None and c.proc.poll() is not None:
                raise SupervisorError(
                    f"{c.name} exited with code {c.proc.returncode} while starting; last log lines "
                    f"({self.log_dir / (c.name + '.log')}):\n{self.log_tail(c)}"
                )
            if self._healthy(c):
                return
            time.sleep(0.1)
        raise SupervisorError(
            f"{c.name} did not become healthy within {c.start_timeout:.0f}s; see {self.log_dir / (c.name + '.log')}:\n{self.log_tail(c)}"
        )

    def start_all(self, progress: Callable[[Component, str], None] | None = None) -> None:
        for c in self.components:
            if progress:
                progress(c, "starting")
            try:
                self.start_one(c)
            except SupervisorError:
                self.stop_all()
                raise
            if progress:
                progress(c, "healthy")

    def stop_one(self, c: Component) -> None:
        p = c.proc
        if p is None:
            return
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(c.stop_timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        try:
            (self.run_dir / f"{c.name}.pid").unlink()
        except FileNotFoundError:
            pass

    def stop_all(self) -> None:
        self._stopping = True
        for c in reversed(self.components):
            self.stop_one(c)

    def supervise(self, on_event: Callable[[str], None] | None = None) -> None:
        """Block: restart crashed components until SIGINT/SIGTERM, then stop everything."""
        stop = {"flag": False}

        def handler(signum: int, frame: object) -> None:
            stop["flag"] = True

        old_int = signal.signal(signal.SIGINT, handler)
        old_term = signal.signal(signal.SIGTERM, handler)
        (self.run_dir / "supervisor.pid").write_text(str(os.getpid()))
        try:
            while not stop["flag"]:
                for c in self.components:
                    if c.proc is not None and c.proc.poll() is not None and not stop["flag"]:
                        rc = c.proc.returncode
                        delay = (
                            min(2 ** min(c.restarts, 5), 30) if time.monotonic() - c.started_at < 60 else 1
                        )
                        if on_event:
                            on_event(
                                f"{c.name} exited with code {rc}; restarting in {delay}s (restart #{c.restarts + 1})"
                            )
                        t_end = time.monotonic() + delay
                        while time.monotonic() < t_end and not stop["flag"]:
                            time.sleep(0.1)
                        if stop["flag"]:
                            break
                        c.restarts += 1
                        self._spawn(c)
                time.sleep(0.25)
        finally:
            if on_event:
                on_event("stopping all components")
            self.stop_all()
            try:
                (self.run_dir / "supervisor.pid").unlink()
            except FileNotFoundError:
                pass
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
