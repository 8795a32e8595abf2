"""Field sets in their wire form (``FieldsV1``), built from objects and compared between them.

A managedFields entry says which fields a manager owns as a ``FieldsV1`` tree: each key
is one step of a path and each value the subtree below it:

* ``f:NAME`` - a field of an object (or a key of a map such as ``labels``);
* ``k:{"name":"web"}`` - the item of a keyed list (``x-kubernetes-list-type: map``) whose key
  fields have these values (compact JSON, keys sorted);
* ``v:"value"`` - the item of a set (``x-kubernetes-list-type: set``) with this JSON value;
* ``i:3`` - an item by position (lists this server cannot key);
* ``.`` - the node itself is in the set, besides some of its children.

A node without children is in the set. This module works on that form directly - a
:data:`Tree` is the decoded ``fieldsV1`` dict - so storing and returning managedFields costs
nothing beyond the dicts themselves. Trees are never mutated once built; the operations
return new trees and may share unchanged subtrees.

* :func:`union`, :func:`difference`, :func:`intersection`, :func:`paths` (for messages,
  ``.spec.containers[name="web"].image``), :func:`is_tree` (checks a decoded ``fieldsV1``);
* :func:`value_set` - the fields an applied configuration sets (Kubernetes' ``ToFieldSet``):
  every leaf, every keyed-list item, every map key, atomic values as one field;
* :func:`compare` - the fields an update changed (added or modified) and the ones it
  removed, walking only where the two objects differ.

Both follow :mod:`ctl.types.fieldshapes`; a list that claims to be keyed but has items
without their keys (or duplicates) is an :class:`ItemKeyError` when ``strict`` (an apply is
refused) and is owned as one atomic field otherwise (an update is never refused over bookkeeping).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from ctl.types.fieldshapes import ATOMIC, LIST_MAP, MAP, SCALAR, SET, STRUCT, Shape

Tree = dict[str, Any]
SELF = "."


class ItemKeyError(ValueError):
    """A keyed list whose items cannot be keyed (missing key fields, duplicates)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


# ---------------------------------------------------------------------------- set algebra
def is_member(node: Tree) -> bool:
    return not node or SELF in node


def _make(member: bool, children: Tree) -> Tree | None:
    if not children:
        return {} if member else None
    if member:
        return {SELF: {}, **children}
    return children


def _union(a: Tree, b: Tree, member: bool) -> Tree | None:
    if a is b:
        return a
    children: Tree = {}
    for k, ac in a.items():
        if k == SELF:
            continue
        bc = b.get(k)
        children[k] = ac if bc is None else _union(ac, bc, is_member(ac) or is_member(bc))
    for k, bc in b.items():
        if k != SELF and k not in a:
            children[k] = bc
    return _make(member, children)


def _difference(a: Tree, b: Tree, member: bool) -> Tree | None:
    children: Tree = {}
    for k, ac in a.items():
        if k == SELF:
            continue
        bc = b.get(k)
        if bc is None:
            children[k] = ac
        else:
            d = _difference(ac, bc, is_member(ac) and not is_member(bc))
            if d is not None:
                children[k] = d
    return _make(member, children)


def _intersection(a: Tree, b: Tree, member: bool) -> Tree | None:
    children: Tree = {}
    for k, ac in a.items():
        if k == SELF:
            continue
        bc = b.get(k)
        if bc is not None:
            d = _intersection(ac, bc, is_member(ac) and is_member(bc))
            if d is not None:
                children[k] = d
    return _make(member, children)


def union(a: Tree, b: Tree) -> Tree:
    """Every field in ``a`` or ``b`` (root trees)."""
    if not a:
        return b
    if not b:
        return a
    return _union(a, b, False) or {}


def difference(a: Tree, b: Tree) -> Tree:
    """The fields of ``a`` that are not in ``b``."""
    if not a or not b:
        return a
    return _difference(a, b, False) or {}


def intersection(a: Tree, b: Tree) -> Tree:
    """The fields in both ``a`` and ``b``."""
    if not a or not b:
        return {}
    return _intersection(a, b, False) or {}


def paths(tree: Tree) -> Iterator[list[str]]:
    """Every field of a root tree, as its list of path elements (depth first, sorted)."""
    stack: list[tuple[list[str], Tree]] = [([k], v) for k, v in sorted(tree.items(), reverse=True)]
    while stack:
        prefix, node = stack.pop()
        if is_member(node):
            yield prefix
        for k in sorted((k for k in node if k != SELF), reverse=True):
            stack.append(([*prefix, k], node[k]))


def path_string(elements: list[str]) -> str:
    """A path as Kubernetes prints it: ``.spec.containers[name="web"].image``."""
    out = []
    for e in elements:
        tag, _, rest = e.partition(":")
        if tag == "f":
            out.append("." + rest)
        elif tag == "k":
            try:
                key = orjson.loads(rest)
                out.append("[" + ",".join(f"{k}={orjson.dumps(v).decode()}" for k, v in key.items()) + "]")
            except (orjson.JSONDecodeError, AttributeError):
                out.append(f"[{rest}]")
        elif tag == "v":
            out.append(f"[={rest}]")
        else:
            out.append(f"[{rest}]")
    return "".join(out)


def is_tree(v: Any, depth: int = 0) -> bool:
    """True if ``v`` is a well-formed ``fieldsV1`` tree (string keys, object values, bounded depth)."""
    if type(v) is not dict or depth > 100:
        return False
    return all(type(k) is str and is_tree(c, depth + 1) for k, c in v.items())


def count(tree: Tree) -> int:
    return sum(1 for _ in paths(tree))


# ---------------------------------------------------------------------------- path elements
def field(name: str) -> str:
    return "f:" + name


def key_element(item: Any, shape: Shape, where: str, strict: bool) -> str | None:
    """The ``k:`` element of a keyed-list item (None if it has no key and not ``strict``)."""
    if type(item) is not dict or not shape.keys:
        if strict:
            raise ItemKeyError(where, "Invalid value: the items of this list must be objects with keys")
        return None
    key: dict[str, Any] = {}
    for k in shape.keys:
        v = item.get(k, shape.key_defaults.get(k))
        if v is None:
            if strict:
                raise ItemKeyError(
                    where,
                    f'Required value: every item needs its key field "{k}" (keys: {", ".join(shape.keys)})',
                )
            return None
        key[k] = v
    return "k:" + orjson.dumps(key, option=orjson.OPT_SORT_KEYS).decode()


def value_element(v: Any) -> str:
    return "v:" + orjson.dumps(v).decode()


def list_elements(items: list[Any], shape: Shape, where: str, strict: bool) -> list[str] | None:
    """The path element of each item of a SET or LIST_MAP (None: treat the list as atomic)."""
    out: list[str] = []
    for i, item in enumerate(items):
        if shape.kind == SET:
            pe: str | None = value_element(item)
        else:
            pe = key_element(item, shape, f"{where}[{i}]", strict)
        if pe is None:
            return None
        out.append(pe)
    if len(set(out)) != len(out):
        if strict:
            dup = next(p for p in out if out.count(p) > 1)
            raise ItemKeyError(where, f"Duplicate value: {path_string([dup])}")
        return None
    return out


# ---------------------------------------------------------------------------- sets from values
def _granular(v: Any, shape: Shape) -> bool:
    return shape.kind not in (SCALAR, ATOMIC) and (
        type(v) is dict or (type(v) is list and shape.kind in (SET, LIST_MAP))
    )


def _node(v: Any, shape: Shape, member: bool, where: str, strict: bool, added: bool = False) -> Tree:
    """The node for a value: its children's fields, plus itself when ``member``.

    ``added``: the value was added by an update, where an added map (``labels``) is owned
    itself too (``.``), as Kubernetes records it; an added struct only through its fields.
    """
    if not v or not _granular(v, shape):
        return {}
    children: Tree = {}
    if type(v) is dict:
        fields = shape.fields if shape.kind == STRUCT else None
        for k, c in v.items():
            cs = fields.get(k) if fields is not None else None
            if cs is None:  # a map key, or a field the schema does not declare: owned itself
                cs = shape.child(k)
                m = True
            else:
                m = added and cs.kind == MAP
            if (type(c) is dict or type(c) is list) and c:
                children["f:" + k] = _node(c, cs, m, f"{where}.{k}" if strict else where, strict, added)
            else:
                children["f:" + k] = {}
    else:
        pes = list_elements(v, shape, where, strict)
        if pes is None:
            return {}
        item_shape = shape.item()
        for pe, item in zip(pes, v, strict=True):
            children[pe] = {} if shape.kind == SET else _node(item, item_shape, True, where, strict, added)
    return _make(member, children) or {}


def value_set(obj: dict[str, Any], shape: Shape, strict: bool = False) -> Tree:
    """The fields ``obj`` sets (a root tree); ``strict`` raises :class:`ItemKeyError` for unkeyable lists."""
    return _node(obj, shape, False, "", strict) if obj else {}


def added_set(obj: dict[str, Any], shape: Shape) -> Tree:
    """The fields a create adds: :func:`compare` of nothing with ``obj``, without the walk of nothing."""
    return _node(obj, shape, False, "", False, True) if obj else {}


# ---------------------------------------------------------------------------- comparisons
def compare(old: Any, new: Any, shape: Shape) -> tuple[Tree, Tree]:
    """(changed, removed): the fields ``new`` added or modified, and the fields it removed.

    Only subtrees that differ are walked (equal values are compared by ``==``, in C).
    """
    changed: Tree = {}
    removed: Tree = {}
    _compare(old, new, shape, changed, removed)
    return changed, removed


def _compare(old: Any, new: Any, shape: Shape, changed: Tree, removed: Tree) -> None:
    if type(old) is dict and type(new) is dict:
        for k, nv in new.items():
            pe = "f:" + k
            cs = shape.child(k)
            member = not shape.declared(k)
            if k not in old:
                member = member or cs.kind == MAP or not _granular(nv, cs)
                changed[pe] = _node(nv, cs, member, "", False, True)
                continue
            ov = old[k]
            if ov == nv:
                continue
            _compare_child(pe, ov, nv, cs, member, changed, removed)
        for k, ov in old.items():
            if k not in new:
                removed["f:" + k] = _node(ov, shape.child(k), True, "", False)
        return
    # lists of a granular shape
    ope = list_elements(old, shape, "", False)
    npe = list_elements(new, shape, "", False)
    if ope is None or npe is None:
        raise _AtomicFallback
    item_shape = shape.item()
    old_items = dict(zip(ope, old, strict=True))
    for pe, item in zip(npe, new, strict=True):
        if pe not in old_items:
            changed[pe] = {} if shape.kind == SET else _node(item, item_shape, True, "", False, True)
            continue
        o = old_items[pe]
        if o == item or shape.kind == SET:
            continue
        _compare_child(pe, o, item, item_shape, True, changed, removed)
    new_set = set(npe)
    for pe, item in old_items.items():
        if pe not in new_set:
            removed[pe] = {} if shape.kind == SET else _node(item, item_shape, True, "", False)


class _AtomicFallback(Exception):
    """A keyed list that cannot be keyed: compare it as one atomic field."""


def _compare_child(pe: str, ov: Any, nv: Any, cs: Shape, member: bool, changed: Tree, removed: Tree) -> None:
    same_container = (type(ov) is dict and type(nv) is dict) or (type(ov) is list and type(nv) is list)
    if same_container and _granular(nv, cs):
        c: Tree = {}
        r: Tree = {}
        try:
            _compare(ov, nv, cs, c, r)
        except _AtomicFallback:
            changed[pe] = {}
            return
        if c:
            changed[pe] = c
        if r:
            removed[pe] = r
        return
    changed[pe] = {}  # a leaf (or an atomic value, or a change of type) was modified
    if type(ov) in (dict, list) and _granular(ov, cs):
        sub = _node(ov, cs, False, "", False)
        if sub:
            removed[pe] = sub
