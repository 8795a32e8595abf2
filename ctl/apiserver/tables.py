"""Server-side ``Table`` responses, as kubectl asks for them (``Accept: application/json;as=Table``).

kubectl and client-go printers ask the server to render lists, single objects and watch
events as a ``meta.k8s.io/v1`` Table: column definitions plus one row of cells per object,
each row carrying the object's metadata. The columns are the ones the CLI prints
(:mod:`ctl.types.columns`), and every cell goes through :func:`ctl.types.columns.cell`, so an
object with a malformed field shows ``<invalid>`` instead of failing the request.
"""

from __future__ import annotations

from typing import Any

from ctl.types.columns import cell, columns_for
from ctl.types.kinds import Kind


def table(kind: Kind, items: list[dict[str, Any]], rev: int, cont: str | None) -> dict[str, Any]:
    cols = columns_for(kind.kind, wide=True)
    defs = [{"name": "Name", "type": "string", "format": "name", "description": "name", "priority": 0}]
    defs += [
        {"name": h.title(), "type": "string", "format": "", "description": h, "priority": 0} for h, _ in cols
    ]
    rows = []
    for o in items:
        md = o["metadata"] if isinstance(o.get("metadata"), dict) else {}
        rows.append(
            {
                "cells": [cell(lambda x: x["metadata"]["name"], o), *[cell(f, o) for _, f in cols]],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": md,
                },
            }
        )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": str(rev), **({"continue": cont} if cont else {})},
        "columnDefinitions": defs,
        "rows": rows,
    }
