"""PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.

Strategic merge patch is what kubectl sends for built-in kinds. Its difference from a
merge patch is that some lists are merged element by element using a key (containers
by ``name``, ports by ``containerPort`` ...) and a few ``$``-directives. The lists
and keys below cover the kinds this server serves; any other list is replaced, as in
a merge patch.

This is pure data manipulation, so it lives in ``ctl.types``: the API server applies
PATCH bodies with it (``ctl.apiserver.patch`` turns :class:`PatchError` into a Status
error) and ``centaurusctl apply`` computes what the server would make of its patch.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch


class PatchError(ValueError):
    """A patch body that cannot be applied; ``code`` and ``reason`` are the HTTP answer it deserves."""

    def __init__(self, code: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason


MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "conditions": "type",
    "tolerations": "key",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "addresses": "type",
}

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def strategic_merge(target: Any, patch: Any, field: str = "") -> Any:
    if isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            p = {k: v for k, v in patch.items() if k != "$patch"}
            return copy.deepcopy(p)
        if patch.get("$patch") == "delete":
            return None
        out = copy.deepcopy(target) if isinstance(target, dict) else {}
        retain = patch.get("$retainKeys")
        for k, v in patch.items():
            if k.startswith("$setElementOrder/") or k in ("$retainKeys", "$patch"):
                continue
            if k.startswith("$deleteFromPrimitiveList/"):
                name = k.split("/", 1)[1]
                if isinstance(out.get(name), list):
                    out[name] = [x for x in out[name] if x not in v]
                continue
            if v is None:
                out.pop(k, None)
            else:
                out[k] = strategic_merge(out.get(k), v, k)
        for k, order in patch.items():
            if k.startswith("$setElementOrder/"):
                name = k.split("/", 1)[1]
                out[name] = _reorder(out.get(name), order, MERGE_KEYS.get(name))
        if isinstance(retain, list):
            out = {k: v for k, v in out.items() if k in retain}
        return out
    if isinstance(patch, list) and field in MERGE_KEYS and isinstance(target, list):
        key = MERGE_KEYS[field]
        if all(isinstance(x, dict) and key in x for x in patch) and all(isinstance(x, dict) for x in target):
            out_list = copy.deepcopy(target)
            for item in patch:
                idx = next((i for i, t in enumerate(out_list) if t.get(key) == item[key]), None)
                if item.get("$patch") == "delete":
                    if idx is not None:
                        out_list.pop(idx)
                    continue
                if idx is None:
                    out_list.append(strategic_merge({}, item, ""))
                else:
                    out_list[idx] = strategic_merge(out_list[idx], item, "")
            return out_list
    return copy.deepcopy(patch)


def _reorder(items: Any, order: list[Any], key: str | None) -> Any:
    if not isinstance(items, list):
        return items
    if key is None:
        ordered = [x for x in order if x in items]
        return ordered + [x for x in items if x not in ordered]
    pos = {}
    for i, o in enumerate(order):
        if isinstance(o, dict) and key in o:
            pos[o[key]] = i
    return sorted(items, key=lambda x: pos.get(x.get(key) if isinstance(x, dict) else None, len(pos)))


def apply_patch(content_type: str, obj: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply ``patch`` of the given Content-Type to ``obj``; raises :class:`PatchError`."""
    ct = content_type.split(";")[0].strip()
    if ct == JSON_PATCH:
        if not isinstance(patch, list):
            raise PatchError(400, "a JSON patch must be a list of operations", "BadRequest")
        try:
            result = jsonpatch.JsonPatch(patch).apply(obj)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as e:
            raise PatchError(422, f"the JSON patch could not be applied: {e}", "Invalid") from None
        if not isinstance(result, dict):
            raise PatchError(422, "the JSON patch did not produce an object", "Invalid")
        return result
    if not isinstance(patch, dict):
        raise PatchError(400, "a merge patch must be a JSON object", "BadRequest")
    if ct == MERGE_PATCH:
        out = merge_patch(obj, patch)
    elif ct == STRATEGIC:
        out = strategic_merge(obj, patch)
    else:
        raise PatchError(
            415,
            f"the patch content type {ct!r} is not supported; use {MERGE_PATCH}, {JSON_PATCH}, {STRATEGIC}"
            f" or {APPLY} (server-side apply)",
            "UnsupportedMediaType",
        )
    if not isinstance(out, dict):  # e.g. {"$patch": "delete"} at the root
        raise PatchError(422, "the patch did not produce an object", "Invalid")
    return out
