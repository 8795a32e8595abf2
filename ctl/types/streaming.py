"""The wire vocabulary of Kubernetes' streaming subresources (exec, attach, port-forward).

``pods/NAME/exec`` and ``pods/NAME/attach`` carry a process's standard streams over one
upgraded connection. Over WebSocket every message starts with a channel byte
(:data:`STDIN` 0, :data:`STDOUT` 1, :data:`STDERR` 2, :data:`ERROR` 3, :data:`RESIZE` 4;
``base64.*`` subprotocols send the channel as an ASCII digit and the payload base64-encoded
in a text message). The error channel carries, from ``v4`` on, a ``Status`` whose
``details.causes[{reason: ExitCode, message: "3"}]`` is the exit code (:func:`exit_status`,
:func:`exit_code_of`); older protocols send only the failure text. ``v5`` adds a close
signal, ``[255, channel]``, with which the client half-closes stdin. Resize messages are
``{"Width": W, "Height": H}``.

Over SPDY/3.1 the same streams are separate SPDY streams named by their ``streamtype``
header (:data:`SPDY_STREAM_TYPES`); port-forward streams come in pairs (``error`` and
``data``) sharing ``port`` and ``requestID`` headers. WebSocket port-forward gives each
forwarded port two channels (data ``2i``, error ``2i+1``) whose first server message is the
port as two little-endian bytes (:func:`port_prefix`). kubectl 1.31+ tunnels SPDY through a
WebSocket for port-forward (subprotocol ``SPDY/3.1+portforward.k8s.io``).

These are shared by the API server (which speaks every variant to clients), the node agent
(which serves ``v5`` to the API server) and the CLI (``centaurusctl exec -i/-t``).
"""

from __future__ import annotations

import base64
from typing import Any

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255  # v5: [255, channel] closes that channel's writing side

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V3 = "v3.channel.k8s.io"
V2 = "v2.channel.k8s.io"
V1 = "channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
V1_BASE64 = "base64.channel.k8s.io"
PORT_FORWARD = "portforward.k8s.io"
SPDY = "SPDY/3.1"
SPDY_TUNNEL_PREFIX = "SPDY/3.1+"
STREAM_PROTOCOL_HEADER = "X-Stream-Protocol-Version"

# Remote-command protocols this side speaks, best first (SPDY names them the same way).
EXEC_WS_PROTOCOLS = (V5, V4, V4_BASE64, V3, V2, V1, V1_BASE64)
EXEC_SPDY_PROTOCOLS = (V5, V4, V3, V2, V1)
PORT_FORWARD_WS_PROTOCOLS = (V4, V4_BASE64, PORT_FORWARD, V1, V1_BASE64)

SPDY_STREAM_TYPES = {"stdin": STDIN, "stdout": STDOUT, "stderr": STDERR, "error": ERROR, "resize": RESIZE}


def is_base64(protocol: str) -> bool:
    return "base64" in protocol


def has_status(protocol: str) -> bool:
    """Whether the error channel carries a JSON Status (v4 and v5) rather than plain text."""
    return protocol.startswith(("v4.", "v5."))


def supports_resize(protocol: str) -> bool:
    return protocol.startswith(("v3.", "v4.", "v5."))


def pick_protocol(offered: list[str], supported: tuple[str, ...]) -> str | None:
    """The first protocol the client offered that this side supports (None: no match)."""
    for p in offered:
        if p in supported:
            return p
    return None


def offered_protocols(header_values: list[str]) -> list[str]:
    """Protocols from (possibly repeated, comma-separated) upgrade headers, in order."""
    out: list[str] = []
    for v in header_values:
        out += [p.strip() for p in v.split(",") if p.strip()]
    return out


def encode(protocol: str, channel: int, data: bytes) -> bytes | str:
    """One WebSocket message on ``channel``: bytes for binary protocols, text for base64 ones."""
    if is_base64(protocol):
        return chr(ord("0") + channel) + base64.b64encode(data).decode()
    return bytes([channel]) + data


def decode(protocol: str, message: bytes | str) -> tuple[int, bytes] | None:
    """``(channel, payload)`` of one client message (None for an empty or undecodable one)."""
    if not message:
        return None
    if is_base64(protocol):
        text = message if isinstance(message, str) else message.decode("ascii", "replace")
        try:
            return ord(text[0]) - ord("0"), base64.b64decode(text[1:])
        except ValueError:
            return None
    if isinstance(message, str):  # a text message on a binary protocol (the Python client sends these)
        return ord(message[0]), message[1:].encode()
    return message[0], message[1:]


def exit_status(exit_code: int | None, message: str = "") -> dict[str, Any]:
    """The error channel's Status: Success, non-zero exit code, or another failure (``exit_code`` None)."""
    if exit_code == 0 and not message:
        return {"metadata": {}, "status": "Success"}
    if exit_code is not None and exit_code != 0:
        return {
            "metadata": {},
            "status": "Failure",
            "message": message or f"command terminated with non-zero exit code: exit status {exit_code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
        }
    return {
        "metadata": {},
        "status": "Failure",
        "message": message or "error executing command",
        "reason": "InternalError",
        "code": 500,
    }


def exit_code_of(status: dict[str, Any]) -> int:
    """The exit code a Status from the error channel reports (0 Success, 1 for other failures)."""
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message", "1"))
            except ValueError:
                return 1
    return 1


def status_text(status: dict[str, Any]) -> bytes:
    """What pre-v4 protocols put on the error channel: the failure message, nothing on success."""
    if status.get("status") == "Success":
        return b""
    return str(status.get("message") or "error").encode()


def port_prefix(port: int) -> bytes:
    """The two little-endian bytes that open each WebSocket port-forward channel."""
    return bytes([port & 0xFF, (port >> 8) & 0xFF])


def parse_port(value: str) -> int:
    """A forwarded port number (1-65535); ValueError otherwise."""
    port = int(value)
    if not 0 < port < 65536:
        raise ValueError(f"port {value!r} is out of range (1-65535)")
    return port
