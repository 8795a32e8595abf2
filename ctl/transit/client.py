"""RPC client of the transit daemon: HTTP/JSON over its Unix socket (or TCP), stdlib only.

    c = TransitClient.for_host("h1")            # /run/centaurus/transitd/h1.sock
    c.put("substrates", {"ip": "192.168.10.2", "mac": "02:..."})
    c.put("endpoints", [{...}, {...}])          # all or nothing
    c.get("endpoints", "100/10.0.1.5"); c.list("nets"); c.delete("vpcs", "100")
    c.load("auto"); c.unload(); c.counters(); c.dump(); c.status()

Failures raise ``TransitError`` carrying the daemon's one-line message and HTTP code. This is
what the network management plane (later) and the troubleshooting CLI use; it never imports
``agent``.
"""

from __future__ import annotations

import builtins
import http.client
import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

DEFAULT_RUN_DIR = Path("/run/centaurus/transitd")


class TransitError(Exception):
    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class TransitClient:
    def __init__(self, socket_path: str | None = None, tcp: str | None = None, timeout: float = 30.0) -> None:
        if not socket_path and not tcp:
            raise ValueError("give a Unix socket path or a TCP host:port")
        self.socket_path = socket_path
        self.tcp = tcp
        self.timeout = timeout

    @classmethod
    def for_host(cls, host: str, run_dir: Path = DEFAULT_RUN_DIR, timeout: float = 30.0) -> TransitClient:
        return cls(str(run_dir / f"{host}.sock"), timeout=timeout)

    def _conn(self) -> http.client.HTTPConnection:
        if self.socket_path:
            return _UnixHTTPConnection(self.socket_path, self.timeout)
        h, _, p = str(self.tcp).rpartition(":")
        return http.client.HTTPConnection(h or "127.0.0.1", int(p), timeout=self.timeout)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        where = self.socket_path or self.tcp
        conn = self._conn()
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise TransitError(f"transit daemon not reachable at {where}: {e.strerror or e}") from e
        except (OSError, http.client.HTTPException) as e:
            raise TransitError(f"transit daemon at {where}: {e}") from e
        finally:
            conn.close()
        try:
            out = (
                json.loads(raw)
                if raw and resp.getheader("Content-Type", "").startswith("application/json")
                else raw.decode()
            )
        except ValueError:
            out = raw.decode(errors="replace")
        if resp.status >= 400:
            msg = out.get("message") if isinstance(out, dict) else str(out)
            raise TransitError(msg or f"HTTP {resp.status}", resp.status)
        return out

    # ---- objects ------------------------------------------------------------------------------

    def put(self, kind: str, obj: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(self.request("PUT", f"/v1/{quote(kind)}", obj))

    def get(self, kind: str, key: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/v1/{quote(kind)}/{quote(key, safe='/')}"))

    def list(self, kind: str) -> list[dict[str, Any]]:
        return list(self.request("GET", f"/v1/{quote(kind)}"))

    def delete(self, kind: str, key: str) -> dict[str, Any]:
        return dict(self.request("DELETE", f"/v1/{quote(kind)}/{quote(key, safe='/')}"))

    # ---- programs and introspection -----------------------------------------------------------

    def load(self, mode: str = "auto", agent_hook: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"mode": mode}
        if agent_hook:
            body["agent_hook"] = agent_hook
        return dict(self.request("POST", "/v1/load", body))

    def unload(self) -> dict[str, Any]:
        return dict(self.request("POST", "/v1/unload", {}))

    def status(self) -> dict[str, Any]:
        return dict(self.request("GET", "/v1/status"))

    def counters(self) -> dict[str, dict[str, int]]:
        return dict(self.request("GET", "/v1/counters"))

    def reset_counters(self) -> dict[str, dict[str, int]]:
        return dict(self.request("DELETE", "/v1/counters"))

    def dump(self) -> dict[str, Any]:
        return dict(self.request("GET", "/v1/dump"))

    def learned(self) -> builtins.list[dict[str, Any]]:
        return list(self.request("GET", "/v1/learned"))

    def flush_learned(self) -> int:
        return int(self.request("DELETE", "/v1/learned")["flushed"])

    def healthy(self) -> bool:
        try:
            return self.request("GET", "/healthz") == "ok"
        except TransitError:
            return False
