"""Pure helpers of the Deployment controller (Kubernetes' ``deployment/util``).

Template hashes (``pod-template-hash``: a stable hash of the pod template plus
``status.collisionCount``, spelled in the safe alphabet Kubernetes uses), template
comparison that ignores that label (both ignore ``null`` fields, which Kubernetes treats as
absent, so ``rollout undo`` finds the old ReplicaSet again), the rolling-update fenceposts (``maxSurge`` rounds
up, ``maxUnavailable`` down, never both zero), revisions and the small accessors the
strategies share. Nothing here talks to the API, so all of it is unit-tested directly.
"""

from __future__ import annotations

import copy
import hashlib
import math
from typing import Any

import orjson

from ctl.types.meta import drop_nulls

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
CHANGE_CAUSE = "kubernetes.io/change-cause"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def safe_encode(s: str) -> str:
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in s)


def strip_hash(template: dict[str, Any]) -> dict[str, Any]:
    """The template without its ``pod-template-hash`` label and without nulls (:func:`drop_nulls`)."""
    t = drop_nulls(copy.deepcopy(template or {}))
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return t


def template_hash(template: dict[str, Any], collision_count: int | None = None) -> str:
    """Stable short hash of a pod template (ignoring pod-template-hash), like ComputeHash."""
    data = orjson.dumps(strip_hash(template), option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += str(collision_count).encode()
    n = int.from_bytes(hashlib.sha256(data).digest()[:4], "big")
    return safe_encode(str(n))


def _normalized(t: dict[str, Any]) -> dict[str, Any]:
    t = strip_hash(t)
    md = t.setdefault("metadata", {})
    for k in ("labels", "annotations"):
        if not md.get(k):
            md.pop(k, None)
    if not md:
        t.pop("metadata", None)
    return t


def equal_ignore_hash(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return _normalized(a) == _normalized(b)


def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"invalid value {value!r}: must be an integer or a percentage")
    if isinstance(value, int):
        return value
    s = str(value).strip()
    if s.endswith("%"):
        try:
            p = float(s[:-1])
        except ValueError:
            raise ValueError(f"invalid value {value!r}: must be an integer or a percentage") from None
        v = p * total / 100.0
        return int(math.ceil(v)) if round_up else int(math.floor(v))
    try:
        return int(s)
    except ValueError:
        raise ValueError(f"invalid value {value!r}: must be an integer or a percentage") from None


def is_rolling(d: dict[str, Any]) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def replicas_of(obj: dict[str, Any]) -> int:
    r = (obj.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def fenceposts(d: dict[str, Any]) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved against spec.replicas, as ResolveFenceposts."""
    ru = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    n = replicas_of(d)
    surge = int_or_percent(ru.get("maxSurge", "25%"), n, True)
    unavailable = int_or_percent(ru.get("maxUnavailable", "25%"), n, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(d: dict[str, Any]) -> int:
    n = replicas_of(d)
    if not is_rolling(d) or n == 0:
        return 0
    return min(fenceposts(d)[1], n)


def max_surge(d: dict[str, Any]) -> int:
    return fenceposts(d)[0] if is_rolling(d) else 0


def revision(obj: dict[str, Any]) -> int:
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def st(obj: dict[str, Any], field: str) -> int:
    return int((obj.get("status") or {}).get(field) or 0)


def created(obj: dict[str, Any]) -> tuple[str, str]:
    return (obj["metadata"].get("creationTimestamp") or "", obj["metadata"]["name"])


def new_rs_replicas(d: dict[str, Any], old: list[dict[str, Any]], new_rs: dict[str, Any] | None) -> int:
    """How many replicas the new ReplicaSet may have now (NewRSNewReplicas): all of them for
    Recreate; for RollingUpdate as many more as ``replicas + maxSurge`` leaves room for."""
    want = replicas_of(d)
    cur_new = replicas_of(new_rs) if new_rs else 0
    if not is_rolling(d):
        return want
    all_rs = old + ([new_rs] if new_rs else [])
    current = sum(max(replicas_of(r), st(r, "replicas")) for r in all_rs)
    max_total = want + max_surge(d)
    if current >= max_total:
        return cur_new
    up = min(max_total - current, want - cur_new)
    return cur_new + max(up, 0)
