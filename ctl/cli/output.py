"""Rendering objects for people (tables) and for scripts (yaml, json, name).

Tables look like kubectl's: upper-case headers, columns separated by three spaces,
no borders, so existing habits (``| awk '{print $1}'``) keep working. Column
definitions per kind live in :mod:`ctl.types.columns`.

One ``-o`` vocabulary serves every command: the formats are named once here and each
command accepts the subset it can print (:data:`OBJECT_FORMATS` for ``get``,
:data:`DATA_FORMATS` for ``transit``, ``status`` and other reports, :data:`PACKET_FORMATS`
for ``packet``, whose ``text`` is one line per decoded frame). :func:`output_option` builds
the option, :func:`check_format` refuses anything else with one error line.

The printers never trust the objects they print: an object already in the store may be
malformed (written by an older version, or straight into the store), so a field of the
wrong type is shown as ``<invalid>`` instead of ending the command with a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import typer
import yaml

from ctl.cli import jsonpath
from ctl.cli.errors import CLIError
from ctl.types.columns import INVALID, cell, columns_for
from ctl.types.kinds import Kind

OBJECT_FORMATS = ("table", "wide", "yaml", "json", "name")
# formats that carry their template after '=' (-o jsonpath='{.items[*].metadata.name}'), objects only
TEMPLATE_FORMATS = ("jsonpath", "custom-columns", "go-template", "template")
DATA_FORMATS = ("table", "json", "yaml")
PACKET_FORMATS = ("text", "wide", "json")
FORMATS = OBJECT_FORMATS


def output_option(allowed: Sequence[str] = OBJECT_FORMATS, default: str | None = None) -> Any:
    """The ``-o/--output`` option of a command that prints ``allowed`` (the first is the default).

    The value is checked while the command line is parsed, before the command does anything,
    so an unknown format never leaves a half-done change behind (``transit update -o xml``).
    """
    return typer.Option(
        default if default is not None else allowed[0],
        "-o",
        "--output",
        help="|".join(allowed),
        callback=lambda fmt: check_format(fmt, allowed),
    )


def check_format(fmt: str, allowed: Sequence[str] = OBJECT_FORMATS) -> str:
    """``fmt`` if the command can print it, else the one-line error kubectl gives.

    Where ``allowed`` includes the object formats, the template formats are accepted too
    (``jsonpath=TEMPLATE``, ``custom-columns=SPEC``, ``go-template=TEMPLATE``).
    """
    if fmt in allowed:
        return fmt
    base, sep, template = fmt.partition("=")
    if "yaml" in allowed and "name" in allowed and base in TEMPLATE_FORMATS:
        if not sep or not template:
            raise CLIError(f"{base} format specified but no template given: use -o {base}=TEMPLATE")
        if base == "custom-columns":
            jsonpath.custom_columns(template)  # a bad spec fails before anything is fetched
        return fmt
    shown = [*allowed, *(f"{t}=..." for t in TEMPLATE_FORMATS)] if "name" in allowed else list(allowed)
    raise CLIError(
        f"unable to match a printer suitable for the output format {fmt!r}, allowed formats are: {','.join(shown)}"
    )


def to_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)


def dump(doc: Any, fmt: str) -> str:
    """``doc`` as ``json`` (indented, newline-terminated) or ``yaml``."""
    return json.dumps(doc, indent=2) + "\n" if fmt == "json" else to_yaml(doc)


def plain_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    lines = []
    for r in [headers, *rows]:
        lines.append("   ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())
    return "\n".join(lines)


# ---------------------------------------------------------------- reading untrusted objects
def metadata(obj: Any) -> dict[str, Any]:
    """``obj.metadata`` when it is a mapping, else an empty one."""
    md = obj.get("metadata") if isinstance(obj, dict) else None
    return md if isinstance(md, dict) else {}


def text(value: Any, missing: str = "") -> str:
    """A scalar field as printed: strings and numbers as they are, anything else ``<invalid>``."""
    if value is None:
        return missing
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):  # bools included: printed as Python spells them
        return str(value)
    return INVALID


def mapping(value: Any) -> dict[str, Any] | None:
    """A map field (labels, annotations ...): the dict, ``{}`` when absent, None when malformed."""
    if value is None:
        return {}
    return value if isinstance(value, dict) else None


def pairs(value: Any, none: str = "<none>", sep: str = ",") -> str:
    """A map field as ``k=v`` pairs (``<none>`` when empty, ``<invalid>`` when not a map)."""
    m = mapping(value)
    if m is None:
        return INVALID
    return sep.join(f"{k}={text(v)}" for k, v in m.items()) or none


def name_of(kind: Kind, obj: dict[str, Any]) -> str:
    res = kind.singular if not kind.group else f"{kind.singular}.{kind.group}"
    return f"{res}/{text(metadata(obj).get('name'), INVALID)}"


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
        md = metadata(o)
        if not isinstance(o, dict):
            o = {}
        row = ([text(md.get("tenant"))] if show_tenant else []) + (
            [text(md.get("namespace"))] if show_namespace else []
        )
        row += [text(md.get("name"), INVALID)] + [cell(f, o) for _, f in cols]
        if show_labels:
            row.append(pairs(md.get("labels")))
        rows.append(row)
    return (
        plain_table(hdr if headers else [""] * len(hdr), rows)
        if headers
        else plain_table(hdr, rows).split("\n", 1)[-1]
    )


def without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without ``metadata.managedFields`` (kubectl hides them unless ``--show-managed-fields``)."""
    md = obj.get("metadata")
    if not isinstance(md, dict) or "managedFields" not in md:
        return obj
    return {**obj, "metadata": {k: v for k, v in md.items() if k != "managedFields"}}


def _list_doc(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


def emit(
    kind: Kind,
    items: list[dict[str, Any]],
    fmt: str,
    single: bool = False,
    show_managed_fields: bool = False,
    sort_by: str | None = None,
    headers: bool = True,
    **table_kw: Any,
) -> None:
    """Print ``items`` of ``kind`` in ``fmt`` (any of :data:`OBJECT_FORMATS` or a template format).

    ``sort_by`` is a JSONPath the items are ordered by; ``headers=False`` drops the table's
    header line (``--no-headers``).
    """
    out = sys.stdout
    if not show_managed_fields and fmt not in ("table", "wide", "name"):
        items = [without_managed_fields(o) for o in items]
    if sort_by:
        items = sorted(items, key=jsonpath.sort_key(sort_by))
    base, _, template = fmt.partition("=")
    if fmt in ("table", "wide"):
        if not items:
            return
        out.write(table(kind, items, wide=fmt == "wide", headers=headers, **table_kw) + "\n")
    elif base == "custom-columns":
        cols = jsonpath.custom_columns(template)
        rows = [
            [",".join(jsonpath.show(v) for v in jsonpath.select(o, p)) or "<none>" for _, p in cols]
            for o in items
        ]
        if rows:
            text_ = plain_table([h for h, _ in cols], rows)
            out.write((text_ if headers else text_.split("\n", 1)[-1]) + "\n")
    elif base in TEMPLATE_FORMATS:
        doc_: Any = items[0] if single and len(items) == 1 else _list_doc(items)
        out.write(jsonpath.render(template, doc_, go=base != "jsonpath"))  # no newline added, as kubectl
    elif fmt == "name":
        for o in items:
            out.write(name_of(kind, o) + "\n")
    else:
        doc: Any = items[0] if single and len(items) == 1 else _list_doc(items)
        out.write(dump(doc, fmt))
    out.flush()
