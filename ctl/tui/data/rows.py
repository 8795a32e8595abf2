"""Rows of the resource table: which columns a kind shows, their cells, filtering and sorting.

The columns are those the API server's Table responses and ``centaurusctl get`` show
(:mod:`ctl.types.columns`), preceded by TENANT (when every tenant is listed), NAMESPACE (when
every namespace is) and NAME. AGE is rendered from an injected ``clock`` instead of the wall
clock, so the TUI's snapshot tests are deterministic and ages tick on the TUI's own timer.

Filtering matches a case-insensitive substring against the whole row; sorting orders
``5s < 3m < 2h < 4d`` for ages, ``2 < 10`` for numbers (``1/3`` by its first number) and
everything else as text.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ctl.types import columns as kcolumns
from ctl.types.kinds import Kind

Clock = Callable[[], float]


def system_clock() -> float:
    return time.time()


@dataclass(frozen=True)
class ColumnSpec:
    header: str
    fn: Callable[[dict[str, Any]], str]


def mapping(o: Any, field: str) -> dict[str, Any]:
    """``o[field]`` when both are mappings, else an empty one (malformed objects never raise)."""
    v = o.get(field) if isinstance(o, dict) else None
    return v if isinstance(v, dict) else {}


def _md(o: dict[str, Any], field: str) -> str:
    v = mapping(o, "metadata").get(field)
    return v if isinstance(v, str) else ""


def columns(kind: Kind, all_tenants: bool, all_namespaces: bool, clock: Clock) -> list[ColumnSpec]:
    """The columns of ``kind``'s table in this scope, AGE on ``clock``."""

    def age(o: dict[str, Any]) -> str:
        return kcolumns.age(_md(o, "creationTimestamp") or None, now=clock())

    out: list[ColumnSpec] = []
    if all_tenants and kind.scope != "cluster":
        out.append(ColumnSpec("TENANT", lambda o: _md(o, "tenant")))
    if all_namespaces and kind.namespaced:
        out.append(ColumnSpec("NAMESPACE", lambda o: _md(o, "namespace")))
    out.append(ColumnSpec("NAME", lambda o: _md(o, "name")))
    for header, fn in kcolumns.columns_for(kind.kind):
        out.append(ColumnSpec(header, age if header == "AGE" else fn))
    return out


def cells(cols: list[ColumnSpec], obj: dict[str, Any]) -> tuple[str, ...]:
    """One row's cells (a malformed field is ``<invalid>``, never an exception)."""
    return tuple(kcolumns.cell(c.fn, obj) for c in cols)


def matches(needle: str, row: tuple[str, ...]) -> bool:
    """Filter-as-you-type: ``needle`` (case-insensitive) anywhere in the row."""
    if not needle:
        return True
    n = needle.lower()
    return any(n in c.lower() for c in row)


_AGE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_NUM = re.compile(r"^-?\d+")


def age_seconds(text: str) -> int | None:
    m = _AGE.match(text)
    if not m or not text:
        return None
    d, h, mi, s = (int(x) if x else 0 for x in m.groups())
    return ((d * 24 + h) * 60 + mi) * 60 + s


def sort_key(header: str) -> Callable[[Any], Any]:
    """The key DataTable sorts one column's cells by."""

    def key(value: Any) -> Any:
        text = str(value)
        if header == "AGE":
            secs = age_seconds(text)
            return (0, secs if secs is not None else -1, text)
        m = _NUM.match(text)
        if m:
            return (0, int(m.group()), text)
        return (1, 0, text.lower())

    return key
