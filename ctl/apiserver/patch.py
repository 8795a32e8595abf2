"""PATCH bodies as the API server answers them: :mod:`ctl.types.patch` with Status errors.

The patch algorithms (merge, JSON and strategic merge patch) are pure data manipulation
and live in :mod:`ctl.types.patch`, where the CLI uses them too. This adapter turns their
:class:`~ctl.types.patch.PatchError` into the :class:`~ctl.apiserver.status.APIError` the
verbs raise, so a bad patch is a 400/415/422 Status, never a 500.
"""

from __future__ import annotations

from typing import Any

from ctl.apiserver.status import APIError
from ctl.types import patch as _patch


def apply_patch(content_type: str, obj: dict[str, Any], patch: Any) -> dict[str, Any]:
    """:func:`ctl.types.patch.apply_patch`, raising :class:`APIError` for a patch that cannot apply."""
    try:
        return _patch.apply_patch(content_type, obj, patch)
    except _patch.PatchError as e:
        raise APIError(e.code, e.message, e.reason) from None
