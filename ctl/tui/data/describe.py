"""The describe view's text: one object's header, spec and status, and the Events about it.

The layout follows ``kubectl describe`` (and ``centaurusctl describe``): name, namespace,
tenant, kind, uid, creation time and age (on the injected clock), labels, annotations (the
last-applied copy left out), owner, then ``spec``/``status``/``data`` as YAML (a Secret's
values only as their sizes), then the Events whose ``involvedObject.uid`` is this object's,
fetched with a field selector. Every field is read defensively: a malformed object still
describes, with ``<invalid>`` where a field has the wrong type.
"""

from __future__ import annotations

from typing import Any

import yaml

from ctl.client import ApiError, Client
from ctl.tui.data.rows import Clock, mapping
from ctl.types import columns
from ctl.types.kinds import Kind

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
INVALID = columns.INVALID


def _s(v: Any, missing: str = "<none>") -> str:
    if v is None or v == "":
        return missing
    return str(v) if isinstance(v, (str, int, float)) else INVALID


def _map(v: Any, skip: tuple[str, ...] = ()) -> list[str]:
    if v is None:
        return ["<none>"]
    if not isinstance(v, dict):
        return [INVALID]
    return [f"{k}={_s(x, '')}" for k, x in v.items() if k not in skip] or ["<none>"]


def _age(ts: Any, clock: Clock) -> str:
    return columns.age(ts if isinstance(ts, str) else None, now=clock())


def describe(kind: Kind, obj: dict[str, Any], clock: Clock) -> str:
    md = mapping(obj, "metadata")
    out = [f"{'Name:':<14}{_s(md.get('name'))}"]
    if md.get("namespace"):
        out.append(f"{'Namespace:':<14}{_s(md.get('namespace'))}")
    if md.get("tenant"):
        out.append(f"{'Tenant:':<14}{_s(md.get('tenant'))}")
    out.append(f"{'Kind:':<14}{kind.kind} ({kind.api_version})")
    out.append(f"{'UID:':<14}{_s(md.get('uid'))}")
    ts = md.get("creationTimestamp")
    out.append(f"{'Created:':<14}{_s(ts)} ({_age(ts, clock)} ago)")
    for title, field, skip in (("Labels:", "labels", ()), ("Annotations:", "annotations", (LAST_APPLIED,))):
        vals = _map(md.get(field), skip)
        out.append(f"{title:<14}{vals[0]}")
        out += [" " * 14 + v for v in vals[1:]]
    refs = md.get("ownerReferences")
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, dict):
            out.append(f"{'Controlled By:':<14} {_s(ref.get('kind'))}/{_s(ref.get('name'))}")
    if md.get("deletionTimestamp"):
        out.append(f"{'Terminating:':<14}since {_s(md.get('deletionTimestamp'))}")
    for section in ("spec", "status", "data"):
        value = obj.get(section)
        if not value:
            continue
        if section == "data" and kind.kind == "Secret" and isinstance(value, dict):
            value = {k: f"<{len(v)} bytes>" if isinstance(v, str) else INVALID for k, v in value.items()}
        try:
            body = yaml.safe_dump(value, sort_keys=False, default_flow_style=False)
        except yaml.YAMLError:
            body = INVALID
        out.append(f"{section.title()}:")
        out += ["  " + ln for ln in body.rstrip().splitlines()]
    return "\n".join(out)


async def events_for(client: Client, kind: Kind, obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The Events about ``obj`` (by uid), oldest first; an empty list if they cannot be read."""
    md = mapping(obj, "metadata")
    uid = md.get("uid")
    if not isinstance(uid, str):
        return []
    ns = md.get("namespace") if isinstance(md.get("namespace"), str) and md.get("namespace") else "default"
    tenant = md.get("tenant") if isinstance(md.get("tenant"), str) and kind.scope != "cluster" else None
    try:
        lst = await client.list("events", ns, tenant=tenant, field_selector=f"involvedObject.uid={uid}")
    except (ApiError, ConnectionError):
        return []
    evs = [e for e in lst.get("items") or [] if isinstance(e, dict)]
    return sorted(evs, key=lambda e: str(e.get("lastTimestamp") or ""))


def events_text(events: list[dict[str, Any]], clock: Clock) -> str:
    if not events:
        return "Events:       <none>"
    rows = [("TYPE", "REASON", "AGE", "FROM", "MESSAGE")]
    for e in events:
        src = mapping(e, "source")
        ts = e.get("lastTimestamp") or (e.get("metadata") or {}).get("creationTimestamp")
        count = e.get("count")
        age = _age(ts, clock) + (f" (x{count})" if isinstance(count, int) and count > 1 else "")
        rows.append(
            (_s(e.get("type")), _s(e.get("reason")), age, _s(src.get("component")), _s(e.get("message")))
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows
    ]
    return "Events:\n" + "\n".join(lines)
