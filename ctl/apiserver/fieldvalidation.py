"""Validation in the request's ``fieldValidation`` mode (Ignore, Warn, Strict), as Kubernetes defines it.

The HTTP layer parses ``?fieldValidation=`` and sets :data:`FIELD_VALIDATION` for a create,
update or patch; the registry calls :func:`validate_object`, which runs the schema and
per-kind validation (:func:`ctl.types.validation.validate`) in that mode. ``Ignore`` drops
unknown fields, ``Warn`` drops them and appends a warning (sent back as ``Warning: 299``
headers), ``Strict`` refuses them with 400 "strict decoding error" before anything is stored.
Without the parameter unknown fields are kept, this server's behaviour before the parameter.
A context variable carries the mode, so internal writes (bootstrap, token Secrets) always
run with the default.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from ctl.apiserver import status as st
from ctl.types import validation
from ctl.types.kinds import Kind

# The request's ``fieldValidation`` mode and the list its warnings go to, set by the HTTP layer
# for create/update/patch (None: unknown fields are kept, this server's behaviour before the
# parameter existed). A context variable, so every internal write keeps the default.
FIELD_VALIDATION: ContextVar[tuple[str | None, list[str] | None]] = ContextVar(
    "field_validation", default=(None, None)
)
_UNKNOWN_FIELD = "Invalid value: unknown field "


def validate_object(kind: Kind, obj: dict[str, Any]) -> list[validation.Cause]:
    """Schema and per-kind validation in the request's fieldValidation mode.

    Strict refuses unknown fields as Kubernetes does: 400 BadRequest, "strict decoding error".
    """
    mode, warnings = FIELD_VALIDATION.get()
    if warnings is not None and len(warnings) >= 50:
        warnings = None  # enough said
    causes = validation.validate(kind, obj, mode, warnings)
    if mode == "Strict":
        unknown = [c for c in causes if c.message.startswith(_UNKNOWN_FIELD)]
        if unknown:
            fields = ", ".join(c.message[len("Invalid value: ") :] for c in unknown[:20])
            raise st.bad_request(f"strict decoding error: {fields}")
    return causes
