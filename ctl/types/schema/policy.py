"""Schemas of the ``policy/v1`` kinds: PodDisruptionBudget (Eviction is a body of ``pods/eviction``).

A PodDisruptionBudget bounds how many of the pods its selector matches may be down at once
through voluntary disruptions (evictions, ``kubectl drain``): ``minAvailable`` or
``maxUnavailable``, each a number or a percentage. The API server keeps ``status`` current
when it judges an eviction (:mod:`ctl.apiserver.eviction`).
"""

from __future__ import annotations

from ctl.types.schema.build import (
    array,
    define,
    int_or_string,
    integer,
    map_of,
    obj,
    resource,
    string,
    timestamp,
)
from ctl.types.schema.meta import CONDITION, DELETE_OPTIONS, LABEL_SELECTOR, OBJECT_META

P = "io.k8s.api.policy.v1."

PDB_SPEC = define(
    P + "PodDisruptionBudgetSpec",
    obj(
        {
            "minAvailable": int_or_string(
                "Pods that must stay available after an eviction (a number or N%)."
            ),
            "maxUnavailable": int_or_string(
                "Pods that may be unavailable after an eviction (a number or N%)."
            ),
            "selector": LABEL_SELECTOR,
            "unhealthyPodEvictionPolicy": string(
                "IfHealthyBudget (default) or AlwaysAllow: may not-ready pods be evicted regardless.",
                enum=("IfHealthyBudget", "AlwaysAllow"),
            ),
        },
    ),
)

PDB_STATUS = define(
    P + "PodDisruptionBudgetStatus",
    obj(
        {
            "observedGeneration": integer(fmt="int64"),
            "disruptedPods": map_of(timestamp(), "Pods evicted but not yet gone, with when."),
            "disruptionsAllowed": integer("How many more pods may be disrupted now."),
            "currentHealthy": integer(),
            "desiredHealthy": integer(),
            "expectedPods": integer(),
            "conditions": array(CONDITION),
        },
    ),
)

resource(
    P + "PodDisruptionBudget",
    "policy/v1",
    "PodDisruptionBudget",
    {"spec": PDB_SPEC, "status": PDB_STATUS},
    "The most pods of a set that voluntary disruptions (evictions) may take down at once.",
)

EVICTION = define(
    P + "Eviction",
    obj(
        {
            "apiVersion": string(),
            "kind": string(),
            "metadata": OBJECT_META,
            "deleteOptions": DELETE_OPTIONS,
        },
        description="A request to evict a pod (POST pods/NAME/eviction), honouring disruption budgets.",
    ),
)
