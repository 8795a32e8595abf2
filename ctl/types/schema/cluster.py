"""Schemas of the cluster's own objects (core/v1): Node, Namespace and Tenant.

Node models what the node agent registers and reports (taints, addresses, capacity as
quantities, conditions with heartbeats, nodeInfo); Tenant is the Arktos kind (cluster-scoped,
``spec.storageClusterId``). Tenant and Namespace statuses carry their ``phase``.
"""

from __future__ import annotations

from ctl.types.schema.build import (
    array,
    boolean,
    define,
    free_object,
    map_of,
    obj,
    quantity,
    resource,
    string,
    strings,
    timestamp,
)
from ctl.types.schema.meta import CONDITION

C = "io.k8s.api.core.v1."

TAINT = define(
    C + "Taint",
    obj(
        {
            "key": string("The taint key."),
            "value": string(),
            "effect": string("NoSchedule, PreferNoSchedule or NoExecute."),
            "timeAdded": timestamp(),
        },
        required=["key", "effect"],
        description="A node taint: pods that do not tolerate it are not scheduled (or run) there.",
    ),
)

NODE_SPEC = define(
    C + "NodeSpec",
    obj(
        {
            "podCIDR": string(),
            "podCIDRs": strings(),
            "providerID": string(),
            "unschedulable": boolean("Cordoned: no new pods are scheduled here."),
            "taints": array(TAINT),
            "configSource": free_object(),
        },
    ),
)

NODE_ADDRESS = define(
    C + "NodeAddress", obj({"type": string(), "address": string()}, required=["type", "address"])
)

NODE_STATUS = define(
    C + "NodeStatus",
    obj(
        {
            "capacity": map_of(quantity(), "Total resources of the node."),
            "allocatable": map_of(quantity(), "Resources available to pods."),
            "phase": string(),
            "conditions": array(CONDITION, "Ready, MemoryPressure, DiskPressure, PIDPressure ..."),
            "addresses": array(NODE_ADDRESS),
            "daemonEndpoints": free_object("Where the node agent listens (log/exec)."),
            "nodeInfo": map_of(string(), "Versions and identifiers of the node."),
            "images": array(free_object()),
            "volumesInUse": strings(),
            "volumesAttached": array(free_object()),
            "config": free_object(),
            "runtimeHandlers": array(free_object()),
            "features": free_object(),
        },
        preserve=True,
    ),
)

resource(
    C + "Node",
    "v1",
    "Node",
    {"spec": NODE_SPEC, "status": NODE_STATUS},
    "A host that runs pods (cluster-scoped).",
)

PHASE_STATUS = obj({"phase": string("Active or Terminating."), "conditions": array(CONDITION)}, preserve=True)

resource(
    C + "Namespace",
    "v1",
    "Namespace",
    {
        "spec": obj({"finalizers": strings("Must be empty before the namespace is removed.")}),
        "status": PHASE_STATUS,
    },
    "A scope for names inside a tenant (tenant-scoped).",
)

resource(
    "io.centaurus.core.v1.Tenant",
    "v1",
    "Tenant",
    {
        "spec": obj(
            {"storageClusterId": string("Storage cluster holding the tenant's objects.")}, preserve=True
        ),
        "status": PHASE_STATUS,
    },
    "An Arktos tenant: a self-contained share of the cluster (cluster-scoped).",
)
