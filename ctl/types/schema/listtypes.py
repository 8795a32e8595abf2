"""How lists and maps merge: ``x-kubernetes-list-type``, ``-list-map-keys`` and ``-map-type`` per field.

Server-side apply (:mod:`ctl.types.managedfields`) needs to know, for every list of every
kind, whether it is *atomic* (replaced as a whole and owned as one field: the default, as in
Kubernetes), a *set* of scalars (``finalizers``), or a *map* whose items are identified by
key fields (containers by ``name``, container ports by ``containerPort`` and ``protocol``).
Objects are granular (each field owned on its own) unless marked ``atomic`` (a
``LabelSelector`` is replaced as a whole).

The group modules declare shapes; this module adds the merge information to the declared
definitions in one table, after they are all declared (:func:`annotate`, called by the
package), so the OpenAPI documents publish it exactly where kube-apiserver's do and the
apply code reads it from the same schema objects. Key fields that Kubernetes defaults
(``protocol: TCP``) carry their ``default`` so an applied item without them still has a key.
Every ``conditions`` list of objects with a ``type`` is a map keyed by ``type``.
"""

from __future__ import annotations

from typing import Any

from ctl.types.schema.build import DEFINITIONS, REF_PREFIX, Schema

C = "io.k8s.api.core.v1."
M = "io.k8s.apimachinery.pkg.apis.meta.v1."

# definition -> property -> ("map", keys) | ("set",) | ("atomic",)
LIST_TYPES: dict[str, dict[str, tuple[Any, ...]]] = {
    M + "ObjectMeta": {"ownerReferences": ("map", ["uid"]), "finalizers": ("set",)},
    C + "PodSpec": {
        "containers": ("map", ["name"]),
        "initContainers": ("map", ["name"]),
        "ephemeralContainers": ("map", ["name"]),
        "volumes": ("map", ["name"]),
        "imagePullSecrets": ("map", ["name"]),
        "hostAliases": ("map", ["ip"]),
        "topologySpreadConstraints": ("map", ["topologyKey", "whenUnsatisfiable"]),
        "tolerations": ("atomic",),
        "readinessGates": ("atomic",),
    },
    C + "Container": {
        "ports": ("map", ["containerPort", "protocol"]),
        "env": ("map", ["name"]),
        "volumeMounts": ("map", ["mountPath"]),
        "volumeDevices": ("map", ["devicePath"]),
        "command": ("atomic",),
        "args": ("atomic",),
        "envFrom": ("atomic",),
        "resizePolicy": ("atomic",),
    },
    C + "PodStatus": {"podIPs": ("map", ["ip"])},
    C + "NodeSpec": {"taints": ("atomic",), "podCIDRs": ("set",)},
    C + "NodeStatus": {"addresses": ("map", ["type"])},
}
# Objects replaced (and owned) as a whole.
ATOMIC_MAPS = (M + "LabelSelector",)
# Key fields with a Kubernetes default: definition -> property -> default.
KEY_DEFAULTS: dict[str, dict[str, Any]] = {C + "ContainerPort": {"protocol": "TCP"}}


def _items_def(prop: Schema) -> Schema | None:
    items = prop.get("items")
    if not isinstance(items, dict):
        return None
    ref = items.get("$ref")
    if isinstance(ref, str) and ref.startswith(REF_PREFIX):
        return DEFINITIONS.get(ref[len(REF_PREFIX) :])
    return items


def _set_list_type(prop: Schema, spec: tuple[Any, ...]) -> None:
    prop["x-kubernetes-list-type"] = spec[0]
    if spec[0] == "map":
        prop["x-kubernetes-list-map-keys"] = list(spec[1])


def _conditions(schema: Schema, seen: set[int]) -> None:
    """Mark every ``conditions`` list of typed items (reached from ``schema``) as a map by ``type``."""
    if id(schema) in seen:
        return
    seen.add(id(schema))
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        if prop.get("type") == "array":
            item = _items_def(prop)
            if (
                name == "conditions"
                and item is not None
                and "type" in (item.get("properties") or {})
                and "x-kubernetes-list-type" not in prop
            ):
                _set_list_type(prop, ("map", ["type"]))
            if item is not None and "$ref" not in (prop.get("items") or {}):
                _conditions(item, seen)
        elif prop.get("type") == "object" and "$ref" not in prop:
            _conditions(prop, seen)


def annotate() -> None:
    """Add the merge information to the declared definitions (idempotent)."""
    for name, props in LIST_TYPES.items():
        d = DEFINITIONS.get(name)
        if d is None:
            continue
        for prop, spec in props.items():
            p = (d.get("properties") or {}).get(prop)
            if isinstance(p, dict) and p.get("type") == "array":
                _set_list_type(p, spec)
    for name in ATOMIC_MAPS:
        if name in DEFINITIONS:
            DEFINITIONS[name]["x-kubernetes-map-type"] = "atomic"
    for name, defaults in KEY_DEFAULTS.items():
        d = DEFINITIONS.get(name)
        for prop, value in defaults.items():
            p = (d or {}).get("properties", {}).get(prop)
            if isinstance(p, dict):
                p.setdefault("default", value)
    seen: set[int] = set()
    for d in list(DEFINITIONS.values()):
        _conditions(d, seen)
