"""API errors rendered as Kubernetes ``Status`` objects.

Every failure a handler raises is an :class:`APIError` carrying the HTTP code, the
Kubernetes reason and a message that says what to fix; :func:`status_body` renders it
exactly as kube-apiserver does so that kubectl and client libraries understand it
(the shape itself lives in :mod:`ctl.types.status`, shared with the node agent).

Error bodies are bounded whatever the request was: a message is cut at
:data:`MAX_MESSAGE` characters, each field error (cause) at :data:`MAX_CAUSE_MESSAGE`,
and an Invalid status lists at most :data:`MAX_CAUSES` causes (then says how many more),
so that a 1 MiB bad value cannot come back as a many-MiB error.
"""

from __future__ import annotations

from typing import Any

from ctl.types.shapes import Status, StatusDetails
from ctl.types.status import REASONS, status_body, success_status

__all__ = [
    "MAX_CAUSES",
    "MAX_CAUSE_MESSAGE",
    "MAX_MESSAGE",
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
    "truncate",
]

MAX_MESSAGE = 4096
MAX_CAUSE_MESSAGE = 1024
MAX_CAUSES = 20


def truncate(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters in the middle (a value's message ends with the rule)."""
    if len(text) <= limit:
        return text
    head, tail = limit * 3 // 4, limit // 4
    return f"{text[:head]}...({len(text) - head - tail} characters omitted)...{text[len(text) - tail :]}"


class APIError(Exception):
    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        details: StatusDetails | None = None,
    ) -> None:
        message = truncate(message, MAX_MESSAGE)
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
    """422 Invalid listing field errors (``causes`` have ``field`` and ``message``), bounded in size."""
    shown = [
        {
            "reason": getattr(c, "reason", None) or "FieldValueInvalid",
            "message": truncate(str(c.message), MAX_CAUSE_MESSAGE),
            "field": truncate(str(c.field), MAX_CAUSE_MESSAGE),
        }
        for c in causes[:MAX_CAUSES]
    ]
    text = ", ".join(f"{c['field']}: {c['message']}" if c["field"] else c["message"] for c in shown)
    if len(causes) > MAX_CAUSES:
        text += f" (and {len(causes) - MAX_CAUSES} more errors)"
    name = truncate(str(name), MAX_CAUSE_MESSAGE)
    return APIError(
        422,
        f'{kind} "{name}" is invalid: {text}',
        "Invalid",
        {"name": name, "group": group, "kind": kind, "causes": shown},
    )


def bad_request(message: str) -> APIError:
    return APIError(400, message, "BadRequest")


def forbidden(message: str) -> APIError:
    return APIError(403, message, "Forbidden")


def gone(message: str) -> APIError:
    return APIError(410, message, "Expired")
