"""Schemas of the Pod and what it is made of (core/v1): PodSpec, Container, probes, volumes, the VM.

Modelled after the Kubernetes types field by field for what the project implements or
passes through (containers, env, resources, probes, ports, volume mounts, tolerations,
scheduling fields), with ``x-kubernetes-preserve-unknown-fields`` where a Kubernetes field
is not implemented yet (volume sources, affinity, security contexts), so manifests written
for Kubernetes keep their fields. ``spec.virtualMachine`` is the Arktos unified pod's VM
(its rules beyond types are in :mod:`ctl.types.vm_validation`; see docs/vms.md).
"""

from __future__ import annotations

from ctl.types.schema.build import (
    array,
    boolean,
    define,
    free_object,
    int_or_string,
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
from ctl.types.schema.meta import CONDITION, OBJECT_META

C = "io.k8s.api.core.v1."

RESOURCES = define(
    C + "ResourceRequirements",
    obj(
        {
            "requests": map_of(quantity(), "Minimum resources required (cpu, memory, ...)."),
            "limits": map_of(quantity(), "Maximum resources allowed."),
            "claims": array(free_object()),
        },
        description="Compute resource requirements.",
    ),
)

ENV_VAR = define(
    C + "EnvVar",
    obj(
        {
            "name": string("Name of the environment variable."),
            "value": string("Value; $(VAR) references are expanded."),
            "valueFrom": free_object("Source of the value (field, resource, ConfigMap or Secret key)."),
        },
        required=["name"],
    ),
)

CONTAINER_PORT = define(
    C + "ContainerPort",
    obj(
        {
            "name": string(),
            "containerPort": integer("Port number on the pod's IP address."),
            "hostPort": integer(),
            "hostIP": string(),
            "protocol": string("TCP, UDP or SCTP."),
        },
        required=["containerPort"],
    ),
)

VOLUME_MOUNT = define(
    C + "VolumeMount",
    obj(
        {
            "name": string("Name of a volume of the pod."),
            "mountPath": string("Path in the container."),
            "readOnly": boolean(),
            "subPath": string(),
            "subPathExpr": string(),
            "mountPropagation": string(),
            "recursiveReadOnly": string(),
        },
        required=["name", "mountPath"],
    ),
)

EXEC_ACTION = define(C + "ExecAction", obj({"command": strings("Command line run in the container.")}))
HTTP_HEADER = define(C + "HTTPHeader", obj({"name": string(), "value": string()}, required=["name", "value"]))
HTTP_GET = define(
    C + "HTTPGetAction",
    obj(
        {
            "path": string(),
            "port": int_or_string("Port number or name."),
            "host": string(),
            "scheme": string("HTTP or HTTPS."),
            "httpHeaders": array(HTTP_HEADER),
        },
        required=["port"],
    ),
)
TCP_SOCKET = define(
    C + "TCPSocketAction", obj({"port": int_or_string(), "host": string()}, required=["port"])
)
GRPC_ACTION = define(C + "GRPCAction", obj({"port": integer(), "service": string()}, required=["port"]))

PROBE = define(
    C + "Probe",
    obj(
        {
            "exec": EXEC_ACTION,
            "httpGet": HTTP_GET,
            "tcpSocket": TCP_SOCKET,
            "grpc": GRPC_ACTION,
            "initialDelaySeconds": integer(),
            "timeoutSeconds": integer(),
            "periodSeconds": integer(),
            "successThreshold": integer(),
            "failureThreshold": integer(),
            "terminationGracePeriodSeconds": integer(fmt="int64"),
        },
        description="A health check run by the node agent.",
    ),
)

CONTAINER = define(
    C + "Container",
    obj(
        {
            "name": string("Name of the container (a DNS label), unique in the pod."),
            "image": string("Image reference."),
            "imagePullPolicy": string("Always, IfNotPresent or Never."),
            "command": strings("Entrypoint array (the image's ENTRYPOINT if absent)."),
            "args": strings("Arguments to the entrypoint."),
            "workingDir": string(),
            "ports": array(CONTAINER_PORT),
            "env": array(ENV_VAR, "Environment variables."),
            "envFrom": array(free_object()),
            "resources": RESOURCES,
            "resizePolicy": array(free_object()),
            "restartPolicy": string(),
            "volumeMounts": array(VOLUME_MOUNT),
            "volumeDevices": array(free_object()),
            "livenessProbe": PROBE,
            "readinessProbe": PROBE,
            "startupProbe": PROBE,
            "lifecycle": free_object(),
            "terminationMessagePath": string(),
            "terminationMessagePolicy": string(),
            "securityContext": free_object(),
            "stdin": boolean(),
            "stdinOnce": boolean(),
            "tty": boolean(),
        },
        required=["name"],
        description="A container of a pod.",
    ),
)

VOLUME = define(
    C + "Volume",
    obj(
        {
            "name": string("Name of the volume (a DNS label), referenced by volumeMounts."),
            "emptyDir": free_object(),
            "hostPath": free_object(),
            "configMap": free_object(),
            "secret": free_object(),
            "projected": free_object(),
            "downwardAPI": free_object(),
            "persistentVolumeClaim": free_object(),
        },
        required=["name"],
        preserve=True,
        description="A volume of a pod (sources the project does not implement are kept as written).",
    ),
)

TOLERATION = define(
    C + "Toleration",
    obj(
        {
            "key": string(),
            "operator": string("Exists or Equal."),
            "value": string(),
            "effect": string("NoSchedule, PreferNoSchedule or NoExecute; empty matches all."),
            "tolerationSeconds": integer(fmt="int64"),
        },
    ),
)

VIRTUAL_MACHINE = define(
    C + "VirtualMachine",
    obj(
        {
            "name": string("Name of the VM (a DNS label)."),
            "image": string("VM image name[:tag] in the node's image store."),
            "imagePullPolicy": string(),
            "resources": RESOURCES,
            "keyPairName": string(),
            "publicKey": string("One OpenSSH public key line."),
            "userData": string("Base64 cloud-init user data (at most 65535 bytes decoded)."),
            "cloudInitUserDataScript": string("Plain-text script the guest runs after boot."),
            "powerSpec": string("Running, Paused, Shutdown or Suspended."),
        },
        preserve=True,  # vm_validation names each unknown field itself
        description="The virtual machine of a VM pod (Arktos unified pod); see docs/vms.md.",
    ),
)

POD_SPEC = define(
    C + "PodSpec",
    obj(
        {
            "containers": array(CONTAINER, "Containers of the pod (or one virtualMachine)."),
            "initContainers": array(CONTAINER),
            "ephemeralContainers": array(free_object()),
            "virtualMachine": VIRTUAL_MACHINE,
            "volumes": array(VOLUME),
            "restartPolicy": string("Always, OnFailure or Never."),
            "terminationGracePeriodSeconds": integer(fmt="int64"),
            "activeDeadlineSeconds": integer(fmt="int64"),
            "dnsPolicy": string(),
            "dnsConfig": free_object(),
            "nodeSelector": string_map("Labels a node must have to run the pod."),
            "nodeName": string("The node the pod is bound to (set by the scheduler)."),
            "serviceAccountName": string(),
            "serviceAccount": string(),
            "automountServiceAccountToken": boolean(),
            "hostNetwork": boolean(),
            "hostPID": boolean(),
            "hostIPC": boolean(),
            "shareProcessNamespace": boolean(),
            "securityContext": free_object(),
            "imagePullSecrets": array(obj({"name": string()})),
            "hostname": string(),
            "subdomain": string(),
            "affinity": free_object(),
            "schedulerName": string(),
            "tolerations": array(TOLERATION),
            "hostAliases": array(free_object()),
            "priorityClassName": string(),
            "priority": integer(),
            "readinessGates": array(free_object()),
            "runtimeClassName": string(),
            "enableServiceLinks": boolean(),
            "preemptionPolicy": string(),
            "overhead": map_of(quantity()),
            "topologySpreadConstraints": array(free_object()),
            "os": free_object(),
        },
        description="What a pod runs and how.",
    ),
)

CONTAINER_STATUS = define(
    C + "ContainerStatus",
    obj(
        {
            "name": string(),
            "ready": boolean(),
            "started": boolean(),
            "restartCount": integer(),
            "image": string(),
            "imageID": string(),
            "containerID": string(),
            "state": free_object(),
            "lastState": free_object(),
        },
        preserve=True,
    ),
)

POD_IP = obj({"ip": string()})

POD_STATUS = define(
    C + "PodStatus",
    obj(
        {
            "phase": string("Pending, Running, Succeeded, Failed or Unknown."),
            "conditions": array(CONDITION),
            "message": string(),
            "reason": string(),
            "nominatedNodeName": string(),
            "hostIP": string(),
            "hostIPs": array(POD_IP),
            "podIP": string(),
            "podIPs": array(POD_IP),
            "startTime": timestamp(),
            "initContainerStatuses": array(CONTAINER_STATUS),
            "containerStatuses": array(CONTAINER_STATUS),
            "qosClass": string(),
            "virtualMachineStatus": free_object("State of the VM of a VM pod."),
        },
        preserve=True,
        description="Observed state of a pod (written by the scheduler and the node agent).",
    ),
)

POD_TEMPLATE_SPEC = define(
    C + "PodTemplateSpec",
    obj({"metadata": OBJECT_META, "spec": POD_SPEC}, description="Pods a workload creates."),
)

resource(
    C + "Pod",
    "v1",
    "Pod",
    {"spec": POD_SPEC, "status": POD_STATUS},
    "A group of containers, or one virtual machine, run together on a node.",
)
