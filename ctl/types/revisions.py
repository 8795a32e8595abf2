"""ControllerRevision history, the pure part: numbers, templates as history keeps them, order.

A ControllerRevision snapshots an owner's pod template (``data.spec.template``), numbered by
``revision`` and labelled ``controller-revision-hash``. The DaemonSet and StatefulSet
controllers (:mod:`ctl.controllers.revisions`) write them; ``rollout history`` and ``rollout
undo`` in the CLI read them. Both need the same view of a revision, so it lives here.
"""

from __future__ import annotations

import copy
from typing import Any

from ctl.types.meta import drop_nulls

HASH_LABEL = "controller-revision-hash"
KIND = "controllerrevisions"


def revision_number(rev: dict[str, Any]) -> int:
    try:
        return int(rev.get("revision") or 0)
    except (TypeError, ValueError):
        return 0


def clean_template(template: dict[str, Any]) -> dict[str, Any]:
    """The template as history stores and compares it: no nulls, no revision-hash label."""
    t = drop_nulls(copy.deepcopy(template or {}))
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return t


def template_of(rev: dict[str, Any]) -> dict[str, Any]:
    """The pod template a revision snapshots."""
    return copy.deepcopy(((rev.get("data") or {}).get("spec") or {}).get("template") or {})


def sorted_history(revisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(revisions, key=lambda r: (revision_number(r), r["metadata"].get("name", "")))
