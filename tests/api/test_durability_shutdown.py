"""Durability and graceful shutdown of the API server process.

* kill -9 while clients are writing: every write that was acknowledged (201) is there
  after a restart on the same data directory / etcd (both backends).
* SIGTERM: open watches end cleanly, in-flight writes complete (every request gets an
  answer or a refused connection, never a 5xx), the process exits 0, the store is
  closed cleanly and everything acknowledged is there after a restart.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.api.conftest import BACKENDS, Http, WatchStream, configmap, start_api
from tests.cluster import ApiServerProcess
from tests.helpers import eventually_sync

pytestmark = pytest.mark.slow  # starts API server / role / etcd processes


class Writers:
    """A few threads creating configmaps until stopped, recording what was acknowledged."""

    def __init__(self, url: str, ns: str, threads: int = 4) -> None:
        self.url, self.ns = url, ns
        self.acked: list[str] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, tid: int) -> None:
        s = requests.Session()
        i = 0
        deadline = time.monotonic() + 20
        while not self.stop.is_set() and time.monotonic() < deadline:
            name = f"w{tid}-{i}"
            i += 1
            try:
                r = s.post(
                    f"{self.url}/api/v1/namespaces/{self.ns}/configmaps", json=configmap(name), timeout=10
                )
            except requests.RequestException:
                return  # the server went away: this write was never acknowledged
            with self._lock:
                if r.status_code == 201:
                    self.acked.append(name)
                else:
                    self.errors.append(f"{r.status_code} {r.text[:200]}")

    def start(self) -> Writers:
        for t in self._threads:
            t.start()
        return self

    def join(self) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(15)


def _names(http: Http, ns: str) -> set[str]:
    return {o["metadata"]["name"] for o in http.get(f"/api/v1/namespaces/{ns}/configmaps").json()["items"]}


@pytest.mark.parametrize("backend", BACKENDS)
def test_acknowledged_writes_survive_kill_9(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    srv = start_api(backend, tmp_path / "api", request)
    ns = f"k9-{backend}"
    try:
        Http(srv.url).post(
            "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        )
        w = Writers(srv.url, ns).start()
        deadline = time.monotonic() + 10
        while len(w.acked) < 150 and time.monotonic() < deadline:
            time.sleep(0.02)
        srv.kill()  # SIGKILL mid-stream
        w.join()
        assert len(w.acked) >= 50, "too few writes before the kill to prove anything"
        assert not w.errors, w.errors[:3]
        srv2 = start_api(backend, tmp_path / "api", request)
        try:
            stored = _names(Http(srv2.url), ns)
            missing = set(w.acked) - stored
            assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {sorted(missing)[:5]}"
        finally:
            srv2.stop()
    finally:
        srv.stop()


def test_sigterm_is_graceful(tmp_path: Path) -> None:
    srv = ApiServerProcess(tmp_path / "api").start()
    http = Http(srv.url)
    ns = "graceful"
    http.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    rv = http.get(f"/api/v1/namespaces/{ns}/configmaps").json()["metadata"]["resourceVersion"]
    watch = WatchStream(http, f"/api/v1/namespaces/{ns}/configmaps", {"resourceVersion": rv})
    try:
        w = Writers(srv.url, ns).start()
        eventually_sync(
            lambda: len(w.acked) >= 40, 20, 0.02, "40 acknowledged writes", diag=lambda: repr(w.errors[:3])
        )
        assert srv.proc is not None
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        # the watch ends by itself (end of stream, not a hang)
        assert watch.ended.wait(10), "the open watch did not end on SIGTERM"
        rc = srv.proc.wait(15)
        took = time.monotonic() - t0
        w.join()
        assert rc == 0, srv.log()[-2000:]
        assert took < 8, f"shutdown took {took:.1f}s"
        assert not w.errors, w.errors[:3]  # no 5xx for in-flight writes
        assert "apiserver shutting down" in srv.log() and "Traceback" not in srv.log()
        # the store was closed cleanly: a new server on the same data has everything
        srv2 = ApiServerProcess(tmp_path / "api").start()
        try:
            stored = _names(Http(srv2.url), ns)
            assert set(w.acked) <= stored
        finally:
            srv2.stop()
    finally:
        watch.close()
        srv.stop()
