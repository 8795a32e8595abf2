"""Object metadata helpers: names, timestamps, uids, hash keys, owner references and object keys.

Names follow Kubernetes: most kinds use DNS-1123 subdomains (lowercase alphanumerics,
'-' and '.', at most 253 characters); namespaces, tenants and a few others use
DNS-1123 labels (no dots, at most 63). ``hashKey`` is a stable 63-bit hash of the uid
that lets several controller instances split the objects among themselves.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from datetime import UTC, datetime
from typing import Any

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def dns1123_label_error(name: str) -> str | None:
    if not name:
        return "must not be empty"
    if len(name) > 63:
        return f"must be no more than 63 characters (got {len(name)})"
    if not _LABEL.match(name):
        return (
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
            "and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc')"
        )
    return None


def dns1123_subdomain_error(name: str) -> str | None:
    if not name:
        return "must not be empty"
    if len(name) > 253:
        return f"must be no more than 253 characters (got {len(name)})"
    if not _SUBDOMAIN.match(name):
        return (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'example.com')"
        )
    return None


def label_key_error(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and dns1123_subdomain_error(prefix):
        return f"label key {key!r}: prefix must be a DNS subdomain"
    if not name or len(name) > 63 or not _QUALIFIED.match(name):
        return f"label key {key!r}: name part must be 1-63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
    return None


def label_value_error(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"label value {value!r} must be a string"
    if value and (len(value) > 63 or not _QUALIFIED.match(value)):
        return f"label value {value!r}: must be at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
    return None


_stamp: tuple[int, str] = (0, "")
_UUID_CLEAR = ~((0xF << 76) | (0xC << 60)) & ((1 << 128) - 1)  # version nibble, variant bits
_UUID_V4 = (0x4 << 76) | (0x8 << 60)


def rfc3339(t: float) -> str:
    """A Unix time as Kubernetes writes timestamps: UTC, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def now_rfc3339() -> str:
    """The current UTC time to the second, as Kubernetes writes timestamps (cached per second)."""
    global _stamp
    sec = int(time.time())
    if _stamp[0] != sec:
        _stamp = (sec, rfc3339(sec))
    return _stamp[1]


_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str) -> float:
    """Seconds in a duration as kubectl takes them: ``40s``, ``5m``, ``1m30s``, ``300ms``,
    ``24h``, ``30d`` or a plain number of seconds. Raises ValueError saying what is accepted."""
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(t)
    if not parts or "".join(a + b for a, b in parts) != t:
        raise ValueError(f"invalid duration {text!r}: use e.g. 40s, 5m, 1m30s, 24h")
    return sum(float(a) * _DURATION_UNITS[b] for a, b in parts)


def parse_rfc3339(value: str) -> float:
    return datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()


def new_uid() -> str:
    """A random (version 4) UUID string, without building a :class:`uuid.UUID`.

    UIDs must be unique, not secret, so the bits come from :mod:`random` (seeded from the
    OS, and re-seeded in forked children) instead of one ``urandom`` system call each.
    """
    h = f"{(random.getrandbits(128) & _UUID_CLEAR) | _UUID_V4:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def hash_key(uid: str) -> int:
    return int.from_bytes(hashlib.sha256(uid.encode()).digest()[:8], "big") >> 1


def owner_reference(obj: dict[str, Any], controller: bool = True, block: bool = True) -> dict[str, Any]:
    md = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": md["name"],
        "uid": md["uid"],
        "controller": controller,
        "blockOwnerDeletion": block,
    }


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def object_key(obj: dict[str, Any]) -> str:
    """``TENANT/NAMESPACE/NAME`` of an object, the key informers and work queues use.

    A missing (or null) tenant or namespace is the empty string, so a cluster-scoped Node is
    ``//NAME`` and a tenant-scoped Namespace ``TENANT//NAME``. It never raises, not even on a
    malformed object whose metadata is not a mapping, so that one bad object in a watch
    cannot stop an informer.
    """
    md = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(md, dict):
        md = {}
    return f"{md.get('tenant') or ''}/{md.get('namespace') or ''}/{md.get('name') or ''}"


def sibling_key(obj: dict[str, Any], name: str) -> str:
    """:func:`object_key` of the object called ``name`` in ``obj``'s tenant and namespace (an owner, a child)."""
    tenant, namespace, _ = object_key(obj).split("/", 2)
    return f"{tenant}/{namespace}/{name}"


def drop_nulls(value: Any) -> Any:
    """``value`` without the ``null`` members of its objects, at any depth.

    In Kubernetes a ``null`` field and a missing one are the same thing (they decode to the
    same Go struct), and clients send nulls: ``kubectl rollout undo`` copies a ReplicaSet's
    template back with ``metadata.creationTimestamp: null``. Hashes and comparisons of pod
    templates go through this, so such a template is the same template.
    """
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value
