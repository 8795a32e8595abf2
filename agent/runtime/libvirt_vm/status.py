"""A VM pod's status: the domain's state and ``state.json`` as a container state and ``virtualMachineStatus``.

The pod of a VM has one container entry, the VM, whose state follows the domain: ``running`` (with
reason ``Paused``, ``ShuttingDown`` or ``Suspended`` where that applies), ``terminated`` once it is
shut off (``Shutdown``, ``Suspended`` with a managed save, ``Crashed``), ``waiting`` while it is
being defined or failed to be (with the runtime error's reason). The Arktos-style
``virtualMachineStatus`` carries the VM's ``state`` (building, active, paused, suspended, stopped,
error) and ``powerState``.
"""

from __future__ import annotations

from typing import Any

import libvirt

from agent.runtime.base import ContainerState, PodRuntimeStatus, RuntimeError_
from agent.runtime.libvirt_vm.domain import observe
from agent.runtime.libvirt_vm.state import (
    BLOCKED,
    CRASHED,
    PAUSED,
    PMSUSPENDED,
    RUNNING,
    SHUTDOWN,
    SHUTOFF,
    PodState,
)
from ctl.types.meta import now_rfc3339


def pod_status(
    runtime: str,
    st: PodState,
    dom: libvirt.virDomain | None,
    error: RuntimeError_ | None = None,
) -> PodRuntimeStatus:
    """What the runtime reports for the VM pod of ``st`` (``error``: the last sync failed)."""
    state, ms, dom_uuid = observe(dom)
    vm_state, power = "building", "nostate"
    cs = ContainerState(name=st["vmName"], image=st["image"], restart_count=st["restartCount"])
    cs.container_id = f"libvirt://{dom_uuid}" if dom_uuid else ""
    cs.started_at = st["startedAt"]
    finished = False
    if error is not None:
        vm_state, power = "error", "nostate"
        cs.state, cs.reason, cs.message = "waiting", error.reason, str(error)
    elif dom is None:
        cs.state, cs.reason = "waiting", "ContainerCreating"
    elif state in (RUNNING, BLOCKED):
        vm_state, power = "active", "running"
        cs.state, cs.ready = "running", True
    elif state == PAUSED:
        vm_state, power = "paused", "paused"
        cs.state, cs.reason = "running", "Paused"
    elif state == SHUTDOWN:
        vm_state, power = "active", "shutdown"
        cs.state, cs.reason = "running", "ShuttingDown"
    elif state == PMSUSPENDED:
        vm_state, power = "suspended", "suspended"
        cs.state, cs.reason = "running", "Suspended"
    elif state == CRASHED:
        vm_state, power = "error", "crashed"
        cs.state, cs.reason, cs.exit_code = "terminated", "Crashed", 1
    elif state == SHUTOFF and ms:
        vm_state, power = "suspended", "suspended"
        cs.state, cs.reason, cs.exit_code = "terminated", "Suspended", 0
    elif state == SHUTOFF and (st["everStarted"] or st["stoppedByUs"] or st["powerSpec"] == "Shutdown"):
        vm_state, power = "stopped", "shutdown"
        cs.state, cs.reason, cs.exit_code = "terminated", "Shutdown", 0
        if st["error"] == "finished":
            finished = True
    elif state == SHUTOFF:
        vm_state, power = "building", "shutdown"
        cs.state, cs.reason = "waiting", "ContainerCreating"
    if cs.state == "terminated":
        cs.finished_at = st.d.get("stoppedAt") or now_rfc3339()
    vm_status: dict[str, Any] = {
        "name": st["vmName"],
        "virtualMachineId": dom_uuid,
        "image": st["image"],
        "imageId": st["image"],
        "state": vm_state,
        "powerState": power,
        "ready": cs.ready,
        "restartCount": st["restartCount"],
    }
    if cs.message:
        vm_status["message"] = cs.message
    return PodRuntimeStatus(
        uid=st["uid"],
        name=st["name"],
        namespace=st["namespace"],
        tenant=st["tenant"],
        runtime=runtime,
        containers=[cs],
        vm_status=vm_status,
        sandbox_ready=dom is not None and error is None,
        finished=finished,
        message=cs.message,
    )
