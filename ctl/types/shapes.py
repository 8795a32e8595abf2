"""Typed shapes of the objects the code passes around: metadata, Pod, Node, Status, watch events.

Objects travel as plain JSON dicts (decoded once, stored as bytes, served from the watch
cache): that keeps the API server's hot path free of model classes. These ``TypedDict``s
give those dicts a checked shape where it matters - the signatures of the client, the
informers, the registry and the runtimes - without a conversion step: a ``Pod`` *is* the
dict the API returned. Every key is optional (``total=False``) because real objects are
partial (a pod without status, a list without continue); code that needs a key still checks it.

Only the fields the code reads are declared; everything else is still there at run time.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict


class OwnerReference(TypedDict, total=False):
    apiVersion: str
    kind: str
    name: str
    uid: str
    controller: bool
    blockOwnerDeletion: bool


class ObjectMeta(TypedDict, total=False):
    name: str
    generateName: str
    namespace: str
    tenant: str
    uid: str
    resourceVersion: str
    generation: int
    creationTimestamp: str
    deletionTimestamp: str
    deletionGracePeriodSeconds: int
    labels: dict[str, str]
    annotations: dict[str, str]
    ownerReferences: list[OwnerReference]
    finalizers: list[str]
    hashKey: int


class Object(TypedDict, total=False):
    """Any API object: the envelope every kind shares."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: dict[str, Any]
    status: dict[str, Any]


class Container(TypedDict, total=False):
    name: str
    image: str
    command: list[str]
    args: list[str]
    env: list[dict[str, Any]]
    resources: dict[str, dict[str, Any]]
    ports: list[dict[str, Any]]


class PodSpec(TypedDict, total=False):
    nodeName: str
    schedulerName: str
    containers: list[Container]
    initContainers: list[Container]
    restartPolicy: Literal["Always", "OnFailure", "Never"]
    terminationGracePeriodSeconds: int
    nodeSelector: dict[str, str]
    tolerations: list[dict[str, Any]]
    virtualMachine: dict[str, Any]


class PodStatus(TypedDict, total=False):
    phase: Literal["Pending", "Running", "Succeeded", "Failed", "Unknown"]
    conditions: list[dict[str, Any]]
    containerStatuses: list[dict[str, Any]]
    podIP: str
    hostIP: str
    startTime: str
    reason: str
    message: str


class Pod(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: PodSpec
    status: PodStatus


class NodeStatus(TypedDict, total=False):
    capacity: dict[str, str]
    allocatable: dict[str, str]
    conditions: list[dict[str, Any]]
    addresses: list[dict[str, str]]
    nodeInfo: dict[str, str]
    daemonEndpoints: dict[str, Any]


class Node(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: dict[str, Any]
    status: NodeStatus


class StatusDetails(TypedDict, total=False):
    name: str
    group: str
    kind: str
    uid: str
    causes: list[dict[str, str]]
    retryAfterSeconds: int


class Status(TypedDict, total=False):
    """The ``Status`` object of every API error (and some successes)."""

    kind: Literal["Status"]
    apiVersion: Literal["v1"]
    metadata: dict[str, Any]
    status: Literal["Success", "Failure"]
    message: str
    reason: str
    code: int
    details: StatusDetails


# ``continue`` is a Python keyword, so the list metadata takes the functional form.
ListMeta = TypedDict(
    "ListMeta", {"resourceVersion": str, "continue": str, "remainingItemCount": int}, total=False
)  # noqa: UP013


class ObjectList(TypedDict, total=False):
    kind: str
    apiVersion: str
    metadata: ListMeta
    items: list[dict[str, Any]]


WatchEventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]


class WatchEvent(TypedDict):
    """One line of a watch stream: ``{"type": ..., "object": ...}``."""

    type: WatchEventType
    object: dict[str, Any]
