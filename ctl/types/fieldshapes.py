"""Merge shapes: what server-side apply needs to know about every field of every kind.

Ownership and merging (:mod:`ctl.types.fieldsets`, :mod:`ctl.types.managedfields`) do not
need types, only structure: for each field, is it a scalar (a leaf owned as one field),
an object with declared fields (granular: each field owned on its own), a map of arbitrary
keys (``labels``, ``data``: each key owned on its own), something atomic (replaced and owned
as a whole: a ``LabelSelector``, a list without a list type), a set of scalars or a list of
objects identified by key fields (``x-kubernetes-list-type: map``). :func:`shape_for`
compiles that once per kind from the schema package (:mod:`ctl.types.schema`, which
carries the ``x-kubernetes-*`` merge annotations of :mod:`ctl.types.schema.listtypes`).

Fields the schema does not describe (``x-kubernetes-preserve-unknown-fields`` objects, kinds
without a schema) get the *deduced* shape Kubernetes gives unstructured data: objects are
granular maps, lists are atomic.
"""

from __future__ import annotations

from typing import Any

from ctl.types.kinds import Kind
from ctl.types.schema import definitions
from ctl.types.schema.build import KIND_DEFINITIONS, REF_PREFIX

SCALAR, STRUCT, MAP, ATOMIC, SET, LIST_MAP, DEDUCED = range(7)


class Shape:
    """The merge structure of one field (``kind`` is one of the module constants).

    ``fields``: declared fields of a STRUCT; ``elem``: the shape of a MAP's values, of a
    STRUCT's undeclared fields, or of a SET/LIST_MAP's items; ``keys`` and ``key_defaults``:
    the key fields of a LIST_MAP's items and the defaults of those that have one.
    """

    __slots__ = ("kind", "fields", "elem", "keys", "key_defaults")

    def __init__(self, kind: int) -> None:
        self.kind = kind
        self.fields: dict[str, Shape] = {}
        self.elem: Shape | None = None
        self.keys: tuple[str, ...] = ()
        self.key_defaults: dict[str, Any] = {}

    def child(self, name: str) -> Shape:
        """The shape of field ``name`` of an object of this shape."""
        if self.kind == STRUCT:
            return self.fields.get(name) or DEDUCED_SHAPE
        if self.kind == MAP and self.elem is not None:
            return self.elem
        return DEDUCED_SHAPE

    def declared(self, name: str) -> bool:
        """True if ``name`` is a declared field (not a key of a map, which is owned as such)."""
        return self.kind == STRUCT and name in self.fields

    def item(self) -> Shape:
        return self.elem or DEDUCED_SHAPE


DEDUCED_SHAPE = Shape(DEDUCED)
SCALAR_SHAPE = Shape(SCALAR)
ATOMIC_SHAPE = Shape(ATOMIC)


class _Compiler:
    def __init__(self, defs: dict[str, dict[str, Any]]) -> None:
        self.defs = defs
        self.memo: dict[str, Shape] = {}

    def definition(self, name: str) -> Shape:
        hit = self.memo.get(name)
        if hit is not None:
            return hit
        s = self.defs.get(name)
        if s is None:
            return DEDUCED_SHAPE
        shape = Shape(STRUCT)
        self.memo[name] = shape  # filled in place, so recursive definitions terminate
        self._fill(shape, s)
        return shape

    def _fill(self, shape: Shape, s: dict[str, Any]) -> None:
        new = self.schema(s, top=True)
        shape.kind, shape.fields, shape.elem = new.kind, new.fields, new.elem
        shape.keys, shape.key_defaults = new.keys, new.key_defaults

    def schema(self, s: dict[str, Any], top: bool = False) -> Shape:
        ref = s.get("$ref")
        if isinstance(ref, str) and not top:
            return self.definition(ref[len(REF_PREFIX) :] if ref.startswith(REF_PREFIX) else ref)
        t = s.get("type")
        if t == "array":
            lt = s.get("x-kubernetes-list-type", "atomic")
            if lt == "atomic":
                return ATOMIC_SHAPE
            shape = Shape(SET if lt == "set" else LIST_MAP)
            items = s.get("items") or {}
            shape.elem = self.schema(items)
            if shape.kind == LIST_MAP:
                shape.keys = tuple(s.get("x-kubernetes-list-map-keys") or ())
                props = self._props(items)
                shape.key_defaults = {
                    k: props[k]["default"] for k in shape.keys if "default" in (props.get(k) or {})
                }
            return shape
        if t == "object" or "properties" in s:
            if s.get("x-kubernetes-map-type") == "atomic":
                return ATOMIC_SHAPE
            if "properties" in s:
                shape = Shape(STRUCT)
                shape.fields = {k: self.schema(v) for k, v in s["properties"].items() if isinstance(v, dict)}
                return shape
            addl = s.get("additionalProperties")
            if isinstance(addl, dict):
                shape = Shape(MAP)
                shape.elem = self.schema(addl)
                return shape
            return DEDUCED_SHAPE
        if not t and not s.get("x-kubernetes-int-or-string"):
            return DEDUCED_SHAPE
        return SCALAR_SHAPE

    def _props(self, items: dict[str, Any]) -> dict[str, Any]:
        ref = items.get("$ref")
        if isinstance(ref, str):
            items = self.defs.get(ref[len(REF_PREFIX) :], {})
        props = items.get("properties")
        return props if isinstance(props, dict) else {}


_COMPILER = _Compiler(definitions())
_BY_KIND: dict[tuple[str, str], Shape] = {}


def shape_for(kind: Kind) -> Shape:
    """The merge shape of a whole object of ``kind`` (deduced for a kind without a schema)."""
    gvk = (kind.api_version, kind.kind)
    hit = _BY_KIND.get(gvk)
    if hit is None:
        name = KIND_DEFINITIONS.get(gvk)
        hit = _COMPILER.definition(name) if name else DEDUCED_SHAPE
        _BY_KIND[gvk] = hit
    return hit
