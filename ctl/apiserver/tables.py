"""Server-side ``Table`` responses, as kubectl asks for them (``Accept: application/json;as=Table``).

kubectl and client-go printers ask the server to render lists, single objects and watch
events as a ``meta.k8s.io/v1`` Table: column definitions plus one row of cells per object.
The columns are the ones the CLI prints (:mod:`ctl.types.columns`): the normal ones with
priority 0 and the ``-o wide`` ones with priority 1, as kube-apiserver marks them, so
kubectl shows the same columns with and without ``-o wide`` as it does against Kubernetes.
Events get kube-apiserver's own columns (LAST SEEN first, the name only with ``-o wide``),
and so do PodDisruptionBudgets (MIN AVAILABLE, MAX UNAVAILABLE, ALLOWED DISRUPTIONS).
Every cell goes through :func:`ctl.types.columns.cell`, so an object with a malformed field
shows ``<invalid>`` instead of failing the request.

Each row carries the object as the request's ``includeObject`` asks (:func:`requested`):
``Metadata`` (the default: a ``PartialObjectMetadata``), ``Object`` (the whole object;
kubectl ``--sort-by`` needs it) or ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ctl.apiserver import status as st
from ctl.types.columns import age, cell, columns_for
from ctl.types.kinds import Kind

INCLUDE_OBJECT = ("None", "Metadata", "Object")
# (header, cell function, priority, format)
ColumnDef = tuple[str, Callable[[dict[str, Any]], str], int, str]


def requested(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The ``includeObject`` mode when the client asks for a Table, else None (a 400 for a bad mode)."""
    if "as=Table" not in headers.get("Accept", ""):
        return None
    mode = query.get("includeObject") or "Metadata"
    if mode not in INCLUDE_OBJECT:
        raise st.bad_request(
            f'includeObject: Unsupported value: "{mode:.50}": supported values: "None", "Metadata", "Object"'
        )
    return mode


def _get(o: Any, *path: str) -> Any:
    for p in path:
        o = o.get(p) if isinstance(o, dict) else None
    return o


def _name(o: dict[str, Any]) -> str:
    return str(o["metadata"]["name"])


def _event_last_seen(o: dict[str, Any]) -> str:
    ts = (
        _get(o, "series", "lastObservedTime")
        or o.get("lastTimestamp")
        or o.get("eventTime")
        or o.get("firstTimestamp")
        or _get(o, "metadata", "creationTimestamp")
    )
    return age(ts)


def _event_first_seen(o: dict[str, Any]) -> str:
    return age(o.get("firstTimestamp") or o.get("eventTime") or _get(o, "metadata", "creationTimestamp"))


def _event_object(o: dict[str, Any]) -> str:
    inv = o.get("involvedObject") or {}
    return f"{str(inv.get('kind') or '').lower()}/{inv.get('name') or ''}"


def _event_source(o: dict[str, Any]) -> str:
    src = o.get("source") or {}
    comp = src.get("component") or o.get("reportingComponent") or ""
    host = src.get("host") or ""
    return ", ".join(x for x in (comp, host) if x) or "<none>"


# kube-apiserver's Event columns (pkg/printers/internalversion: eventColumnDefinitions).
EVENT_COLUMNS: list[ColumnDef] = [
    ("Last Seen", _event_last_seen, 0, ""),
    ("Type", lambda o: str(o.get("type") or ""), 0, ""),
    ("Reason", lambda o: str(o.get("reason") or ""), 0, ""),
    ("Object", _event_object, 0, ""),
    ("Subobject", lambda o: str(_get(o, "involvedObject", "fieldPath") or ""), 1, ""),
    ("Source", _event_source, 1, ""),
    ("Message", lambda o: str(o.get("message") or ""), 0, ""),
    ("First Seen", _event_first_seen, 1, ""),
    ("Count", lambda o: str(o.get("count") or 1), 1, ""),
    ("Name", _name, 1, "name"),
]


def _int_or_na(path: str) -> Callable[[dict[str, Any]], str]:
    return lambda o: "N/A" if _get(o, "spec", path) is None else str(_get(o, "spec", path))


# kube-apiserver's PodDisruptionBudget columns.
PDB_COLUMNS: list[ColumnDef] = [
    ("Name", _name, 0, "name"),
    ("Min Available", _int_or_na("minAvailable"), 0, ""),
    ("Max Unavailable", _int_or_na("maxUnavailable"), 0, ""),
    ("Allowed Disruptions", lambda o: str(_get(o, "status", "disruptionsAllowed") or 0), 0, ""),
    ("Age", lambda o: age(_get(o, "metadata", "creationTimestamp")), 0, ""),
]
SERVER_COLUMNS = {"Event": EVENT_COLUMNS, "PodDisruptionBudget": PDB_COLUMNS}


def column_defs(kind: Kind) -> list[ColumnDef]:
    """The columns of a kind's Table, with their priorities."""
    if kind.kind in SERVER_COLUMNS:
        return SERVER_COLUMNS[kind.kind]
    normal = columns_for(kind.kind)
    wide = columns_for(kind.kind, wide=True)[len(normal) :]
    return [
        ("Name", _name, 0, "name"),
        *((h.title(), f, 0, "") for h, f in normal),
        *((h.title(), f, 1, "") for h, f in wide),
    ]


def _row_object(o: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "Object":
        return o
    if include == "None":
        return None
    md = o["metadata"] if isinstance(o.get("metadata"), dict) else {}
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": md}


def table(
    kind: Kind,
    items: list[dict[str, Any]],
    rev: int,
    cont: str | None,
    include: str = "Metadata",
    headers: bool = True,
) -> dict[str, Any]:
    """A Table of ``items``; ``headers=False`` leaves the column definitions out (watch events after the first)."""
    cols = column_defs(kind)
    defs = [
        {"name": h, "type": "string", "format": fmt, "description": h, "priority": prio}
        for h, _, prio, fmt in cols
    ]
    rows = []
    for o in items:
        row: dict[str, Any] = {"cells": [cell(f, o) for _, f, _, _ in cols]}
        obj = _row_object(o, include)
        if obj is not None:
            row["object"] = obj
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": str(rev), **({"continue": cont} if cont else {})},
        "columnDefinitions": defs if headers else None,
        "rows": rows,
    }
