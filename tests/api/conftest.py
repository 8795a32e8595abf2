"""Fixtures for the API tests: real ``centaurusctl serve apiserver`` processes on loopback.

* ``api``: one API server per test module, parametrized over the two store backends
  (``sqlite`` = the embedded store, ``etcd`` = a real etcd started by
  :class:`ctl.cluster.etcd_process.EtcdProcess`, one per session). Modules that only need
  the embedded store use the top-level ``apiserver`` fixture instead.
* ``http``: a small synchronous HTTP helper bound to a server (raw status codes and
  bodies, so the tests see exactly what a Kubernetes client would).
* ``ns``: a fresh namespace per test, so tests sharing a server (and the etcd shared by
  every etcd-backed server) never see each other's objects.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from ctl.cluster.etcd_process import ETCD_BINARY, EtcdProcess
from tests.cluster import ROOT, ApiServerProcess

HAVE_ETCD = os.access(ETCD_BINARY, os.X_OK)
BACKENDS = [
    pytest.param("sqlite"),
    pytest.param("etcd", marks=pytest.mark.skipif(not HAVE_ETCD, reason=f"{ETCD_BINARY} not installed")),
]


class Http:
    """Raw HTTP to one API server: ``http.post(path, body)`` returns the ``requests`` response."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.s = requests.Session()

    def req(
        self,
        method: str,
        path: str,
        body: Any = None,
        ct: str = "application/json",
        params: dict[str, Any] | None = None,
        data: bytes | str | None = None,
        **kw: Any,
    ) -> requests.Response:
        headers = dict(kw.pop("headers", {}) or {})
        if body is not None:
            kw["json"] = body
            headers.setdefault("Content-Type", ct)
        elif data is not None:
            kw["data"] = data
            headers.setdefault("Content-Type", ct)
        return self.s.request(
            method, self.base + path, params=params, headers=headers, timeout=kw.pop("timeout", 30), **kw
        )

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.req("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.req("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.req("PUT", path, body, **kw)

    def patch(
        self, path: str, body: Any, ct: str = "application/merge-patch+json", **kw: Any
    ) -> requests.Response:
        return self.req("PATCH", path, body, ct=ct, **kw)

    def delete(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.req("DELETE", path, body, **kw)


def status_of(r: requests.Response) -> dict[str, Any]:
    """The Kubernetes Status body of an error response (asserting it is one)."""
    body = r.json()
    assert body.get("kind") == "Status" and body.get("status") == "Failure", body
    assert body.get("code") == r.status_code, body
    assert body.get("message"), body
    return dict(body)


def names(http: Http, path: str, **params: str) -> list[str]:
    """The sorted names a list request answers (asserting a 200)."""
    r = http.get(path, params=params)
    assert r.status_code == 200, r.text
    return sorted(o["metadata"]["name"] for o in r.json()["items"])


def pod(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
    }


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {}},
        "data": data,
    }


def deployment(name: str, replicas: int = 1, app: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }


@pytest.fixture(scope="session")
def etcd_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdProcess]:
    if not HAVE_ETCD:
        pytest.skip(f"{ETCD_BINARY} not installed (apt-get install etcd-server)")
    proc = EtcdProcess(tmp_path_factory.mktemp("etcd") / "data", die_with_parent=True)
    proc.start()
    yield proc
    proc.stop()


def start_api(
    backend: str, data_dir: Path, request: pytest.FixtureRequest, extra: list[str] | None = None
) -> ApiServerProcess:
    store = ""
    if backend == "etcd":
        proc: EtcdProcess = request.getfixturevalue("etcd_proc")
        store = proc.store_url
    return ApiServerProcess(data_dir, store=store, extra=extra).start()


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServerProcess]:
    srv = start_api(str(request.param), tmp_path_factory.mktemp(f"api-{request.param}"), request)
    srv.backend = str(request.param)  # type: ignore[attr-defined]
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture()
def http(api: ApiServerProcess) -> Http:
    return Http(api.url)


@pytest.fixture()
def ns(http: Http) -> str:
    name = "t-" + uuid.uuid4().hex[:8]
    r = http.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    return name


class WatchStream:
    """A watch request read on a thread: ``next()`` returns one event (type, object) or raises on timeout."""

    def __init__(self, http: Http, path: str, params: dict[str, Any] | None = None) -> None:
        import json
        import queue
        import threading

        self._q: queue.Queue[Any] = queue.Queue()
        p = {"watch": "1", **(params or {})}
        self.resp = requests.get(http.base + path, params=p, stream=True, timeout=30)
        self.status = self.resp.status_code
        self.ended = threading.Event()

        def read() -> None:
            try:
                for line in self.resp.iter_lines():
                    if line:
                        ev = json.loads(line)
                        self._q.put((ev["type"], ev["object"]))
            except Exception as e:  # connection closed by close()
                self._q.put(("CLOSED", {"error": str(e)}))
            finally:
                self.ended.set()
                self._q.put(None)

        if self.status == 200:
            self._t = threading.Thread(target=read, daemon=True)
            self._t.start()

    def next(self, timeout: float = 5.0) -> tuple[str, dict[str, Any]]:
        import queue

        try:
            ev = self._q.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no watch event within {timeout}s") from None
        if ev is None:
            raise EOFError("the watch stream ended")
        return ev  # type: ignore[no-any-return]

    def take(self, n: int, timeout: float = 5.0) -> list[tuple[str, str]]:
        """The next ``n`` events as (type, name)."""
        return [(t, o["metadata"]["name"]) for t, o in (self.next(timeout) for _ in range(n))]

    def quiet(self, seconds: float = 0.5) -> bool:
        """True if no event arrives within ``seconds``."""
        try:
            self.next(seconds)
        except TimeoutError:
            return True
        except EOFError:
            return True
        return False

    def close(self) -> None:
        import socket

        # Shut the socket down first: closing a response another thread is reading blocks.
        try:
            self.resp.raw._fp.fp.raw._sock.shutdown(socket.SHUT_RDWR)
        except (AttributeError, OSError):
            pass
        if self.status == 200:
            self.ended.wait(5)
        self.resp.close()

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InitCluster:
    """A cluster started by ``centaurusctl init --detach`` (API server only), with its kubeconfig."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.kubeconfig = data_dir / "kubeconfig"

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ctl", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
        )


@pytest.fixture(scope="session")
def init_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InitCluster]:
    c = InitCluster(tmp_path_factory.mktemp("init") / "data")
    r = c.ctl(
        "init",
        "--detach",
        "--port",
        "0",
        "--data-dir",
        str(c.data_dir),
        "--disable",
        "scheduler,controllers,agent",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    try:
        yield c
    finally:
        c.ctl("down", "--data-dir", str(c.data_dir))
