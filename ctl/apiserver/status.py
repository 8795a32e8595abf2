"""API errors rendered as Kubernetes ``Status`` objects.

Every failure a handler raises is an :class:`APIError` carrying the HTTP code, the
Kubernetes reason and a message that says what to fix; :func:`status_body` renders it
exactly as kube-apiserver does so that kubectl and client libraries understand it.
"""

from __future__ import annotations

from typing import Any

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


class APIError(Exception):
    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details

    def body(self) -> dict[str, Any]:
        return status_body(self.code, self.message, self.reason, self.details)


def status_body(
    code: int, message: str, reason: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
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


def success_status(details: dict[str, Any] | None = None, message: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {
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


def not_found(resource: str, name: str, group: str = "") -> APIError:
    r = f"{resource}.{group}" if group else resource
    return APIError(
        404, f'{r} "{name}" not found', "NotFound", {"name": name, "group": group, "kind": resource}
    )


def already_exists(resource: str, name: str, group: str = "") -> APIError:
    r = f"{resource}.{group}" if group else resource
    return APIError(
        409, f'{r} "{name}" already exists', "AlreadyExists", {"name": name, "group": group, "kind": resource}
    )


def conflict(resource: str, name: str, group: str = "") -> APIError:
    r = f"{resource}.{group}" if group else resource
    return APIError(
        409,
        f'Operation cannot be fulfilled on {r} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        "Conflict",
        {"name": name, "group": group, "kind": resource},
    )


def invalid(kind: str, name: str, causes: list[Any], group: str = "") -> APIError:
    text = ", ".join(str(c) for c in causes)
    return APIError(
        422,
        f'{kind} "{name}" is invalid: {text}',
        "Invalid",
        {
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [
                {"reason": "FieldValueInvalid", "message": c.message, "field": c.field} for c in causes
            ],
        },
    )


def bad_request(message: str) -> APIError:
    return APIError(400, message, "BadRequest")


def forbidden(message: str) -> APIError:
    return APIError(403, message, "Forbidden")


def gone(message: str) -> APIError:
    return APIError(410, message, "Expired")
