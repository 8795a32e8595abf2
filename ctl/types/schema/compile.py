"""Schemas compiled into checker functions: one pass over an object, no schema walking per request.

:func:`compile_definition` turns a named definition of :data:`.build.DEFINITIONS` into a
closure ``check(value, path, ctx)``; nested ``$ref`` targets are compiled once and shared.
A check walks the object exactly once and, as Kubernetes does when it decodes a body:

* reports every value of the wrong JSON type as a :class:`Cause` with its field path,
  worded as the API server words schema errors
  (``spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"``);
* treats ``null`` in an object's known property as "absent" (the key is removed), so
  ``rollingUpdate: null`` is the same as leaving it out, while ``taints: [null]`` is an error;
  times (``format: date-time``) keep an explicit null, as Kubernetes renders a zero time;
* handles fields the schema does not know according to ``fieldValidation``: ``None`` keeps
  them (the server's behaviour before fieldValidation existed), ``Ignore`` drops them,
  ``Warn`` drops them and records a warning, ``Strict`` makes each one a cause; objects marked
  ``x-kubernetes-preserve-unknown-fields`` keep unknown fields in every mode;
* checks enums, integer ranges (int32/int64), quantities (through :mod:`ctl.types.quantity`)
  and required properties.

Causes are capped at :data:`MAX_CAUSES` and quoted values at :data:`MAX_VALUE_CHARS`, so an
error body stays small whatever the request held.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ctl.types.quantity import QUANTITY_PATTERN, is_quantity

MAX_CAUSES = 100
MAX_VALUE_CHARS = 80
FIELD_VALIDATION = ("Ignore", "Warn", "Strict")
_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


@dataclass(frozen=True)
class Cause:
    """One problem with one field: ``field`` is its path (``spec.containers[0].name``)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class Ctx:
    """What one check collects: causes, warnings, and how unknown fields are handled."""

    __slots__ = ("causes", "mode", "warnings", "_dropped")

    def __init__(self, mode: str | None = None, warnings: list[str] | None = None) -> None:
        self.causes: list[Cause] = []
        self.mode = mode
        self.warnings = warnings if warnings is not None else []
        self._dropped = 0

    def add(self, path: str, message: str) -> None:
        if len(self.causes) < MAX_CAUSES:
            self.causes.append(Cause(path or "<root>", message))
        elif len(self.causes) == MAX_CAUSES:
            self.causes.append(Cause("<root>", f"too many errors; only the first {MAX_CAUSES} are shown"))

    def type_error(self, path: str, value: Any, expected: str) -> None:
        t = json_type(value)
        self.add(path, f'Invalid value: "{t}": {path} in body must be of type {expected}: "{t}"')

    def unknown(self, path: str) -> bool:
        """Handle an unknown field; True if the caller must drop it."""
        if self.mode == "Strict":
            self.add(path, f'Invalid value: unknown field "{path}"')
            return False
        if self.mode == "Warn":
            if len(self.warnings) < MAX_CAUSES:
                self.warnings.append(f'unknown field "{path}"')
            return True
        return self.mode == "Ignore"


Check = Callable[[Any, str, Ctx], None]


def json_type(v: Any) -> str:
    """The JSON Schema type name of a decoded value (``null``, ``boolean``, ``integer`` ...)."""
    if v is None:
        return "null"
    t = type(v)
    if t is bool:
        return "boolean"
    if t is int:
        return "integer"
    if t is float:
        return "number"
    if t is str:
        return "string"
    if t is dict:
        return "object"
    if t is list:
        return "array"
    return t.__name__


def show(v: Any) -> str:
    """A value quoted for a message, cut to :data:`MAX_VALUE_CHARS`."""
    s = repr(v) if not isinstance(v, str) else '"' + v + '"'
    return s if len(s) <= MAX_VALUE_CHARS else s[: MAX_VALUE_CHARS - 5] + '..."'


def _any(v: Any, path: str, ctx: Ctx) -> None:
    return None


def _string(s: dict[str, Any]) -> Check:
    enum = frozenset(s.get("enum") or ())
    allowed = ", ".join(f'"{e}"' for e in s.get("enum") or ())

    def check(v: Any, path: str, ctx: Ctx) -> None:
        if type(v) is not str:
            ctx.type_error(path, v, "string")
        elif enum and v not in enum:
            ctx.add(path, f"Unsupported value: {show(v)}: supported values: {allowed}")

    return check


def _integer(s: dict[str, Any]) -> Check:
    lo, hi = _INT_RANGE.get(s.get("format", "int64"), _INT_RANGE["int64"])
    if s.get("minimum") is not None:
        lo = max(lo, int(s["minimum"]))

    def check(v: Any, path: str, ctx: Ctx) -> None:
        if type(v) is not int:
            ctx.type_error(path, v, "integer")
        elif not lo <= v <= hi:
            bound = f"greater than or equal to {lo}" if v < lo else f"less than or equal to {hi}"
            ctx.add(path, f"Invalid value: {show(v)}: {path} in body should be {bound}")

    return check


def _number(v: Any, path: str, ctx: Ctx) -> None:
    t = type(v)
    if t is not int and t is not float:
        ctx.type_error(path, v, "number")
    elif t is float and not math.isfinite(v):
        ctx.add(path, f"Invalid value: {show(v)}: {path} must be a finite number")


def _boolean(v: Any, path: str, ctx: Ctx) -> None:
    if type(v) is not bool:
        ctx.type_error(path, v, "boolean")


def _int_or_string(v: Any, path: str, ctx: Ctx) -> None:
    t = type(v)
    if t is not int and t is not str:
        ctx.type_error(path, v, "integer or string")


def _quantity(v: Any, path: str, ctx: Ctx) -> None:
    t = type(v)
    if t is not int and t is not str and t is not float:
        ctx.type_error(path, v, "integer or string")
    elif not is_quantity(v):
        ctx.add(
            path,
            f"Invalid value: {show(v)}: quantities must match the regular expression '{QUANTITY_PATTERN}'",
        )


def _array(item: Check) -> Check:
    def check(v: Any, path: str, ctx: Ctx) -> None:
        if type(v) is not list:
            ctx.type_error(path, v, "array")
            return
        for i, x in enumerate(v):
            item(x, f"{path}[{i}]", ctx)

    return check


def _map(value: Check) -> Check:
    def check(v: Any, path: str, ctx: Ctx) -> None:
        if type(v) is not dict:
            ctx.type_error(path, v, "object")
            return
        for k, x in v.items():
            if type(k) is not str:
                ctx.add(path, f"Invalid value: {show(k)}: keys must be strings")
            else:
                value(x, f"{path}[{k}]", ctx)

    return check


def _object(s: dict[str, Any], props: dict[str, Check]) -> Check:
    required = tuple(s.get("required") or ())
    # Times keep an explicit null (Kubernetes renders a zero Time as null); other nulls are absent.
    nullable = frozenset(
        k
        for k, p in (s.get("properties") or {}).items()
        if p.get("format") == "date-time" or p.get("nullable")
    )
    preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))

    def check(v: Any, path: str, ctx: Ctx) -> None:
        if type(v) is not dict:
            ctx.type_error(path, v, "object")
            return
        drop: list[Any] | None = None
        for k, x in v.items():
            f = props.get(k) if type(k) is str else None
            if f is not None:
                if x is None:  # null is "absent", as Kubernetes decodes it
                    if k not in nullable:
                        drop = [k] if drop is None else [*drop, k]
                else:
                    f(x, f"{path}.{k}" if path else k, ctx)
            elif type(k) is not str:
                ctx.add(path, f"Invalid value: {show(k)}: keys must be strings")
            elif not preserve and ctx.mode is not None and ctx.unknown(f"{path}.{k}" if path else k):
                drop = [k] if drop is None else [*drop, k]
        if drop:
            for k in drop:
                del v[k]
        for r in required:
            if r not in v:
                ctx.add(f"{path}.{r}" if path else r, "Required value")

    return check


class Compiler:
    """Compiles definitions on demand, each once (``$ref`` targets are shared closures)."""

    def __init__(self, definitions: dict[str, dict[str, Any]]) -> None:
        self.definitions = definitions
        self.memo: dict[str, Check] = {}

    def definition(self, name: str) -> Check:
        hit = self.memo.get(name)
        if hit is not None:
            return hit
        cell: list[Check] = []
        self.memo[name] = lambda v, p, c: cell[0](v, p, c)  # recursion guard while compiling
        fn = self.schema(self.definitions[name])
        cell.append(fn)
        self.memo[name] = fn
        return fn

    def schema(self, s: dict[str, Any]) -> Check:
        if "$ref" in s:
            return self.definition(s["$ref"].rsplit("/", 1)[-1])
        if s.get("x-kubernetes-int-or-string"):
            return _quantity if s.get("format") == "quantity" else _int_or_string
        t = s.get("type")
        if t == "string":
            return _string(s)
        if t == "integer":
            return _integer(s)
        if t == "number":
            return _number
        if t == "boolean":
            return _boolean
        if t == "array":
            return _array(self.schema(s.get("items") or {}))
        if t == "object":
            if "properties" in s:
                return _object(s, {k: self.schema(v) for k, v in s["properties"].items()})
            addl = s.get("additionalProperties")
            if isinstance(addl, dict):
                return _map(self.schema(addl))
            return _object(s, {}) if not s.get("x-kubernetes-preserve-unknown-fields") else _free_object
        return _any


def _free_object(v: Any, path: str, ctx: Ctx) -> None:
    if type(v) is not dict:
        ctx.type_error(path, v, "object")
