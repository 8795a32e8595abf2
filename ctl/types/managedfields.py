"""``metadata.managedFields``: who owns which field, kept on every write; server-side apply's merge.

Kubernetes records, on every object, one entry per *manager* (the request's ``fieldManager``,
or a name derived from the client's User-Agent), *operation* (``Apply`` for server-side
apply, ``Update`` for every other write) and subresource, with the set of fields it owns as a
``FieldsV1`` tree (:mod:`ctl.types.fieldsets`) and when it last changed them. This module is
the bookkeeping, pure data in and out:

* :func:`record_write` - a create or an update: the fields it added or changed become the
  writer's (``Update``) and are taken from everyone else; removed fields are nobody's.
  Writes that change nothing leave managedFields alone. A request may send managedFields
  itself (kubectl's migration from client-side apply does): a valid, non-empty list is used,
  ``[]`` or ``[{}]`` resets them, anything else is ignored (the stored ones are kept), as
  kube-apiserver does; a subresource write never takes them from the request.
* :func:`apply` - server-side apply of an applied configuration to the live object (or to
  nothing: create-on-apply). The configuration is merged into the live object following the
  kind's merge shapes (:mod:`ctl.types.fieldshapes`: keyed lists merge item by item, atomic
  values are replaced); the manager's new set is what the configuration sets; fields the
  manager applied last time but no longer applies are removed unless another manager owns
  them; a field another manager owns whose value would change is a conflict
  (:class:`ApplyConflict`) unless ``force``, which moves its ownership to the applier.

Not tracked (as in Kubernetes): ``apiVersion``, ``kind`` and the server-set metadata
(:data:`UNTRACKED_METADATA`). Writes to the main resource of a kind with a ``status``
subresource do not own ``status``; writes to ``status`` own only ``status``.
At most :data:`MAX_UPDATE_MANAGERS` Update entries are kept: older ones are merged into
``ancient-changes``.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from ctl.types import fieldsets as fs
from ctl.types.fieldsets import ItemKeyError, Tree
from ctl.types.fieldshapes import ATOMIC, LIST_MAP, SCALAR, SET, Shape, shape_for
from ctl.types.kinds import Kind

APPLY, UPDATE = "Apply", "Update"
UNTRACKED_METADATA = frozenset(
    {
        "name",
        "namespace",
        "tenant",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "managedFields",
        "hashKey",
    }
)
MAX_UPDATE_MANAGERS = 10
ANCIENT = "ancient-changes"
BEFORE_FIRST_APPLY = "before-first-apply"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
KUBECTL = "kubectl"

Obj = dict[str, Any]
Key = tuple[str, str, str]  # (manager, operation, subresource)
Managers = dict[Key, Obj]  # key -> the wire entry


class ApplyConflict(Exception):
    """Fields the apply would change that other managers own: ``(entry, paths)`` per manager."""

    def __init__(self, conflicts: list[tuple[Obj, list[str]]], fields: Tree | None = None) -> None:
        self.conflicts = conflicts
        self.fields = fields or {}  # all conflicting fields, as one set
        super().__init__(conflict_message(conflicts))


def manager_label(entry: Obj) -> str:
    """A manager as Kubernetes names it in conflicts: ``"kubectl"`` or ``"x" using apps/v1``."""
    out = f'"{entry.get("manager", "")}"'
    if entry.get("subresource"):
        out += f' with subresource "{entry["subresource"]}"'
    if entry.get("operation") == UPDATE:
        out += f" using {entry.get('apiVersion', '')}"
    return out


def conflict_message(conflicts: list[tuple[Obj, list[str]]]) -> str:
    n = sum(len(p) for _, p in conflicts)
    if n == 1:
        entry, p = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {manager_label(entry)}: {p[0]}"
    lines = []
    for entry, ps in sorted(conflicts, key=lambda c: manager_label(c[0])):
        lines.append(f"conflicts with {manager_label(entry)}:")
        lines.extend(f"- {p}" for p in ps)
    return f"Apply failed with {n} conflicts: " + "\n".join(lines)


# ---------------------------------------------------------------------------- entries
def _key(e: Obj) -> Key:
    return (e.get("manager", ""), e.get("operation", ""), e.get("subresource", ""))


def decode(entries: Any) -> Managers | None:
    """The entries of a managedFields list (None if it is not a valid one)."""
    if type(entries) is not list:
        return None
    out: Managers = {}
    for e in entries:
        if (
            type(e) is not dict
            or e.get("operation") not in (APPLY, UPDATE)
            or type(e.get("manager", "")) is not str
            or e.get("fieldsType", "FieldsV1") != "FieldsV1"
            or not fs.is_tree(e.get("fieldsV1", {}))
        ):
            return None
        k = _key(e)
        if k in out:
            return None
        out[k] = e
    return out


def _stored(obj: Obj | None) -> Managers:
    """The managers of a stored object (trusted: written by this module)."""
    mf = (obj or {}).get("metadata", {}).get("managedFields")
    if not mf or type(mf) is not list:
        return {}
    return {_key(e): e for e in mf if type(e) is dict}


def _sort_key(e: Obj) -> tuple[str, str, str, str, str]:
    return (
        e.get("operation", ""),
        e.get("time", ""),
        e.get("manager", ""),
        e.get("apiVersion", ""),
        e.get("subresource", ""),
    )


def encode(managers: Managers) -> list[Obj]:
    """Entries in Kubernetes' order: Apply before Update, then oldest first, then by manager."""
    return sorted(managers.values(), key=_sort_key)


def entry(manager: str, operation: str, api_version: str, fields: Tree, now: str, sub: str = "") -> Obj:
    e: Obj = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }
    if sub:
        e["subresource"] = sub
    return e


def _with_fields(e: Obj, fields: Tree) -> Obj:
    return {**e, "fieldsV1": fields}


def _fields(e: Obj | None) -> Tree:
    f = (e or {}).get("fieldsV1")
    return f if type(f) is dict else {}


def _cap(managers: Managers, now: str) -> None:
    """Merge the oldest Update entries into ``ancient-changes`` beyond :data:`MAX_UPDATE_MANAGERS`."""
    updates = [k for k, e in managers.items() if e.get("operation") == UPDATE]
    if len(updates) <= MAX_UPDATE_MANAGERS:
        return
    ak: Key = (ANCIENT, UPDATE, "")
    old = sorted((k for k in updates if k != ak), key=lambda k: managers[k].get("time", ""))
    excess = len(updates) - MAX_UPDATE_MANAGERS + (0 if ak in managers else 1)
    merged = _fields(managers.get(ak))
    api_version = ""
    for k in old[:excess]:
        e = managers.pop(k)
        merged = fs.union(merged, _fields(e))
        api_version = e.get("apiVersion", api_version)
    prev = managers.get(ak)
    managers[ak] = entry(ANCIENT, UPDATE, (prev or {}).get("apiVersion", api_version), merged, now)


def _disown(managers: Managers, keys: list[Key], changed: Tree, removed: Tree) -> None:
    """Take the changed and removed fields away from the managers ``keys`` (dropping emptied ones)."""
    for k in keys:
        e = managers[k]
        f = fs.difference(fs.difference(_fields(e), changed), removed)
        if f is not _fields(e):
            if f:
                managers[k] = _with_fields(e, f)
            else:
                del managers[k]


# ---------------------------------------------------------------------------- tracked view
def tracked(kind: Kind, obj: Obj | None, subresource: str = "") -> Obj:
    """The part of ``obj`` whose fields have owners (a shallow view; never mutate it)."""
    if not obj:
        return {}
    if subresource == "status":
        st = obj.get("status")
        return {"status": st} if st is not None else {}
    view = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    if not subresource and "status" in kind.subresources:
        view.pop("status", None)
    md = view.get("metadata")
    if type(md) is dict:
        md = {k: v for k, v in md.items() if k not in UNTRACKED_METADATA}
        if md:
            view["metadata"] = md
        else:
            del view["metadata"]
    return view


# ---------------------------------------------------------------------------- updates
def _request_managers(incoming: Any, old: Obj | None) -> Managers:
    """The managers a non-subresource write starts from (see the module docstring)."""
    old_mf = (old or {}).get("metadata", {}).get("managedFields")
    if incoming is None or incoming is old_mf or (old_mf is not None and incoming == old_mf):
        return _stored(old)
    if type(incoming) is list and (not incoming or incoming == [{}]):
        return {}
    decoded = decode(incoming)
    return decoded if decoded else _stored(old)


def record_write(
    kind: Kind,
    old: Obj | None,
    new: Obj,
    incoming: Any,
    manager: str,
    subresource: str,
    now: str,
) -> None:
    """Set ``new``'s managedFields for a create (``old`` None) or update by ``manager``.

    ``incoming`` is the managedFields the request body carried (None if it had none).
    """
    md = new.setdefault("metadata", {})
    shape = shape_for(kind)
    if old is None and not incoming:  # the create hot path: one walk of the new object, one entry
        own = fs.added_set(tracked(kind, new, subresource), shape)
        if own:
            md["managedFields"] = [entry(manager, UPDATE, kind.api_version, own, now, subresource)]
        else:
            md.pop("managedFields", None)
        return
    managers = _stored(old) if subresource else _request_managers(incoming, old)
    changed, removed = fs.compare(tracked(kind, old, subresource), tracked(kind, new, subresource), shape)
    if changed or removed:
        _disown(managers, list(managers), changed, removed)
        key: Key = (manager, UPDATE, subresource)
        own = fs.union(_fields(managers.get(key)), changed)
        if own:
            managers[key] = entry(manager, UPDATE, kind.api_version, own, now, subresource)
        _cap(managers, now)
    if managers:
        md["managedFields"] = encode(managers)
    else:
        md.pop("managedFields", None)


# ---------------------------------------------------------------------------- apply
def apply(
    kind: Kind,
    live: Obj | None,
    config: Obj,
    manager: str,
    force: bool,
    subresource: str,
    now: str,
) -> Obj | None:
    """The object server-side apply makes of ``config`` (None: nothing would change).

    ``live`` is the stored object (None: create-on-apply); neither argument is modified.
    Raises :class:`ApplyConflict` and :class:`~ctl.types.fieldsets.ItemKeyError`.

    Moving from client-side to server-side apply works as in Kubernetes: conflicts only on
    fields the object's ``last-applied-configuration`` annotation lists are no conflicts
    (the apply takes them over), and an apply by ``kubectl`` keeps that annotation in step
    with what it applied, so a later client-side apply computes the right patch.
    """
    try:
        out = _apply(kind, live, config, manager, force, subresource, now)
    except ApplyConflict as e:
        allowed = _last_applied_fields(kind, live)
        if allowed is None or fs.difference(e.fields, allowed):
            raise
        out = _apply(kind, live, config, manager, True, subresource, now)
    if out is not None and live is not None and manager == KUBECTL:
        annotations = out.get("metadata", {}).get("annotations")
        if type(annotations) is dict and LAST_APPLIED in annotations:
            annotations[LAST_APPLIED] = _last_applied_of(config)
    return out


def _last_applied_fields(kind: Kind, live: Obj | None) -> Tree | None:
    text = ((live or {}).get("metadata", {}).get("annotations") or {}).get(LAST_APPLIED)
    if not text or type(text) is not str:
        return None
    try:
        last = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return fs.value_set(tracked(kind, last), shape_for(kind)) if type(last) is dict else None


def _last_applied_of(config: Obj) -> str:
    c = dict(config)
    md = dict(c.get("metadata") or {})
    md.pop("tenant", None)
    ann = {k: v for k, v in (md.get("annotations") or {}).items() if k != LAST_APPLIED}
    if ann:
        md["annotations"] = ann
    else:
        md.pop("annotations", None)
    c["metadata"] = md
    return orjson.dumps(c).decode()


def _apply(
    kind: Kind, live: Obj | None, config: Obj, manager: str, force: bool, subresource: str, now: str
) -> Obj | None:
    shape = shape_for(kind)
    cfg_view = tracked(kind, config, subresource)
    new_set = fs.value_set(cfg_view, shape, strict=True)
    key: Key = (manager, APPLY, subresource)
    if live is None:
        merged = copy.deepcopy(config)
        if not subresource and "status" in kind.subresources:
            merged.pop("status", None)
        merged.setdefault("metadata", {})["managedFields"] = (
            [entry(manager, APPLY, kind.api_version, new_set, now, subresource)] if new_set else []
        )
        return merged
    managers = _stored(live)
    if not managers:
        before = fs.value_set(tracked(kind, live), shape)
        if before:
            managers[(BEFORE_FIRST_APPLY, UPDATE, "")] = entry(
                BEFORE_FIRST_APPLY, UPDATE, kind.api_version, before, now
            )
    merged = copy.deepcopy(live)
    _merge_into(merged, cfg_view, shape)
    previous = managers.get(key)
    others = {k: e for k, e in managers.items() if k != key}
    last = _fields(previous)
    if last:
        owned_by_others: Tree = {}
        for e in others.values():
            owned_by_others = fs.union(owned_by_others, _fields(e))
        stale = fs.difference(fs.difference(last, new_set), owned_by_others)
        if stale:
            _prune(merged, stale, shape, owned_by_others)
    changed, removed = fs.compare(tracked(kind, live, subresource), tracked(kind, merged, subresource), shape)
    conflicts: list[tuple[Obj, Tree]] = []
    for e in others.values():
        c = fs.intersection(_fields(e), changed)
        if c:
            conflicts.append((e, c))
    if conflicts and not force:
        every: Tree = {}
        for _, c in conflicts:
            every = fs.union(every, c)
        raise ApplyConflict([(e, [fs.path_string(p) for p in fs.paths(c)]) for e, c in conflicts], every)
    _disown(managers, list(others), changed, removed)
    if previous is not None and not changed and not removed and last == new_set and managers == _stored(live):
        return None  # nothing changes: no write
    when = now if (changed or removed or previous is None or last != new_set) else previous.get("time", now)
    if new_set:
        managers[key] = entry(manager, APPLY, kind.api_version, new_set, when, subresource)
    else:
        managers.pop(key, None)
    merged.setdefault("metadata", {})["managedFields"] = encode(managers)
    return merged


def _merge_into(live: Obj, cfg: Obj, shape: Shape) -> None:
    for k, cv in cfg.items():
        if cv is None:
            live.pop(k, None)
            continue
        live[k] = _merge_value(live.get(k), cv, shape.child(k))


def _merge_value(lv: Any, cv: Any, shape: Shape) -> Any:
    if shape.kind in (SCALAR, ATOMIC):
        return copy.deepcopy(cv)
    if type(cv) is dict and type(lv) is dict:
        _merge_into(lv, cv, shape)
        return lv
    if type(cv) is list and type(lv) is list and shape.kind in (SET, LIST_MAP):
        return _merge_list(lv, cv, shape)
    return copy.deepcopy(cv)


def _merge_list(lv: list[Any], cv: list[Any], shape: Shape) -> list[Any]:
    """Keyed merge: live-only items keep their place, applied items come in the applied order."""
    lpes = fs.list_elements(lv, shape, "", False)
    cpes = fs.list_elements(cv, shape, "", True)
    assert cpes is not None  # strict: raises instead
    if lpes is None:
        return copy.deepcopy(cv)
    live_by = dict(zip(lpes, lv, strict=True))
    cfg_by = dict(zip(cpes, cv, strict=True))
    item_shape = shape.item()

    def merged(pe: str) -> Any:
        if shape.kind == LIST_MAP and pe in live_by:
            return _merge_value(live_by[pe], cfg_by[pe], item_shape)
        return copy.deepcopy(cfg_by[pe])

    out: list[Any] = []
    emitted: set[str] = set()
    ci = 0
    for pe, item in zip(lpes, lv, strict=True):
        if pe not in cfg_by:
            out.append(item)
            continue
        if pe in emitted:
            continue
        while ci < len(cpes):
            cp = cpes[ci]
            ci += 1
            if cp in emitted:
                continue
            out.append(merged(cp))
            emitted.add(cp)
            if cp == pe:
                break
    out.extend(merged(cp) for cp in cpes[ci:] if cp not in emitted)
    return out


def _prune(v: Any, remove: Tree, shape: Shape, keep: Tree) -> None:
    """Remove the fields of ``remove`` from ``v``, keeping what ``keep`` (other owners) holds under them."""
    if type(v) is dict:
        for pe, sub in remove.items():
            if not pe.startswith("f:"):
                continue
            k = pe[2:]
            if k not in v:
                continue
            ks = keep.get(pe)
            if fs.is_member(sub) and ks is None:
                del v[k]
                continue
            c = v[k]
            if type(c) in (dict, list) and c:
                _prune(c, sub, shape.child(k), ks or {})
                if not c and ks is None:
                    del v[k]
        return
    if type(v) is not list or shape.kind not in (SET, LIST_MAP):
        return
    pes = fs.list_elements(v, shape, "", False)
    if pes is None:
        return
    item_shape = shape.item()
    out = []
    for pe, item in zip(pes, v, strict=True):
        sub = remove.get(pe)
        ks = keep.get(pe)
        if sub is None:
            out.append(item)
            continue
        if fs.is_member(sub) and ks is None:
            continue
        if type(item) is dict:
            # the key fields of a kept item stay, whoever owned them
            inner = {p: s for p, s in sub.items() if p[2:] not in shape.keys}
            _prune(item, inner, item_shape, ks or {})
        out.append(item)
    v[:] = out


__all__ = [
    "APPLY",
    "UPDATE",
    "ApplyConflict",
    "ItemKeyError",
    "apply",
    "conflict_message",
    "decode",
    "encode",
    "manager_label",
    "record_write",
    "tracked",
]
