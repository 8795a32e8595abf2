"""Small constructors for the schema declarations: OpenAPI v3 schema objects as plain dicts.

The per-group modules (:mod:`.meta`, :mod:`.core`, :mod:`.apps` ...) declare every kind's
shape with these helpers, so a declaration reads like the Kubernetes type it models::

    define("io.k8s.api.core.v1.EnvVar", obj({"name": string(), "value": string()}, required=["name"]))

What they build is exactly what the OpenAPI document publishes (Swagger 2.0 definitions;
the v3 documents rewrite ``$ref`` targets) and what :mod:`.compile` turns into checker
functions, so the published schema and the validation are one source of truth.
Definitions are registered in one table, :data:`DEFINITIONS`, by their Kubernetes-style
dotted names.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
DEFINITIONS: dict[str, Schema] = {}
# (apiVersion, kind) -> definition name of every top-level kind.
KIND_DEFINITIONS: dict[tuple[str, str], str] = {}
REF_PREFIX = "#/definitions/"


def define(name: str, schema: Schema) -> Schema:
    """Register a named definition; returns a ``$ref`` to it."""
    DEFINITIONS[name] = schema
    return ref(name)


def ref(name: str) -> Schema:
    return {"$ref": REF_PREFIX + name}


def _d(schema: Schema, description: str) -> Schema:
    if description:
        schema["description"] = description
    return schema


def string(description: str = "", enum: tuple[str, ...] | list[str] | None = None, fmt: str = "") -> Schema:
    s: Schema = {"type": "string"}
    if enum:
        s["enum"] = list(enum)
    if fmt:
        s["format"] = fmt
    return _d(s, description)


def integer(description: str = "", fmt: str = "int32", minimum: int | None = None) -> Schema:
    s: Schema = {"type": "integer", "format": fmt}
    if minimum is not None:
        s["minimum"] = minimum
    return _d(s, description)


def number(description: str = "") -> Schema:
    return _d({"type": "number", "format": "double"}, description)


def boolean(description: str = "") -> Schema:
    return _d({"type": "boolean"}, description)


def timestamp(description: str = "") -> Schema:
    """An RFC 3339 time (``Time`` / ``MicroTime`` in Kubernetes): a string on the wire."""
    return _d({"type": "string", "format": "date-time"}, description)


def int_or_string(description: str = "") -> Schema:
    return _d({"x-kubernetes-int-or-string": True}, description)


def quantity(description: str = "") -> Schema:
    """A resource quantity: a JSON number or a string such as ``100m`` / ``64Mi``."""
    return _d({"x-kubernetes-int-or-string": True, "format": "quantity"}, description)


def array(items: Schema, description: str = "") -> Schema:
    return _d({"type": "array", "items": items}, description)


def strings(description: str = "") -> Schema:
    return array(string(), description)


def map_of(values: Schema, description: str = "") -> Schema:
    return _d({"type": "object", "additionalProperties": values}, description)


def string_map(description: str = "") -> Schema:
    return map_of(string(), description)


def obj(
    properties: dict[str, Schema],
    required: list[str] | None = None,
    description: str = "",
    preserve: bool = False,
) -> Schema:
    """An object with known properties; ``preserve`` keeps fields the project does not model yet."""
    s: Schema = {"type": "object", "properties": properties}
    if required:
        s["required"] = list(required)
    if preserve:
        s["x-kubernetes-preserve-unknown-fields"] = True
    return _d(s, description)


def free_object(description: str = "") -> Schema:
    """Any JSON object (its fields are not modelled)."""
    return _d({"type": "object", "x-kubernetes-preserve-unknown-fields": True}, description)


def resource(
    name: str,
    api_version: str,
    kind: str,
    body: dict[str, Schema],
    description: str,
    required: list[str] | None = None,
) -> Schema:
    """Declare a top-level kind: apiVersion, kind, metadata plus its body fields, and its GVK."""
    from ctl.types.schema.meta import OBJECT_META

    group, _, version = api_version.rpartition("/")
    props: dict[str, Schema] = {
        "apiVersion": string("The versioned schema of this representation of an object."),
        "kind": string("The REST resource this object represents."),
        "metadata": OBJECT_META,
        **body,
    }
    s = obj(props, required, description)
    s["x-kubernetes-group-version-kind"] = [{"group": group, "version": version, "kind": kind}]
    KIND_DEFINITIONS[(api_version, kind)] = name
    return define(name, s)
