"""API errors rendered as Kubernetes ``Status`` objects.

Every failure a handler raises is an :class:`APIError` carrying the HTTP code, the
Kubernetes reason and a message that says what to fix; :func:`status_body` renders it
exactly as kube-apiserver does so that kubectl and client libraries understand it
(the shape itself lives in :mod:`ctl.types.status`, shared with the node agent).
"""

from __future__ import annotations

from typing import Any

from ctl.types.shapes import Status, StatusDetails
from ctl.types.status import REASONS, status_body, success_status

__all__ = [
    "REASONS",
    "APIError",
    "already_exists",
    "bad_request",
    "conflict",
    "forbidden",
    "gone",
    "invalid",
    "not_found",
    "status_body",
    "success_status",
]


class APIError(Exception):
    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        details: StatusDetails | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details

    def body(self) -> Status:
        return status_body(self.code, self.message, self.reason, self.details)


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
