"""Validation and defaulting of virtual-machine pods (``spec.virtualMachine``).

A Centaurus pod runs either containers or exactly one virtual machine (Arktos' unified pod). The API
server calls :func:`validate_virtual_machine` from its Pod validation and :func:`defaults` from its Pod
defaulting; both are pure functions of the pod dict, so the same rules hold in the API server, the CLI
(client-side checks) and tests.

``spec.virtualMachine`` fields:

* ``name`` (required, DNS label) -- the VM's name; also its entry in ``status.containerStatuses``.
* ``image`` (required, ``name[:tag]``) -- a VM image in the agent's image store (``ctl.images.vm_image``).
* ``resources`` -- ``requests``/``limits`` for ``cpu`` (vCPUs, rounded up) and ``memory``.
* ``keyPairName`` / ``publicKey`` -- at least one is required; ``publicKey`` is an OpenSSH public key line.
* ``userData`` -- base64 (as every Kubernetes ``[]byte`` field, e.g. Secret data), at most 65535 bytes
  once decoded; given to the guest as cloud-init user data.
* ``cloudInitUserDataScript`` -- plain-text script run by the guest after boot, at most 65535 bytes.
* ``powerSpec`` -- ``Running`` (default) | ``Paused`` | ``Shutdown`` | ``Suspended``.
* ``imagePullPolicy`` -- ``Always`` | ``IfNotPresent`` | ``Never`` (accepted for symmetry with containers).

Quantities are parsed by :mod:`ctl.types.quantity` (re-exported here as ``parse_quantity``).

Every error message starts with the field path, e.g.
``spec.virtualMachine.userData: must be at most 65535 bytes (got 70000)``.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from decimal import Decimal
from typing import Any

from ctl.types.quantity import parse_quantity

MAX_USER_DATA_BYTES = 65535
MAX_SCRIPT_BYTES = 65535
POWER_SPECS = ("Running", "Paused", "Shutdown", "Suspended")
DEFAULT_POWER_SPEC = "Running"
IMAGE_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
MIN_MEMORY_BYTES = 32 * 1024 * 1024
MAX_VCPUS = 64

VM_FIELDS = (
    "name",
    "image",
    "imagePullPolicy",
    "resources",
    "keyPairName",
    "publicKey",
    "userData",
    "cloudInitUserDataScript",
    "powerSpec",
)
VM_STATES = ("building", "active", "paused", "suspended", "stopped", "rebooting", "error", "deleted")
VM_POWER_STATES = ("nostate", "running", "paused", "shutdown", "crashed", "suspended")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_IMAGE_REF = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?$")
_SSH_KEY_TYPES = (
    "ssh-rsa",
    "ssh-dss",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
P = "spec.virtualMachine"


def decode_user_data(value: str) -> bytes:
    """``spec.virtualMachine.userData`` (base64) as bytes; ValueError if it is not base64."""
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError("must be base64-encoded") from e


def _is_openssh_key(key: str) -> bool:
    parts = key.strip().split()
    if len(parts) < 2 or parts[0] not in _SSH_KEY_TYPES:
        return False
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return False
    # The blob starts with the key type as an SSH string: uint32 length + name.
    n = int.from_bytes(blob[:4], "big")
    return blob[4 : 4 + n].decode(errors="replace") == parts[0]


def _validate_resources(res: Any, path: str) -> list[str]:
    errs: list[str] = []
    if not isinstance(res, dict):
        return [f"{path}: must be an object with requests and/or limits"]
    for key in res:
        if key not in ("requests", "limits"):
            errs.append(f"{path}.{key}: unknown field (allowed: requests, limits)")
    values: dict[str, dict[str, Decimal]] = {}
    for kind in ("requests", "limits"):
        section = res.get(kind)
        if section is None:
            continue
        if not isinstance(section, dict):
            errs.append(f"{path}.{kind}: must be a map of resource name to quantity")
            continue
        values[kind] = {}
        for rname, q in section.items():
            fp = f"{path}.{kind}.{rname}"
            if rname not in ("cpu", "memory"):
                errs.append(f"{fp}: unsupported resource for a virtual machine (allowed: cpu, memory)")
                continue
            try:
                v = parse_quantity(q)
            except ValueError:
                errs.append(f"{fp}: invalid quantity {q!r}")
                continue
            if v <= 0:
                errs.append(f"{fp}: must be greater than 0")
                continue
            if rname == "memory" and v < MIN_MEMORY_BYTES:
                errs.append(f"{fp}: must be at least 32Mi for a virtual machine")
            if rname == "cpu" and v > MAX_VCPUS:
                errs.append(f"{fp}: must be at most {MAX_VCPUS}")
            values[kind][rname] = v
    for rname in ("cpu", "memory"):
        req = values.get("requests", {}).get(rname)
        lim = values.get("limits", {}).get(rname)
        if req is not None and lim is not None and req > lim:
            errs.append(f"{path}.requests.{rname}: must be less than or equal to limits.{rname}")
    return errs


def validate_virtual_machine(pod: dict[str, Any]) -> list[str]:
    """Every problem with the pod's containers/virtualMachine choice and its VM spec (empty if valid)."""
    if not isinstance(pod, dict):
        return ["pod: must be an object"]
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return ["spec: must be an object"]
    vm = spec.get("virtualMachine")
    containers = spec.get("containers")
    has_containers = bool(containers)
    if vm is None:
        if not has_containers:
            return ["spec: one of containers or virtualMachine is required"]
        return []
    errs: list[str] = []
    if has_containers:
        errs.append(
            "spec: containers and virtualMachine are mutually exclusive; a pod runs either containers or one virtual machine"
        )
    if spec.get("initContainers"):
        errs.append("spec.initContainers: not allowed in a virtual machine pod")
    if not isinstance(vm, dict):
        errs.append(f"{P}: must be an object")
        return errs
    for key in vm:
        if key not in VM_FIELDS:
            errs.append(f"{P}.{key}: unknown field (allowed: {', '.join(VM_FIELDS)})")

    name = vm.get("name")
    if name is None or name == "":
        errs.append(f"{P}.name: required")
    elif not isinstance(name, str) or len(name) > 63 or not _DNS_LABEL.match(name):
        errs.append(
            f"{P}.name: {name!r} must be a DNS label (lowercase letters, digits and '-', at most 63 characters)"
        )

    image = vm.get("image")
    if image is None or image == "":
        errs.append(f"{P}.image: required")
    elif not isinstance(image, str) or not _IMAGE_REF.match(image):
        errs.append(f"{P}.image: {image!r} is not a valid image reference (expected name[:tag])")

    ipp = vm.get("imagePullPolicy")
    if ipp is not None and ipp not in IMAGE_PULL_POLICIES:
        errs.append(
            f"{P}.imagePullPolicy: unsupported value {ipp!r} (allowed: {', '.join(IMAGE_PULL_POLICIES)})"
        )

    if "resources" in vm and vm["resources"] is not None:
        errs += _validate_resources(vm["resources"], f"{P}.resources")

    kp = vm.get("keyPairName")
    pk = vm.get("publicKey")
    if not kp and not pk:
        errs.append(f"{P}: one of keyPairName or publicKey is required")
    if kp:
        if not isinstance(kp, str) or len(kp) > 253 or not _DNS_SUBDOMAIN.match(kp):
            errs.append(f"{P}.keyPairName: {kp!r} must be a DNS subdomain name")
    if pk:
        if not isinstance(pk, str):
            errs.append(f"{P}.publicKey: must be a string")
        elif "\n" in pk.strip() or not _is_openssh_key(pk):
            errs.append(f"{P}.publicKey: must be one OpenSSH public key line ('ssh-ed25519 AAAA... comment')")

    ud = vm.get("userData")
    if ud is not None:
        if not isinstance(ud, str):
            errs.append(f"{P}.userData: must be a base64-encoded string")
        else:
            try:
                raw = decode_user_data(ud)
            except ValueError:
                errs.append(f"{P}.userData: must be base64-encoded")
            else:
                if len(raw) > MAX_USER_DATA_BYTES:
                    errs.append(f"{P}.userData: must be at most {MAX_USER_DATA_BYTES} bytes (got {len(raw)})")

    script = vm.get("cloudInitUserDataScript")
    if script is not None:
        if not isinstance(script, str):
            errs.append(f"{P}.cloudInitUserDataScript: must be a string")
        elif len(script.encode()) > MAX_SCRIPT_BYTES:
            errs.append(
                f"{P}.cloudInitUserDataScript: must be at most {MAX_SCRIPT_BYTES} bytes (got {len(script.encode())})"
            )

    ps = vm.get("powerSpec")
    if ps is not None and ps not in POWER_SPECS:
        errs.append(f"{P}.powerSpec: unsupported value {ps!r} (allowed: {', '.join(POWER_SPECS)})")
    return errs


def defaults(pod: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults of a VM pod in place (``powerSpec: Running``) and return it; other pods untouched."""
    spec = pod.get("spec") if isinstance(pod, dict) else None
    if isinstance(spec, dict):
        vm = spec.get("virtualMachine")
        if isinstance(vm, dict):
            if not vm.get("powerSpec"):
                vm["powerSpec"] = DEFAULT_POWER_SPEC
    return pod


def is_vm_pod(pod: dict[str, Any]) -> bool:
    """True if the pod runs a virtual machine (the agent sends it to the VM runtime)."""
    spec = pod.get("spec") if isinstance(pod, dict) else None
    return isinstance(spec, dict) and isinstance(spec.get("virtualMachine"), dict)


def vm_resources(vm: dict[str, Any], default_memory_mib: int = 128) -> tuple[int, int]:
    """``(vcpus, memory_mib)`` for a valid ``spec.virtualMachine`` (limits win over requests)."""
    res = vm.get("resources") or {}
    lim, req = res.get("limits") or {}, res.get("requests") or {}
    cpu_q = lim.get("cpu", req.get("cpu"))
    mem_q = lim.get("memory", req.get("memory"))
    vcpus = 1
    if cpu_q is not None:
        c = parse_quantity(cpu_q)
        vcpus = max(1, math.ceil(c))
    mem = default_memory_mib
    if mem_q is not None:
        mem = max(32, math.ceil(parse_quantity(mem_q) / (2**20)))
    return vcpus, mem
