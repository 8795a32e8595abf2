"""Pod status as the agent reports it: from a runtime observation to ``pod.status`` (pure functions).

:func:`compute_status` turns a :class:`~agent.runtime.base.PodRuntimeStatus` (already carrying the
probe-derived ``ready`` bits) into the Kubernetes status: ``phase`` (kubelet's ``getPhase`` rules,
and a terminal phase never goes back), the ``PodScheduled``/``Initialized``/``ContainersReady``/
``Ready`` conditions (transition times kept while a condition's status is unchanged),
``containerStatuses``, ``hostIP(s)``, ``podIP(s)``, ``startTime``, ``qosClass`` and, for VM pods,
``virtualMachineStatus``.

:func:`merge_patch` computes the RFC 7386 merge patch from the current status to the new one, so
the agent writes a minimal ``PATCH .../pods/NAME/status`` that never conflicts with other writers of
the pod, and only when something changed.
"""

from __future__ import annotations

from typing import Any

from agent.runtime.base import PodRuntimeStatus
from ctl.types.meta import now_rfc3339

TERMINAL = ("Succeeded", "Failed")


def qos_class(spec: dict[str, Any]) -> str:
    cs = spec.get("containers") or []
    any_set = False
    guaranteed = True
    for c in cs:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and req[r] != lim[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _phase(rs: PodRuntimeStatus, policy: str) -> str:
    cs = rs.containers
    if rs.finished and cs:
        return "Succeeded" if all((c.exit_code or 0) == 0 for c in cs) else "Failed"
    never_ran = [c for c in cs if c.state == "waiting" and c.restart_count == 0 and not c.last_terminated]
    running = [c for c in cs if c.state == "running"]
    terminated = [c for c in cs if c.state == "terminated"]
    if never_ran or not cs:
        return "Pending"
    if running:
        return "Running"
    if terminated and len(terminated) == len(cs) and policy != "Always":
        if policy == "Never" or all((c.exit_code or 0) == 0 for c in terminated):
            return "Succeeded" if all((c.exit_code or 0) == 0 for c in terminated) else "Failed"
    return "Running"  # restarting (CrashLoopBackOff) counts as Running, as in kubelet


def _condition(
    typ: str, ok: bool, prev: dict[str, dict[str, Any]], now: str, reason: str = "", message: str = ""
) -> dict[str, Any]:
    status = "True" if ok else "False"
    p = prev.get(typ)
    ltt = p.get("lastTransitionTime") if p is not None and p.get("status") == status else now
    c: dict[str, Any] = {
        "type": typ,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": ltt or now,
    }
    if not ok and reason:
        c["reason"] = reason
        if message:
            c["message"] = message
    return c


def compute_status(
    pod: dict[str, Any],
    rs: PodRuntimeStatus | None,
    host_ip: str,
    error: tuple[str, str] | None = None,
    fail: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The status the agent wants the pod to have.

    ``rs`` is the runtime's observation (None when the runtime failed before observing anything);
    ``error`` (reason, message) is a runtime error to report while the pod stays Pending; ``fail``
    (reason, message) makes the pod Failed (e.g. no VM runtime on this node).
    """
    old = pod.get("status") or {}
    spec = pod.get("spec") or {}
    prev = {c.get("type"): c for c in old.get("conditions") or []}
    now = now_rfc3339()
    policy = spec.get("restartPolicy") or "Always"
    is_vm = bool(spec.get("virtualMachine"))
    new: dict[str, Any] = {}
    if fail is not None:
        phase = "Failed"
    elif rs is None:
        phase = "Pending"
    else:
        phase = _phase(rs, policy)
    if old.get("phase") in TERMINAL:
        phase = old["phase"]
    new["phase"] = phase
    containers = rs.containers if rs is not None else []
    cstat: list[dict[str, Any]] = [c.to_k8s() for c in containers]
    if not containers:
        reason, message = error if error else ("ContainerCreating", "")
        for c in spec.get("containers") or ([spec["virtualMachine"]] if is_vm else []):
            w: dict[str, Any] = {"reason": reason}
            if message:
                w["message"] = message
            cstat.append(
                {
                    "name": c.get("name"),
                    "image": c.get("image", ""),
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {"waiting": w},
                }
            )
    unready = (
        [c.name for c in containers if not c.ready]
        if containers
        else [c.get("name") for c in spec.get("containers") or []]
    )
    terminal = phase in TERMINAL
    all_ready = bool(containers) and not unready and not terminal
    if terminal:
        r_reason, r_msg = "PodCompleted", ""
    else:
        r_reason, r_msg = (
            "ContainersNotReady",
            f"containers with unready status: [{' '.join(str(n) for n in unready)}]",
        )
    conds = [
        _condition("PodScheduled", True, prev, now),
        _condition("Initialized", True, prev, now),
        _condition("ContainersReady", all_ready, prev, now, r_reason, r_msg),
        _condition("Ready", all_ready, prev, now, r_reason, r_msg),
    ]
    if "PodScheduled" in prev:  # keep the scheduler's own condition as it wrote it
        conds[0] = prev["PodScheduled"]
    new["conditions"] = conds
    new["hostIP"] = host_ip
    new["hostIPs"] = [{"ip": host_ip}]
    if rs is not None and rs.pod_ip:
        new["podIP"] = rs.pod_ip
        new["podIPs"] = [{"ip": rs.pod_ip}]
    elif old.get("podIP"):
        new["podIP"], new["podIPs"] = old["podIP"], old.get("podIPs") or [{"ip": old["podIP"]}]
    new["startTime"] = old.get("startTime") or now
    if cstat:
        new["containerStatuses"] = cstat
    new["qosClass"] = qos_class(spec)
    if is_vm and rs is not None and rs.vm_status is not None:
        new["virtualMachineStatus"] = rs.vm_status
    if fail is not None:
        new["reason"], new["message"] = fail
    elif error is not None:
        new["message"] = f"{error[0]}: {error[1]}"
    elif rs is not None and rs.message:
        new["message"] = rs.message
    if old.get("nominatedNodeName"):
        new["nominatedNodeName"] = old["nominatedNodeName"]
    result: dict[str, Any] = prune(new)
    return result


def set_condition(
    status: dict[str, Any], pod: dict[str, Any], typ: str, ok: bool, reason: str = "", message: str = ""
) -> None:
    """Add (or replace) condition ``typ`` in a computed ``status``, keeping its transition time."""
    prev = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
    cond = _condition(typ, ok, prev, now_rfc3339(), reason, message)
    conds = [c for c in status.get("conditions") or [] if c.get("type") != typ]
    status["conditions"] = [*conds[:1], cond, *conds[1:]]


def prune(obj: Any) -> Any:
    """Drop ``None`` values from nested dicts (not inside lists): a merge patch would delete them."""
    if isinstance(obj, dict):
        return {k: prune(v) for k, v in obj.items() if v is not None}
    return obj


def merge_patch(old: Any, new: Any) -> Any:
    """RFC 7386 merge patch turning ``old`` into ``new`` (dicts recurse; anything else is replaced)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {}
    for k, v in new.items():
        if k not in old:
            patch[k] = v
        elif old[k] != v:
            patch[k] = merge_patch(old[k], v) if isinstance(v, dict) and isinstance(old[k], dict) else v
    for k in old:
        if k not in new:
            patch[k] = None
    return patch
