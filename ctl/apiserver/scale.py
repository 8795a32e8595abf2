"""The ``scale`` subresource's shape: an ``autoscaling/v1`` Scale made from a workload.

``kubectl scale`` and the Python client read and write ``.../NAME/scale``; the registry
applies a Scale's ``spec.replicas`` to the object and answers with :func:`scale_of`.
"""

from __future__ import annotations

from typing import Any

from ctl.types.kinds import Kind
from ctl.types.selectors import LabelSelector


def scale_of(kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
    md = obj["metadata"]
    sel = (obj.get("spec") or {}).get("selector") or {}

    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": md["name"],
            "namespace": md.get("namespace"),
            "tenant": md.get("tenant"),
            "uid": md["uid"],
            "resourceVersion": md["resourceVersion"],
            "creationTimestamp": md.get("creationTimestamp"),
        },
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": str(LabelSelector.from_spec(sel)),
        },
    }
