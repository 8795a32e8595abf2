"""Server-side apply: ``PATCH`` with ``Content-Type: application/apply-patch+yaml``.

The registry's patch verb hands apply requests to :func:`apply_patch`, which

* checks the request as kube-apiserver does: ``fieldManager`` is required (422 ``Invalid``
  PatchOptions, the same body kube-apiserver answers), ``force`` is only for apply, the body
  is one object of the addressed kind with ``apiVersion`` and ``kind`` and without
  ``metadata.managedFields`` (400), a ``metadata.resourceVersion`` in it is a precondition;
* merges the configuration with :func:`ctl.types.managedfields.apply` - into the live object,
  or into nothing (create-on-apply: answered 201) - and writes the result through the
  registry's create or update, so defaulting, validation, admission, dry runs and the
  compare-and-swap are exactly those of every other write; a lost race is retried with a
  fresh read, a conflict with other managers is a 409 ``Conflict`` whose causes name each
  field (``.spec.replicas``) and its manager (``FieldManagerConflict``), as kubectl expects;
* answers an apply that changes nothing with the live object, without writing.

Every other write records ``Update`` ownership for its manager: the request's
``fieldManager``, else the first word of the User-Agent (``kubectl``, ``OpenAPI-Generator``),
as kube-apiserver derives it. :func:`write_options` reads both once per request into the
:data:`WRITE_OPTIONS` context variable, which the registry consults (``app.py`` sets it, as it
sets fieldValidation); writes made by the server itself are recorded as :data:`SERVER_MANAGER`.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ctl.apiserver import status as st
from ctl.apiserver.status import APIError
from ctl.types import managedfields, meta, validation
from ctl.types.fieldsets import ItemKeyError
from ctl.types.kinds import Kind
from ctl.types.patch import APPLY
from ctl.types.validation import Cause

if TYPE_CHECKING:
    from ctl.apiserver.params import Params
    from ctl.apiserver.registry import Registry

SERVER_MANAGER = "centaurus-apiserver"
MAX_MANAGER = 128
_TRUE = ("1", "t", "T", "true", "TRUE", "True")
_FALSE = ("0", "f", "F", "false", "FALSE", "False")


@dataclass
class WriteOptions:
    """Who a write is by (for managedFields) and the apply options of the request."""

    manager: str = SERVER_MANAGER  # the explicit fieldManager, else derived from the User-Agent
    field_manager: str | None = None  # the fieldManager parameter as sent
    force: bool | None = None  # the force parameter (None: absent)
    created: bool = False  # set by an apply that created the object (answered 201)


WRITE_OPTIONS: ContextVar[WriteOptions | None] = ContextVar("centaurus_write_options", default=None)


def current() -> WriteOptions:
    """The write options of the running request (the server's own when there is none)."""
    return WRITE_OPTIONS.get() or WriteOptions()


def manager_from_user_agent(user_agent: str | None) -> str:
    """kube-apiserver's default manager: the User-Agent up to its first ``/`` (at most 128 characters)."""
    if not user_agent:
        return ""
    name = user_agent.split("/", 1)[0][:MAX_MANAGER]
    return name if name.isprintable() else ""


def write_options(params: Params, headers: Mapping[str, str]) -> WriteOptions:
    """Parse ``fieldManager`` and ``force`` of a write request (400 for a ``force`` that is not a boolean)."""
    raw = params.extra.get("force")
    force: bool | None = None
    if raw is not None:
        if raw in _TRUE or raw == "":
            force = True
        elif raw in _FALSE:
            force = False
        else:
            raise st.bad_request(
                f"invalid value for the query parameter force: {raw[:50]!r}: must be true or false"
            )
    fm = params.field_manager or None
    manager = fm if fm is not None else manager_from_user_agent(headers.get("User-Agent"))
    return WriteOptions(manager=manager, field_manager=fm, force=force)


def is_apply(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == APPLY


def _patch_options_invalid(field: str, reason: str, message: str) -> APIError:
    """422 for PatchOptions, worded as kube-apiserver words it."""
    return APIError(
        422,
        f'PatchOptions.meta.k8s.io "" is invalid: {field}: {message}',
        "Invalid",
        {
            "group": "meta.k8s.io",
            "kind": "PatchOptions",
            "name": "",
            "causes": [{"reason": reason, "message": message, "field": field}],
        },
    )


def check_patch_options(content_type: str) -> None:
    """The PatchOptions rules of a non-apply patch: ``force`` may not be given."""
    if not is_apply(content_type) and current().force is not None:
        raise _patch_options_invalid(
            "force", "FieldValueForbidden", "Forbidden: may not be specified for non-apply patch"
        )


def _check_body(kind: Kind, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise st.bad_request(
            "an apply patch must be one object (YAML or JSON) with apiVersion, kind and metadata"
        )
    av, k = body.get("apiVersion"), body.get("kind")
    if not av or not k:
        missing = "apiVersion" if not av else "kind"
        raise st.bad_request(
            f"the applied object has no {missing}; an apply patch names its apiVersion and kind"
        )
    md = body.get("metadata")
    if md is not None and not isinstance(md, dict):
        raise st.bad_request("metadata of the applied object must be an object")
    if isinstance(md, dict) and md.get("managedFields") is not None:
        raise st.bad_request("metadata.managedFields must be nil")
    return body


def _same_after_defaults(kind: Kind, live: dict[str, Any], new: dict[str, Any]) -> bool:
    """True if ``new``, once defaulted, is ``live`` with the same owners (only times differ).

    Write-only fields (a Secret's ``stringData``) reappear in every merge; defaulting folds
    them away again, so re-applying such a manifest does not write.
    """
    c = copy.deepcopy(new)
    validation.default(kind, c)

    def body(o: dict[str, Any]) -> dict[str, Any]:
        md = {k: v for k, v in o.get("metadata", {}).items() if k not in ("managedFields", "resourceVersion")}
        return {**o, "metadata": md}

    def owners(o: dict[str, Any]) -> list[tuple[str, str, str, bytes]]:
        return sorted(
            (
                e.get("manager", ""),
                e.get("operation", ""),
                e.get("subresource", ""),
                orjson.dumps(e.get("fieldsV1"), option=orjson.OPT_SORT_KEYS),
            )
            for e in o.get("metadata", {}).get("managedFields") or []
        )

    return body(c) == body(live) and owners(c) == owners(live)


def conflict_error(kind: Kind, name: str, err: managedfields.ApplyConflict) -> APIError:
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f"conflict with {managedfields.manager_label(entry)}",
            "field": path,
        }
        for entry, paths in err.conflicts
        for path in paths
    ]
    return APIError(
        409,
        err.args[0],
        "Conflict",
        {"name": name, "group": kind.group, "kind": kind.plural, "causes": causes[: st.MAX_CAUSES * 5]},
    )


async def apply_patch(
    registry: Registry,
    kind: Kind,
    tenant: str,
    namespace: str | None,
    name: str,
    body: Any,
    subresource: str | None,
    dry_run: bool,
) -> dict[str, Any]:
    """Server-side apply of ``body`` to the named object (created if it does not exist)."""
    opts = current()
    if not opts.field_manager:
        raise _patch_options_invalid(
            "fieldManager", "FieldValueRequired", "Required value: is required for apply patch"
        )
    if subresource not in (None, "status"):
        raise APIError(
            405,
            f"apply is not supported on {kind.plural}/{subresource}; apply the object itself",
            "MethodNotAllowed",
        )
    config = _check_body(kind, body)
    registry._check_identity(kind, config, tenant, namespace, name)
    pinned = config["metadata"].get("resourceVersion")
    sub = subresource or ""
    for attempt in range(8):
        live = registry._get_cached(kind, tenant, namespace, name) if attempt == 0 else None
        if live is None:
            live = await registry.get_fresh(kind, tenant, namespace, name)
        try:
            if live is None:
                if sub or pinned:
                    raise registry._not_found(kind, name)
                new = managedfields.apply(
                    kind, None, config, opts.field_manager, bool(opts.force), sub, meta.now_rfc3339()
                )
                assert new is not None
                created = await registry.create(
                    kind, tenant, namespace, new, dry_run=dry_run, record_fields=False
                )
                opts.created = True
                return created
            if pinned and pinned != live["metadata"].get("resourceVersion"):
                raise st.conflict(kind.plural, name, kind.group)
            new = managedfields.apply(
                kind, live, config, opts.field_manager, bool(opts.force), sub, meta.now_rfc3339()
            )
            if new is None or _same_after_defaults(kind, live, new):
                return live  # nothing changes: no write, as kube-apiserver skips no-op updates
            return await registry.update(
                kind,
                tenant,
                namespace,
                name,
                new,
                subresource,
                old=live,
                dry_run=dry_run,
                record_fields=False,
            )
        except managedfields.ApplyConflict as e:
            raise conflict_error(kind, name, e) from None
        except ItemKeyError as e:
            raise st.invalid(kind.kind, name, [Cause(e.path.lstrip("."), e.message)], kind.group) from None
        except APIError as e:
            retry = (
                (e.code == 409 and e.reason in ("Conflict", "AlreadyExists")) and not pinned and attempt < 7
            )
            if not retry:
                raise
            await asyncio.sleep(0.005 * (attempt + 1))
    raise st.conflict(kind.plural, name, kind.group)
