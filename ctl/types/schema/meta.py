"""Schemas of the meta/v1 types every kind shares: ObjectMeta, owner references, selectors, Status.

Named as Kubernetes names them (``io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`` ...) so
that the OpenAPI document reads like kube-apiserver's. ObjectMeta carries the Arktos
additions ``tenant`` and ``hashKey`` (DESIGN.md §4).
"""

from __future__ import annotations

from ctl.types.schema.build import (
    array,
    boolean,
    define,
    free_object,
    integer,
    obj,
    string,
    string_map,
    strings,
    timestamp,
)

M = "io.k8s.apimachinery.pkg.apis.meta.v1."

OWNER_REFERENCE = define(
    M + "OwnerReference",
    obj(
        {
            "apiVersion": string("API version of the referent."),
            "kind": string("Kind of the referent."),
            "name": string("Name of the referent."),
            "uid": string("UID of the referent."),
            "controller": boolean("If true, this reference points to the managing controller."),
            "blockOwnerDeletion": boolean("If true, the owner cannot be deleted before this object."),
        },
        required=["apiVersion", "kind", "name", "uid"],
        description="Identifies an owning object; the garbage collector deletes dependents of deleted owners.",
    ),
)

MANAGED_FIELDS = define(
    M + "ManagedFieldsEntry",
    obj(
        {
            "apiVersion": string(),
            "fieldsType": string(),
            "fieldsV1": free_object(),
            "manager": string(),
            "operation": string(),
            "subresource": string(),
            "time": timestamp(),
        },
        description="A workflow-id, a FieldSet and the group version of the resource it applies to.",
    ),
)

OBJECT_META = define(
    M + "ObjectMeta",
    obj(
        {
            "name": string("Name, unique within a namespace (or tenant, or cluster, by the kind's scope)."),
            "generateName": string("Prefix the server completes into a unique name when name is empty."),
            "namespace": string("Namespace of a namespaced object."),
            "tenant": string("Tenant the object belongs to (Arktos); empty for cluster-scoped kinds."),
            "uid": string("Unique id the server assigns on creation."),
            "resourceVersion": string("Opaque version for optimistic concurrency and watches."),
            "generation": integer("Sequence number of the desired state (spec).", "int64"),
            "creationTimestamp": timestamp("When the object was created (server-set)."),
            "deletionTimestamp": timestamp("When deletion was requested (server-set)."),
            "deletionGracePeriodSeconds": integer("Seconds allowed for graceful termination.", "int64"),
            "labels": string_map("Map of string keys and values for organizing and selecting objects."),
            "annotations": string_map("Unstructured key/value map for tools and extensions."),
            "ownerReferences": array(OWNER_REFERENCE, "Objects this one depends on."),
            "finalizers": strings("Must be empty before the object is deleted from the store."),
            "managedFields": array(MANAGED_FIELDS, "Which manager owns which fields."),
            "selfLink": string("Path of this object (deprecated in Kubernetes; kept for old clients)."),
            "hashKey": integer("Stable hash of the uid, to split work among controller instances.", "int64"),
        },
        description="Standard object metadata.",
    ),
)

LIST_META = define(
    M + "ListMeta",
    obj(
        {
            "resourceVersion": string("Revision the list was read at."),
            "continue": string("Token for the next page when the list was limited."),
            "remainingItemCount": integer(fmt="int64"),
            "selfLink": string(),
        },
        description="Metadata of a list.",
    ),
)

LABEL_SELECTOR_REQUIREMENT = define(
    M + "LabelSelectorRequirement",
    obj(
        {
            "key": string("The label key the selector applies to."),
            "operator": string(
                "In, NotIn, Exists or DoesNotExist.", ("In", "NotIn", "Exists", "DoesNotExist")
            ),
            "values": strings("Values for In and NotIn; empty for Exists and DoesNotExist."),
        },
        required=["key", "operator"],
    ),
)

LABEL_SELECTOR = define(
    M + "LabelSelector",
    obj(
        {
            "matchLabels": string_map("Labels that must all match."),
            "matchExpressions": array(LABEL_SELECTOR_REQUIREMENT, "Requirements that must all hold."),
        },
        description="A label query over a set of objects; the requirements are ANDed.",
    ),
)

CONDITION = define(
    M + "Condition",
    obj(
        {
            "type": string("Type of the condition."),
            "status": string("True, False or Unknown."),
            "reason": string(),
            "message": string(),
            "lastTransitionTime": timestamp(),
            "lastUpdateTime": timestamp(),
            "lastProbeTime": timestamp(),
            "lastHeartbeatTime": timestamp(),
            "observedGeneration": integer(fmt="int64"),
        },
        required=["type", "status"],
        description="One aspect of an object's current state.",
    ),
)

STATUS_CAUSE = define(
    M + "StatusCause",
    obj({"reason": string(), "message": string(), "field": string()}),
)

STATUS_DETAILS = define(
    M + "StatusDetails",
    obj(
        {
            "name": string(),
            "group": string(),
            "kind": string(),
            "uid": string(),
            "causes": array(STATUS_CAUSE),
            "retryAfterSeconds": integer(),
        },
    ),
)

STATUS = define(
    M + "Status",
    obj(
        {
            "apiVersion": string(),
            "kind": string(),
            "metadata": LIST_META,
            "status": string("Success or Failure."),
            "message": string("Human-readable description of the status."),
            "reason": string("Machine-readable reason (NotFound, Invalid, Conflict ...)."),
            "details": STATUS_DETAILS,
            "code": integer("The HTTP status code."),
        },
        description="The return value of calls that do not return an object, and of every error.",
    ),
)

PRECONDITIONS = define(
    M + "Preconditions",
    obj({"resourceVersion": string(), "uid": string()}),
)

DELETE_OPTIONS = define(
    M + "DeleteOptions",
    obj(
        {
            "apiVersion": string(),
            "kind": string(),
            "gracePeriodSeconds": integer(fmt="int64"),
            "preconditions": PRECONDITIONS,
            "orphanDependents": boolean(),
            "propagationPolicy": string(enum=("Orphan", "Background", "Foreground")),
            "dryRun": strings(),
        },
        description="Options of a DELETE.",
    ),
)
