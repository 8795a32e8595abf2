"""Schemas of the apps/v1 per-node and stateful workloads: DaemonSet, StatefulSet and
ControllerRevision, plus a minimal core/v1 PersistentVolumeClaim (the claim a StatefulSet's
``volumeClaimTemplates`` stamp out per pod).

Imported at the end of :mod:`.apps` so the group module still declares every apps/v1 kind.
Statuses keep unknown fields (``preserve``) so a newer client's status survives a round trip.
The PersistentVolumeClaim is declared only when no other module declared it first (the
storage part of issue #14 owns the full kind).
"""

from __future__ import annotations

from ctl.types.schema.build import (
    KIND_DEFINITIONS,
    array,
    define,
    free_object,
    int_or_string,
    integer,
    map_of,
    obj,
    quantity,
    resource,
    string,
    strings,
)
from ctl.types.schema.core import POD_TEMPLATE_SPEC
from ctl.types.schema.meta import LABEL_SELECTOR, OBJECT_META

A = "io.k8s.api.apps.v1."
C = "io.k8s.api.core.v1."

_CONDITION = obj(
    {
        "type": string(),
        "status": string(),
        "reason": string(),
        "message": string(),
        "lastTransitionTime": string(fmt="date-time"),
    },
    required=["type", "status"],
)

# ----------------------------------------------------------------------------- DaemonSet
DS_STRATEGY = define(
    A + "DaemonSetUpdateStrategy",
    obj(
        {
            "type": string("RollingUpdate (default) or OnDelete."),
            "rollingUpdate": define(
                A + "RollingUpdateDaemonSet",
                obj(
                    {
                        "maxUnavailable": int_or_string("Nodes whose pod may be unavailable (default 1)."),
                        "maxSurge": int_or_string("Nodes that may run an old and a new pod at once (0)."),
                    }
                ),
            ),
        }
    ),
)

DS_SPEC = define(
    A + "DaemonSetSpec",
    obj(
        {
            "selector": LABEL_SELECTOR,
            "template": POD_TEMPLATE_SPEC,
            "updateStrategy": DS_STRATEGY,
            "minReadySeconds": integer(),
            "revisionHistoryLimit": integer(),
        },
        required=["selector", "template"],
    ),
)

DS_STATUS = define(
    A + "DaemonSetStatus",
    obj(
        {
            "currentNumberScheduled": integer(),
            "numberMisscheduled": integer(),
            "desiredNumberScheduled": integer(),
            "numberReady": integer(),
            "observedGeneration": integer(fmt="int64"),
            "updatedNumberScheduled": integer(),
            "numberAvailable": integer(),
            "numberUnavailable": integer(),
            "collisionCount": integer(),
            "conditions": array(_CONDITION),
        },
        preserve=True,
    ),
)

resource(
    A + "DaemonSet",
    "apps/v1",
    "DaemonSet",
    {"spec": DS_SPEC, "status": DS_STATUS},
    "Runs one copy of a pod on every eligible node.",
)

# ----------------------------------------------------------------------------- PVC
PVC_SPEC = define(
    C + "PersistentVolumeClaimSpec",
    obj(
        {
            "accessModes": strings("ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod."),
            "selector": LABEL_SELECTOR,
            "resources": obj({"requests": map_of(quantity()), "limits": map_of(quantity())}),
            "volumeName": string(),
            "storageClassName": string(),
            "volumeMode": string("Filesystem (default) or Block."),
            "dataSource": free_object(),
            "dataSourceRef": free_object(),
        }
    ),
)

PVC_TEMPLATE = obj(
    {
        "apiVersion": string(),
        "kind": string(),
        "metadata": OBJECT_META,
        "spec": PVC_SPEC,
        "status": free_object(),
    },
    description="A claim template: each pod gets a claim named TEMPLATE-POD.",
)

if ("v1", "PersistentVolumeClaim") not in KIND_DEFINITIONS:
    resource(
        C + "PersistentVolumeClaim",
        "v1",
        "PersistentVolumeClaim",
        {
            "spec": PVC_SPEC,
            "status": define(
                C + "PersistentVolumeClaimStatus",
                obj(
                    {
                        "phase": string("Pending, Bound or Lost."),
                        "accessModes": strings(),
                        "capacity": map_of(quantity()),
                        "conditions": array(_CONDITION),
                    },
                    preserve=True,
                ),
            ),
        },
        "A user's request for storage.",
    )

# ----------------------------------------------------------------------------- StatefulSet
STS_STRATEGY = define(
    A + "StatefulSetUpdateStrategy",
    obj(
        {
            "type": string("RollingUpdate (default) or OnDelete."),
            "rollingUpdate": define(
                A + "RollingUpdateStatefulSetStrategy",
                obj(
                    {
                        "partition": integer("Ordinals below it keep the current revision."),
                        "maxUnavailable": int_or_string(),
                    }
                ),
            ),
        }
    ),
)

STS_SPEC = define(
    A + "StatefulSetSpec",
    obj(
        {
            "replicas": integer("Desired number of pods (default 1)."),
            "selector": LABEL_SELECTOR,
            "template": POD_TEMPLATE_SPEC,
            "volumeClaimTemplates": array(PVC_TEMPLATE),
            "serviceName": string("The governing Service: pods get hostname POD and subdomain SERVICE."),
            "podManagementPolicy": string("OrderedReady (default) or Parallel."),
            "updateStrategy": STS_STRATEGY,
            "revisionHistoryLimit": integer(),
            "minReadySeconds": integer(),
            "persistentVolumeClaimRetentionPolicy": obj({"whenDeleted": string(), "whenScaled": string()}),
            "ordinals": obj({"start": integer()}),
        },
        required=["selector", "template"],
    ),
)

STS_STATUS = define(
    A + "StatefulSetStatus",
    obj(
        {
            "observedGeneration": integer(fmt="int64"),
            "replicas": integer(),
            "readyReplicas": integer(),
            "currentReplicas": integer(),
            "updatedReplicas": integer(),
            "availableReplicas": integer(),
            "currentRevision": string(),
            "updateRevision": string(),
            "collisionCount": integer(),
            "conditions": array(_CONDITION),
        },
        preserve=True,
    ),
)

resource(
    A + "StatefulSet",
    "apps/v1",
    "StatefulSet",
    {"spec": STS_SPEC, "status": STS_STATUS},
    "Pods with stable names and per-pod storage, started and updated in order.",
)

# ----------------------------------------------------------------------------- ControllerRevision
resource(
    A + "ControllerRevision",
    "apps/v1",
    "ControllerRevision",
    {
        "data": free_object("The state at this revision (the pod template patch)."),
        "revision": integer("The revision number, increasing per owner.", fmt="int64"),
    },
    "An immutable snapshot of a DaemonSet's or StatefulSet's pod template.",
    required=["revision"],
)
