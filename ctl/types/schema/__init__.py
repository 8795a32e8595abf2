"""One schema per kind: the single source of truth for validation and the OpenAPI document.

Every kind of :mod:`ctl.types.kinds` has a definition here, declared in the group modules
(:mod:`.meta` for ObjectMeta and Status, :mod:`.core` for Pod, :mod:`.cluster` for
Node/Namespace/Tenant, :mod:`.config` for ConfigMap, Secret, Event, ResourceQuota, Action,
Lease, :mod:`.apps`, :mod:`.rbac`, :mod:`.network`) with the helpers of :mod:`.build`.

* :func:`check` type-checks an object against its kind's schema (compiled once into
  checker closures by :mod:`.compile`; one pass over the object) and returns the causes;
  :mod:`ctl.types.validation` calls it before its per-kind rules.
* :func:`definitions` and :func:`definition_name` are what the OpenAPI documents
  (:mod:`.openapi`) publish, so ``kubectl explain pod.spec.containers`` shows exactly the
  fields the server checks.
"""

from __future__ import annotations

from typing import Any

from ctl.types.kinds import Kind
from ctl.types.schema import apps, batch, cluster, config, core, meta, network, policy, rbac  # noqa: F401 (declare)
from ctl.types.schema.build import DEFINITIONS, KIND_DEFINITIONS, Schema
from ctl.types.schema.compile import FIELD_VALIDATION, Cause, Check, Compiler, Ctx
from ctl.types.schema.listtypes import annotate as _annotate_list_types

_annotate_list_types()  # list/map merge types for server-side apply (and the OpenAPI documents)

__all__ = [
    "FIELD_VALIDATION",
    "Cause",
    "check",
    "definition_name",
    "definitions",
]

_COMPILER = Compiler(DEFINITIONS)
_CHECKERS: dict[tuple[str, str], Check] = {
    gvk: _COMPILER.definition(name) for gvk, name in KIND_DEFINITIONS.items()
}


def definitions() -> dict[str, Schema]:
    """Every named definition (Swagger 2.0 form: ``$ref`` to ``#/definitions/NAME``)."""
    return DEFINITIONS


def definition_name(kind: Kind) -> str | None:
    """The definition of a kind (None for a kind declared without a schema)."""
    return KIND_DEFINITIONS.get((kind.api_version, kind.kind))


def check(
    kind: Kind, obj: dict[str, Any], field_validation: str | None = None, warnings: list[str] | None = None
) -> list[Cause]:
    """Type errors of ``obj`` against its kind's schema; drops nulls and (by mode) unknown fields."""
    fn = _CHECKERS.get((kind.api_version, kind.kind))
    if fn is None:
        return []
    ctx = Ctx(field_validation, warnings)
    fn(obj, "", ctx)
    return ctx.causes
