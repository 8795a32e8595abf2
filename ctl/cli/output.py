"""Rendering objects for people (tables) and for scripts (yaml, json, name).

Tables look like kubectl's: upper-case headers, columns separated by three spaces,
no borders, so existing habits (``| awk '{print $1}'``) keep working. Column
definitions per kind live in :mod:`ctl.types.columns`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml

from ctl.cli.errors import CLIError
from ctl.types.columns import columns_for
from ctl.types.kinds import Kind

FORMATS = ("table", "wide", "yaml", "json", "name")


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise CLIError(
            f"unable to match a printer suitable for the output format {fmt!r}, allowed formats are: {','.join(FORMATS)}"
        )


def to_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)


def plain_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    lines = []
    for r in [headers, *rows]:
        lines.append("   ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())
    return "\n".join(lines)


def name_of(kind: Kind, obj: dict[str, Any]) -> str:
    res = kind.singular if not kind.group else f"{kind.singular}.{kind.group}"
    return f"{res}/{obj['metadata']['name']}"


def table(
    kind: Kind,
    items: list[dict[str, Any]],
    wide: bool = False,
    show_namespace: bool = False,
    show_tenant: bool = False,
    show_labels: bool = False,
    headers: bool = True,
) -> str:
    cols = columns_for(kind.kind, wide)
    hdr = (
        (["TENANT"] if show_tenant else [])
        + (["NAMESPACE"] if show_namespace else [])
        + ["NAME"]
        + [h for h, _ in cols]
    )
    if show_labels:
        hdr.append("LABELS")
    rows = []
    for o in items:
        md = o.get("metadata", {})
        row = ([md.get("tenant", "")] if show_tenant else []) + (
            [md.get("namespace", "")] if show_namespace else []
        )
        row += [md.get("name", "")] + [f(o) for _, f in cols]
        if show_labels:
            row.append(",".join(f"{k}={v}" for k, v in (md.get("labels") or {}).items()) or "<none>")
        rows.append(row)
    return (
        plain_table(hdr if headers else [""] * len(hdr), rows)
        if headers
        else plain_table(hdr, rows).split("\n", 1)[-1]
    )


def emit(kind: Kind, items: list[dict[str, Any]], fmt: str, single: bool = False, **table_kw: Any) -> None:
    out = sys.stdout
    if fmt in ("table", "wide"):
        if not items:
            return
        out.write(table(kind, items, wide=fmt == "wide", **table_kw) + "\n")
    elif fmt == "name":
        for o in items:
            out.write(name_of(kind, o) + "\n")
    else:
        doc: Any = (
            items[0]
            if single and len(items) == 1
            else {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}
        )
        out.write(json.dumps(doc, indent=2) + "\n" if fmt == "json" else to_yaml(doc))
    out.flush()
