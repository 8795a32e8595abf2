"""Kubernetes ``Status`` objects: the body of every API error (and of some successes).

Shared by the API server (``ctl.apiserver.status`` raises and renders them) and the node
agent's endpoint, which answers log/exec requests in the same shape, so kubectl and the
client libraries read both the same way.
"""

from __future__ import annotations

from ctl.types.shapes import Status, StatusDetails

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_body(code: int, message: str, reason: str, details: StatusDetails | None = None) -> Status:
    out: Status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        out["details"] = details
    return out


def success_status(details: StatusDetails | None = None, message: str = "") -> Status:
    out: Status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": 200,
    }
    if details:
        out["details"] = details
    if message:
        out["message"] = message
    return out
