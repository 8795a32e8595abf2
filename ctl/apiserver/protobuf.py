"""Decoding the Kubernetes protobuf wire format for the objects kubectl's generators send.

``kubectl create namespace|configmap|secret|deployment`` (the imperative generators) send
``application/vnd.kubernetes.protobuf`` bodies: the 4-byte magic ``k8s\\x00`` followed by a
``runtime.Unknown`` message whose ``raw`` field holds the object in protobuf. Everything
else kubectl does (``apply``, ``create -f``, ``get``, ``delete``, ``scale``) speaks JSON.

kubectl also sends protobuf for the requests it builds itself: the access and identity
reviews (``auth can-i``, ``auth whoami``), ``DeleteOptions`` (``delete``, ``drain``) and
``policy/v1`` Eviction (``drain``).

This module turns those bodies into the same JSON-shaped dict a JSON client would send.
It knows the field numbers of the messages those clients fill in (ObjectMeta,
Namespace, ConfigMap, Secret, Deployment down to Container, Job, CronJob, ResourceQuota,
PodDisruptionBudget, the RBAC kinds, the reviews, DeleteOptions, Eviction); unknown fields are skipped, as protobuf requires. Responses stay JSON:
kubectl offers JSON in ``Accept`` as well.
"""

from __future__ import annotations

import base64
from typing import Any

MAGIC = b"k8s\x00"

# message schemas: field number -> (json name, kind, sub-schema)
# kinds: str, bytes, int, bool, msg, rep_str, rep_msg, map_str, map_bytes, map_list (map of
# ExtraValue {1: repeated string}), intorstr, quantity_map
Schema = dict[int, tuple[str, str, Any]]

TYPE_META: Schema = {1: ("apiVersion", "str", None), 2: ("kind", "str", None)}
OWNER_REF: Schema = {
    5: ("apiVersion", "str", None),
    1: ("kind", "str", None),
    3: ("name", "str", None),
    4: ("uid", "str", None),
    6: ("controller", "bool", None),
    7: ("blockOwnerDeletion", "bool", None),
}
OBJECT_META: Schema = {
    1: ("name", "str", None),
    2: ("generateName", "str", None),
    3: ("namespace", "str", None),
    11: ("labels", "map_str", None),
    12: ("annotations", "map_str", None),
    13: ("ownerReferences", "rep_msg", OWNER_REF),
    14: ("finalizers", "rep_str", None),
}
LABEL_REQ: Schema = {1: ("key", "str", None), 2: ("operator", "str", None), 3: ("values", "rep_str", None)}
LABEL_SELECTOR: Schema = {1: ("matchLabels", "map_str", None), 2: ("matchExpressions", "rep_msg", LABEL_REQ)}
PORT: Schema = {
    1: ("name", "str", None),
    2: ("hostPort", "int", None),
    3: ("containerPort", "int", None),
    4: ("protocol", "str", None),
    5: ("hostIP", "str", None),
}
ENV: Schema = {1: ("name", "str", None), 2: ("value", "str", None)}
RESOURCES: Schema = {1: ("limits", "quantity_map", None), 2: ("requests", "quantity_map", None)}
CONTAINER: Schema = {
    1: ("name", "str", None),
    2: ("image", "str", None),
    3: ("command", "rep_str", None),
    4: ("args", "rep_str", None),
    5: ("workingDir", "str", None),
    6: ("ports", "rep_msg", PORT),
    7: ("env", "rep_msg", ENV),
    8: ("resources", "msg", RESOURCES),
    14: ("imagePullPolicy", "str", None),
    12: ("terminationMessagePath", "str", None),
}
POD_SPEC: Schema = {
    2: ("containers", "rep_msg", CONTAINER),
    20: ("initContainers", "rep_msg", CONTAINER),
    3: ("restartPolicy", "str", None),
    4: ("terminationGracePeriodSeconds", "int", None),
    6: ("dnsPolicy", "str", None),
    7: ("nodeSelector", "map_str", None),
    10: ("nodeName", "str", None),
    8: ("serviceAccountName", "str", None),
    19: ("schedulerName", "str", None),
}
POD_TEMPLATE: Schema = {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", POD_SPEC)}
ROLLING: Schema = {1: ("maxUnavailable", "intorstr", None), 2: ("maxSurge", "intorstr", None)}
STRATEGY: Schema = {1: ("type", "str", None), 2: ("rollingUpdate", "msg", ROLLING)}
DEPLOYMENT_SPEC: Schema = {
    1: ("replicas", "int", None),
    2: ("selector", "msg", LABEL_SELECTOR),
    3: ("template", "msg", POD_TEMPLATE),
    4: ("strategy", "msg", STRATEGY),
    5: ("minReadySeconds", "int", None),
    6: ("revisionHistoryLimit", "int", None),
    7: ("paused", "bool", None),
    9: ("progressDeadlineSeconds", "int", None),
}
RESOURCE_ATTRIBUTES: Schema = {
    1: ("namespace", "str", None),
    2: ("verb", "str", None),
    3: ("group", "str", None),
    4: ("version", "str", None),
    5: ("resource", "str", None),
    6: ("subresource", "str", None),
    7: ("name", "str", None),
}
NON_RESOURCE_ATTRIBUTES: Schema = {1: ("path", "str", None), 2: ("verb", "str", None)}
ACCESS_ATTRIBUTES: Schema = {
    1: ("resourceAttributes", "msg", RESOURCE_ATTRIBUTES),
    2: ("nonResourceAttributes", "msg", NON_RESOURCE_ATTRIBUTES),
}
PRECONDITIONS: Schema = {1: ("uid", "str", None), 2: ("resourceVersion", "str", None)}
DELETE_OPTIONS: Schema = {
    1: ("gracePeriodSeconds", "int", None),
    2: ("preconditions", "msg", PRECONDITIONS),
    3: ("orphanDependents", "bool", None),
    4: ("propagationPolicy", "str", None),
    5: ("dryRun", "rep_str", None),
}
POLICY_RULE: Schema = {
    1: ("verbs", "rep_str", None),
    2: ("apiGroups", "rep_str", None),
    3: ("resources", "rep_str", None),
    4: ("resourceNames", "rep_str", None),
    5: ("nonResourceURLs", "rep_str", None),
}
ROLE_BINDING: Schema = {
    1: ("metadata", "msg", OBJECT_META),
    2: (
        "subjects",
        "rep_msg",
        {
            1: ("kind", "str", None),
            2: ("apiGroup", "str", None),
            3: ("name", "str", None),
            4: ("namespace", "str", None),
        },
    ),
    3: ("roleRef", "msg", {1: ("apiGroup", "str", None), 2: ("kind", "str", None), 3: ("name", "str", None)}),
}
# batch/v1 (kubectl create job|cronjob, create job --from=cronjob/X)
JOB_SPEC: Schema = {
    1: ("parallelism", "int", None),
    2: ("completions", "int", None),
    3: ("activeDeadlineSeconds", "int", None),
    4: ("selector", "msg", LABEL_SELECTOR),
    5: ("manualSelector", "bool", None),
    6: ("template", "msg", POD_TEMPLATE),
    7: ("backoffLimit", "int", None),
    8: ("ttlSecondsAfterFinished", "int", None),
    9: ("completionMode", "str", None),
    10: ("suspend", "bool", None),
}
CRONJOB_SPEC: Schema = {
    1: ("schedule", "str", None),
    2: ("startingDeadlineSeconds", "int", None),
    3: ("concurrencyPolicy", "str", None),
    4: ("suspend", "bool", None),
    5: ("jobTemplate", "msg", {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", JOB_SPEC)}),
    6: ("successfulJobsHistoryLimit", "int", None),
    7: ("failedJobsHistoryLimit", "int", None),
    8: ("timeZone", "str", None),
}
KINDS: dict[str, Schema] = {
    "Namespace": {
        1: ("metadata", "msg", OBJECT_META),
        2: ("spec", "msg", {1: ("finalizers", "rep_str", None)}),
    },
    "ConfigMap": {
        1: ("metadata", "msg", OBJECT_META),
        2: ("data", "map_str", None),
        3: ("binaryData", "map_bytes", None),
        4: ("immutable", "bool", None),
    },
    "Secret": {
        1: ("metadata", "msg", OBJECT_META),
        2: ("data", "map_bytes", None),
        3: ("type", "str", None),
        4: ("stringData", "map_str", None),
        5: ("immutable", "bool", None),
    },
    "Deployment": {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", DEPLOYMENT_SPEC)},
    "Job": {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", JOB_SPEC)},
    "CronJob": {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", CRONJOB_SPEC)},
    "ServiceAccount": {1: ("metadata", "msg", OBJECT_META)},
    "ResourceQuota": {
        1: ("metadata", "msg", OBJECT_META),
        2: ("spec", "msg", {1: ("hard", "quantity_map", None), 2: ("scopes", "rep_str", None)}),
    },
    "SelfSubjectAccessReview": {
        1: ("metadata", "msg", OBJECT_META),
        2: ("spec", "msg", ACCESS_ATTRIBUTES),
    },
    "SelfSubjectRulesReview": {
        1: ("metadata", "msg", OBJECT_META),
        2: ("spec", "msg", {1: ("namespace", "str", None)}),
    },
    "SubjectAccessReview": {
        1: ("metadata", "msg", OBJECT_META),
        2: (
            "spec",
            "msg",
            {
                **ACCESS_ATTRIBUTES,
                3: ("user", "str", None),
                4: ("groups", "rep_str", None),
                5: ("extra", "map_list", None),
                6: ("uid", "str", None),
            },
        ),
    },
    "SelfSubjectReview": {1: ("metadata", "msg", OBJECT_META)},
    "TokenReview": {
        1: ("metadata", "msg", OBJECT_META),
        2: ("spec", "msg", {1: ("token", "str", None), 2: ("audiences", "rep_str", None)}),
    },
    "DeleteOptions": DELETE_OPTIONS,
    "PodDisruptionBudget": {
        1: ("metadata", "msg", OBJECT_META),
        2: (
            "spec",
            "msg",
            {
                1: ("minAvailable", "intorstr", None),
                2: ("selector", "msg", LABEL_SELECTOR),
                3: ("maxUnavailable", "intorstr", None),
                4: ("unhealthyPodEvictionPolicy", "str", None),
            },
        ),
    },
    "Role": {1: ("metadata", "msg", OBJECT_META), 2: ("rules", "rep_msg", POLICY_RULE)},
    "ClusterRole": {1: ("metadata", "msg", OBJECT_META), 2: ("rules", "rep_msg", POLICY_RULE)},
    "RoleBinding": ROLE_BINDING,
    "ClusterRoleBinding": ROLE_BINDING,
    "Eviction": {1: ("metadata", "msg", OBJECT_META), 2: ("deleteOptions", "msg", DELETE_OPTIONS)},
}


class ProtobufError(ValueError):
    pass


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ProtobufError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 70:
            raise ProtobufError("varint too long")


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) for every field of one message."""
    out = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        v: int | bytes
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise ProtobufError("truncated length-delimited field")
            v, i = buf[i : i + n], i + n
        elif wt == 1:
            v, i = buf[i : i + 8], i + 8
        elif wt == 5:
            v, i = buf[i : i + 4], i + 4
        else:
            raise ProtobufError(f"unsupported wire type {wt}")
        out.append((num, wt, v))
    return out


def _int_or_string(buf: bytes) -> Any:
    f = {n: v for n, _, v in _fields(buf)}
    if f.get(1, 0) == 1:
        return f.get(3, b"").decode()
    return f.get(2, 0)


def _message(buf: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for num, _wt, v in _fields(buf):
        spec = schema.get(num)
        if spec is None:
            continue
        name, kind, sub = spec
        if kind == "str":
            if v:  # proto2 writes empty strings; JSON clients omit them (omitempty)
                out[name] = v.decode()
        elif kind == "bytes":
            out[name] = base64.b64encode(v).decode()
        elif kind == "int":
            out[name] = v if v < (1 << 63) else v - (1 << 64)
        elif kind == "bool":
            out[name] = bool(v)
        elif kind == "msg":
            m = _message(v, sub)
            if m:
                out[name] = m
        elif kind == "rep_str":
            out.setdefault(name, []).append(v.decode())
        elif kind == "rep_msg":
            out.setdefault(name, []).append(_message(v, sub))
        elif kind in ("map_str", "map_bytes", "quantity_map", "map_list"):
            entry = {n: val for n, _, val in _fields(v)}
            key = entry.get(1, b"").decode()
            raw = entry.get(2, b"")
            if kind == "map_str":
                out.setdefault(name, {})[key] = raw.decode()
            elif kind == "map_bytes":
                out.setdefault(name, {})[key] = base64.b64encode(raw).decode()
            elif kind == "map_list":  # ExtraValue {1: repeated string}
                out.setdefault(name, {})[key] = [x.decode() for n, _, x in _fields(raw) if n == 1]
            else:  # resource.Quantity {1: string}
                q = {n: val for n, _, val in _fields(raw)}
                out.setdefault(name, {})[key] = q.get(1, b"").decode()
        elif kind == "intorstr":
            out[name] = _int_or_string(v)
    return out


def decode(body: bytes) -> dict[str, Any]:
    """A JSON-shaped object from a Kubernetes protobuf body; ProtobufError says what is unsupported."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic 'k8s\\x00'")
    unknown = {n: v for n, _, v in _fields(body[len(MAGIC) :])}
    tm = _message(unknown.get(1, b""), TYPE_META)
    kind, api_version = tm.get("kind", ""), tm.get("apiVersion", "")
    schema = KINDS.get(kind)
    if schema is None:
        raise ProtobufError(
            f"protobuf bodies are only understood for {', '.join(sorted(KINDS))} (got {kind or 'no kind'}); "
            "send JSON (e.g. kubectl create -f FILE)"
        )
    obj = _message(unknown.get(2, b""), schema)
    obj["apiVersion"], obj["kind"] = api_version, kind
    return obj


def decode_request(body: bytes) -> dict[str, Any]:
    """:func:`decode` for a request body: what it cannot read is a 415 Status naming why."""
    from ctl.apiserver.status import APIError

    try:
        return decode(body)
    except ProtobufError as e:
        raise APIError(
            415,
            f"unsupported protobuf body: {e}; send application/json or application/yaml",
            "UnsupportedMediaType",
        ) from None
