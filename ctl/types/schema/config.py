"""Schemas of configuration and bookkeeping kinds: ConfigMap, Secret, ServiceAccount, Event,
ResourceQuota, Action (core/v1) and Lease (coordination.k8s.io/v1).

Action is the Arktos kind a node agent performs on a (VM) pod; its status is written by the
agent (``complete``, ``error``, ``completionTime`` and the runtime's result fields).
"""

from __future__ import annotations

from ctl.types.schema.build import (
    array,
    boolean,
    define,
    free_object,
    integer,
    map_of,
    obj,
    quantity,
    resource,
    string,
    string_map,
    strings,
    timestamp,
)

C = "io.k8s.api.core.v1."

OBJECT_REFERENCE = define(
    C + "ObjectReference",
    obj(
        {
            "apiVersion": string(),
            "kind": string(),
            "name": string(),
            "namespace": string(),
            "tenant": string(),
            "uid": string(),
            "resourceVersion": string(),
            "fieldPath": string(),
        },
        description="A reference to an object.",
    ),
)

resource(
    C + "ConfigMap",
    "v1",
    "ConfigMap",
    {
        "data": string_map("Configuration data (UTF-8 strings)."),
        "binaryData": map_of(string(fmt="byte"), "Binary data, base64 encoded."),
        "immutable": boolean(),
    },
    "Configuration data for pods to consume.",
)

resource(
    C + "Secret",
    "v1",
    "Secret",
    {
        "data": map_of(string(fmt="byte"), "Secret data, base64 encoded."),
        "stringData": string_map("Write-only convenience: plain strings merged into data on write."),
        "type": string("Used to ease programmatic handling (Opaque by default)."),
        "immutable": boolean(),
    },
    "Secret data: tokens, keys, passwords.",
)

resource(
    C + "ServiceAccount",
    "v1",
    "ServiceAccount",
    {
        "secrets": array(OBJECT_REFERENCE),
        "imagePullSecrets": array(obj({"name": string()})),
        "automountServiceAccountToken": boolean(),
    },
    "An identity for processes that run in pods.",
)

resource(
    C + "Event",
    "v1",
    "Event",
    {
        "involvedObject": OBJECT_REFERENCE,
        "reason": string("Short, machine-understandable reason for the transition."),
        "message": string("Human-readable description."),
        "source": obj({"component": string(), "host": string()}),
        "firstTimestamp": timestamp(),
        "lastTimestamp": timestamp(),
        "count": integer("How many times the event occurred."),
        "type": string("Normal or Warning."),
        "eventTime": timestamp(),
        "series": free_object(),
        "action": string(),
        "related": OBJECT_REFERENCE,
        "reportingComponent": string(),
        "reportingInstance": string(),
    },
    "A report of something that happened to an object.",
)

QUOTA_SPEC = define(
    C + "ResourceQuotaSpec",
    obj(
        {
            "hard": map_of(quantity(), "Hard limits per resource (pods, requests.cpu, requests.memory ...)."),
            "scopes": strings(),
            "scopeSelector": free_object(),
        },
    ),
)

resource(
    C + "ResourceQuota",
    "v1",
    "ResourceQuota",
    {
        "spec": QUOTA_SPEC,
        "status": obj({"hard": map_of(quantity()), "used": map_of(quantity())}, preserve=True),
    },
    "Limits on the resources a namespace may use.",
)

resource(
    C + "Action",
    "v1",
    "Action",
    {
        "spec": obj(
            {
                "nodeName": string("The node whose agent performs the action."),
                "podName": string("The pod the action is for."),
                "podID": string("The uid of that pod."),
                "operation": string("reboot, snapshot, restore, stop or start."),
            },
            preserve=True,
        ),
        "status": obj(
            {"complete": boolean(), "error": string(), "completionTime": timestamp()},
            preserve=True,
        ),
    },
    "An operation a node agent performs on a pod (Arktos).",
)

resource(
    "io.k8s.api.coordination.v1.Lease",
    "coordination.k8s.io/v1",
    "Lease",
    {
        "spec": obj(
            {
                "holderIdentity": string(),
                "leaseDurationSeconds": integer(),
                "acquireTime": timestamp(),
                "renewTime": timestamp(),
                "leaseTransitions": integer(),
                "strategy": string(),
                "preferredHolder": string(),
            },
        ),
    },
    "A lease: leader election and node heartbeats.",
)
