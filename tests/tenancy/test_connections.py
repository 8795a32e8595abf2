"""Connection hygiene (:mod:`ctl.apiserver.connections`) against a real API server over real sockets.

The server runs with short limits: headers within 1 s, idle keep-alive 2 s, 12 connections
per client address, 3 per tenant user. Slow-header clients (a byte every 0.2 s) are closed,
an idle keep-alive connection is closed, a watch streaming past both timeouts is not, the
13th connection from one address and the 4th of one user are answered 429.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.cluster import ApiServerProcess
from tests.tenancy.conftest import ADMIN_TOKEN, Caller, api_with_tenant_admins

A_TOKEN = "conn-tenant-a-token-0123456789"
PER_ADDRESS = 12


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    extra = [
        "--request-header-timeout",
        "1",
        "--idle-connection-timeout",
        "2",
        "--max-connections-per-address",
        str(PER_ADDRESS),
        "--max-connections-per-user",
        "3",
    ]
    with api_with_tenant_admins(tmp_path_factory.mktemp("conn"), extra, {A_TOKEN: ("alice", "a")}) as api:
        yield api


def _connect(api: ApiServerProcess) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", api.port), timeout=5)
    s.settimeout(5)
    return s


def _closed(s: socket.socket, within: float) -> bool:
    """Whether the server closes ``s`` within ``within`` seconds (reading and dropping what it sends)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if s.recv(65536) == b"":
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False


def _request(path: str, token: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode()


def _response(s: socket.socket) -> tuple[int, bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next((int(h.split(b":")[1]) for h in lines if h.lower().startswith(b"content-length:")), None)
    while length is not None and len(body) < length:
        body += s.recv(65536)
    return int(lines[0].split()[1]), body


def test_slow_headers_are_cut(api: ApiServerProcess) -> None:
    socks = [_connect(api) for _ in range(5)]
    try:
        for s in socks:
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
        t0 = time.monotonic()
        alive = list(socks)
        while alive and time.monotonic() - t0 < 4:  # a byte every 0.2 s, as a slowloris sends
            time.sleep(0.2)
            for s in list(alive):
                try:
                    s.sendall(b"X")
                except OSError:
                    alive.remove(s)
        assert all(_closed(s, 1.0) for s in socks), "slow-header connections still open after 4 s (limit 1 s)"
    finally:
        for s in socks:
            s.close()


def test_idle_keepalive_closed_but_a_served_connection_is_reused(api: ApiServerProcess) -> None:
    s = _connect(api)
    try:
        for _ in range(3):  # keep-alive works: three requests on one connection, each well within the limits
            s.sendall(_request("/healthz"))
            assert _response(s)[0] == 200
            time.sleep(0.5)
        assert _closed(s, 4.0), "an idle keep-alive connection outlived the 2 s idle timeout"
    finally:
        s.close()


def test_watch_outlives_the_idle_and_header_timeouts(api: ApiServerProcess) -> None:
    s = _connect(api)
    try:
        s.sendall(_request("/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=30", ADMIN_TOKEN))
        s.settimeout(5)
        head = s.recv(65536)
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        time.sleep(3.5)  # past the 2 s idle timeout and the 1 s header timeout
        Caller(api.url, ADMIN_TOKEN).ok(
            "POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "seen-by-watch"}}
        )
        got = b""
        deadline = time.monotonic() + 5
        while b"seen-by-watch" not in got and time.monotonic() < deadline:
            chunk = s.recv(65536)
            assert chunk, "the server closed the watch"
            got += chunk
        assert b"seen-by-watch" in got
    finally:
        s.close()


def test_connections_per_address_limited(api: ApiServerProcess) -> None:
    socks = [_connect(api) for _ in range(PER_ADDRESS)]
    try:
        extra = _connect(api)
        socks.append(extra)
        extra.sendall(_request("/healthz"))
        code, body = _response(extra)
        assert code == 429
        status = json.loads(body)
        assert status["reason"] == "TooManyRequests" and "per client address" in status["message"]
        assert _closed(extra, 2.0)
    finally:
        for s in socks:
            s.close()
    time.sleep(0.2)
    s = _connect(api)  # the count went down again as they closed
    try:
        s.sendall(_request("/healthz"))
        assert _response(s)[0] == 200
    finally:
        s.close()


def test_connections_per_user_limited_admin_exempt(api: ApiServerProcess) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    socks = [_connect(api) for _ in range(4)]
    try:
        codes = []
        for s in socks:
            s.sendall(_request(path, A_TOKEN))
            codes.append(_response(s)[0])
        assert codes == [200, 200, 200, 429], codes
        admin = [_connect(api) for _ in range(4)]
        socks += admin
        for s in admin:
            s.sendall(_request(path, ADMIN_TOKEN))
            assert _response(s)[0] == 200
    finally:
        for s in socks:
            s.close()
    text = Caller(api.url, ADMIN_TOKEN).call("GET", "/metrics")[1]
    assert 'apiserver_connections_refused_total{reason="user"} 1' in text
