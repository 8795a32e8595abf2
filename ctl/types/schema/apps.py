"""Schemas of the workload kinds (apps/v1 ReplicaSet and Deployment) and their subresources'
bodies (autoscaling/v1 Scale, core/v1 Binding).

DeploymentStrategy models ``type`` plus ``rollingUpdate`` with ``maxSurge`` and
``maxUnavailable`` as int-or-string (``25%`` or ``1``); ``rollingUpdate: null`` means absent.
"""

from __future__ import annotations

from ctl.types.schema.build import (
    array,
    define,
    int_or_string,
    integer,
    obj,
    resource,
    string,
    timestamp,
)
from ctl.types.schema.core import POD_TEMPLATE_SPEC
from ctl.types.schema.meta import LABEL_SELECTOR, OBJECT_META

A = "io.k8s.api.apps.v1."

WORKLOAD_CONDITION = obj(
    {
        "type": string(),
        "status": string(),
        "reason": string(),
        "message": string(),
        "lastTransitionTime": timestamp(),
        "lastUpdateTime": timestamp(),
    },
    required=["type", "status"],
)

RS_SPEC = define(
    A + "ReplicaSetSpec",
    obj(
        {
            "replicas": integer("Desired number of pods (default 1)."),
            "minReadySeconds": integer(),
            "selector": LABEL_SELECTOR,
            "template": POD_TEMPLATE_SPEC,
        },
        required=["selector"],
    ),
)

RS_STATUS = define(
    A + "ReplicaSetStatus",
    obj(
        {
            "replicas": integer(),
            "fullyLabeledReplicas": integer(),
            "readyReplicas": integer(),
            "availableReplicas": integer(),
            "terminatingReplicas": integer(),
            "observedGeneration": integer(fmt="int64"),
            "conditions": array(WORKLOAD_CONDITION),
        },
        preserve=True,
    ),
)

resource(
    A + "ReplicaSet",
    "apps/v1",
    "ReplicaSet",
    {"spec": RS_SPEC, "status": RS_STATUS},
    "Keeps a number of identical pods running.",
)

STRATEGY = define(
    A + "DeploymentStrategy",
    obj(
        {
            "type": string("RollingUpdate (default) or Recreate."),
            "rollingUpdate": define(
                A + "RollingUpdateDeployment",
                obj(
                    {
                        "maxSurge": int_or_string("Pods above the desired count during an update (25%)."),
                        "maxUnavailable": int_or_string(
                            "Pods that may be unavailable during an update (25%)."
                        ),
                    },
                ),
            ),
        },
        description="How old pods are replaced by new ones.",
    ),
)

DEPLOYMENT_SPEC = define(
    A + "DeploymentSpec",
    obj(
        {
            "replicas": integer("Desired number of pods (default 1)."),
            "selector": LABEL_SELECTOR,
            "template": POD_TEMPLATE_SPEC,
            "strategy": STRATEGY,
            "minReadySeconds": integer(),
            "revisionHistoryLimit": integer(),
            "paused": {"type": "boolean"},
            "progressDeadlineSeconds": integer(),
        },
        required=["selector", "template"],
    ),
)

DEPLOYMENT_STATUS = define(
    A + "DeploymentStatus",
    obj(
        {
            "observedGeneration": integer(fmt="int64"),
            "replicas": integer(),
            "updatedReplicas": integer(),
            "readyReplicas": integer(),
            "availableReplicas": integer(),
            "unavailableReplicas": integer(),
            "terminatingReplicas": integer(),
            "conditions": array(WORKLOAD_CONDITION),
            "collisionCount": integer(),
        },
        preserve=True,
    ),
)

resource(
    A + "Deployment",
    "apps/v1",
    "Deployment",
    {"spec": DEPLOYMENT_SPEC, "status": DEPLOYMENT_STATUS},
    "Declarative updates of pods through ReplicaSets.",
)

SCALE = define(
    "io.k8s.api.autoscaling.v1.Scale",
    obj(
        {
            "apiVersion": string(),
            "kind": string(),
            "metadata": OBJECT_META,
            "spec": obj({"replicas": integer("Desired number of instances.")}),
            "status": obj({"replicas": integer(), "selector": string()}),
        },
        description="The scale subresource of a workload.",
    ),
)
SCALE_NAME = "io.k8s.api.autoscaling.v1.Scale"

BINDING = define(
    "io.k8s.api.core.v1.Binding",
    obj(
        {
            "apiVersion": string(),
            "kind": string(),
            "metadata": OBJECT_META,
            "target": obj({"kind": string(), "name": string(), "apiVersion": string()}),
        },
        required=["target"],
        description="Binds a pod to a node (the scheduler posts these).",
    ),
)
BINDING_NAME = "io.k8s.api.core.v1.Binding"

# DaemonSet, StatefulSet, ControllerRevision (and a minimal PersistentVolumeClaim) declare themselves.
from ctl.types.schema import apps_sets as _apps_sets  # noqa: E402, F401
