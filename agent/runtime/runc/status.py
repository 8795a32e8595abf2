"""What the runc runtime reports: Kubernetes container states derived from the instance records.

Everything here reads the files of :mod:`agent.runtime.runc.instance` and the restart back-off,
and decides nothing about what to run: :func:`container_status` maps the latest instance of a
container (plus the previous one, for ``lastState``) to a
:class:`~agent.runtime.base.ContainerState` - ``ContainerCreating`` while its bundle is built or its
shim starts, ``running``, ``CrashLoopBackOff`` while a restart waits for its back-off, and
``terminated`` with ``Completed``/``Error``/``StartError`` (runc's own message when the process never
started). :func:`should_restart` is ``restartPolicy``; :func:`pod_signature` is what the runtime's
PLEG compares to notice that a pod needs a sync.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

from agent.runtime.backoff import BackOff
from agent.runtime.base import ContainerState, rfc3339_or_none
from agent.runtime.runc.instance import Instance, instance_at, latest_instance


def should_restart(policy: str, code: int) -> bool:
    """``restartPolicy`` applied to an exit code."""
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return code != 0
    return True


def terminated_dict(inst: Instance) -> dict[str, Any]:
    """An exited instance as a ``terminated`` state (``lastState`` of the next one)."""
    ex = inst.exit()
    code, finished = ex if ex is not None else (255, None)
    err = inst.start_error()
    out: dict[str, Any] = {
        "exitCode": 128 if err else code,
        "reason": "StartError" if err else ("Completed" if code == 0 else "Error"),
        "startedAt": rfc3339_or_none(inst.meta.get("started")),
        "finishedAt": rfc3339_or_none(finished),
        "containerID": f"runc://{inst.id}",
    }
    if err:
        out["message"] = err
    return out


def _terminated(cs: ContainerState, inst: Instance, code: int, finished: float) -> None:
    cs.state, cs.exit_code = "terminated", code
    cs.reason = "Completed" if code == 0 else "Error"
    err = inst.start_error()
    if err:
        cs.exit_code, cs.reason, cs.message = 128, "StartError", err
    cs.started_at = rfc3339_or_none(inst.meta.get("started"))
    cs.finished_at = rfc3339_or_none(finished)


def container_status(
    uid: str, pdir: Path, c: dict[str, Any], policy: str, backoff: BackOff
) -> tuple[ContainerState, bool, str]:
    """(state, done for good, status note) of container ``c`` of the pod in ``pdir``."""
    name = c.get("name") or ""
    image = c.get("image") or ""
    cs = ContainerState(name=name, image=image)
    inst = latest_instance(pdir, name)
    err_path = pdir / "containers" / name / "error.json"
    err = None
    if err_path.exists():
        with contextlib.suppress(OSError, ValueError):
            err = json.loads(err_path.read_text())
    if inst is None:
        cs.state, cs.reason = "waiting", "ContainerCreating"
        if err:
            cs.reason, cs.message = err["reason"], err["message"]
        return cs, False, ""
    cs.container_id = f"runc://{inst.id}"
    cs.restart_count = inst.n
    prev = instance_at(pdir, name, inst.n - 1) if inst.n > 0 else None
    if prev is not None:
        cs.last_terminated = terminated_dict(prev)
    note = str(inst.meta.get("note") or "")
    state = inst.state()
    if state == "running":
        cs.state = "running"
        cs.started_at = rfc3339_or_none(inst.meta.get("started"))
        return cs, False, note
    if state in ("starting", "lost"):
        cs.state, cs.reason = "waiting", "ContainerCreating"
        return cs, False, note
    ex = inst.exit()
    assert ex is not None
    code, finished = ex
    if err and err.get("n") == inst.n + 1:
        # the restart could not be created (image gone, bad config...)
        cs.state, cs.reason, cs.message = "waiting", err["reason"], err["message"]
        cs.last_terminated = terminated_dict(inst)
        return cs, False, note
    if should_restart(policy, code):
        key = f"{uid}/{name}"
        remaining = backoff.remaining(key, finished)
        if remaining > 0:
            cs.state, cs.reason = "waiting", "CrashLoopBackOff"
            delay = backoff.current(key)
            cs.message = f"back-off {delay:g}s restarting failed container={name} pod={pdir.name}"
            cs.last_terminated = terminated_dict(inst)
            return cs, False, note
        # exited, restart due at the next sync: report the termination until then
        _terminated(cs, inst, code, finished)
        return cs, False, note
    _terminated(cs, inst, code, finished)
    return cs, True, note


def pod_signature(pdir: Path, backoff: BackOff) -> tuple[Any, ...]:
    """What changes when a pod needs a sync: each container's instance, state and back-off expiry."""
    sig: list[Any] = []
    cdirs = pdir / "containers"
    if not cdirs.is_dir():
        return ()
    now = time.time()
    for cdir in sorted(cdirs.iterdir()):
        inst = latest_instance(pdir, cdir.name)
        if inst is None:
            continue
        state = inst.state()
        due = False
        if state == "exited":
            ex = inst.exit()
            if ex is not None:
                due = backoff.remaining(f"{pdir.name}/{cdir.name}", ex[1]) <= 0 and now - ex[1] < 3600
        sig.append((cdir.name, inst.n, state, due))
    return tuple(sig)
