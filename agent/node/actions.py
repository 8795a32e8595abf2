"""Actions: v1 ``Action`` objects naming this node, carried out once each with the pod's runtime.

An Action (``spec.operation`` one of :data:`~ctl.types.actions.ACTION_OPERATIONS`, ``spec.podName``,
optionally ``spec.podID`` and parameters) arrives through the action watch of every tenant
partition. :class:`ActionRunner` starts one task per Action it has not seen complete: the task waits
until the agent has adopted its pods, finds the pod worker by ``tenant/namespace/pod``, checks that
the pod is still the one meant (``podID``) and that a runtime can serve it, calls
``runtime.action`` and writes the result to the Action's ``status`` subresource (``complete``,
``completionTime``, results or ``error``), retrying the write until it lands or the Action is gone.
The pod's worker is woken afterwards so that its status reflects the action at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from agent.node.podworker import PodWorker
from agent.runtime.base import Runtime, RuntimeError_
from ctl.client.aio import ApiError, Client
from ctl.types.actions import ACTION_OPERATIONS
from ctl.types.kinds import SYSTEM_TENANT
from ctl.types.meta import now_rfc3339, sibling_key
from ctl.util.tasks import cancel_and_wait

log = logging.getLogger("centaurus.agent")

_NOT_PARAMS = ("nodeName", "podName", "podID", "pod", "operation", "action", "params")


class ActionRunner:
    """Performs the Actions of one node (see the module docstring)."""

    def __init__(
        self,
        node_name: str,
        ready: asyncio.Event,
        find_pod: Callable[[str], PodWorker | None],
        runtime_of: Callable[[dict[str, Any]], Runtime | None],
        write_limit: asyncio.Semaphore,
    ) -> None:
        self.node_name = node_name
        self.ready = ready
        self.find_pod = find_pod
        self.runtime_of = runtime_of
        self.write_limit = write_limit
        self._running: set[str] = set()
        self._done: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def on_action(self, typ: str, action: dict[str, Any], client: Client) -> None:
        """Called by the action source for every event on an Action naming this node (must not block)."""
        if typ == "DELETED":
            return
        md = action.get("metadata") or {}
        uid = md.get("uid") or ""
        if (action.get("status") or {}).get("complete") or uid in self._running or uid in self._done:
            return
        self._running.add(uid)
        t = asyncio.create_task(self._run(action, client), name=f"action-{md.get('name')}")
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        await cancel_and_wait(list(self._tasks))

    async def _run(self, action: dict[str, Any], client: Client) -> None:
        md = action["metadata"]
        uid = md["uid"]
        try:
            await self.ready.wait()
            result = await self._perform(action)
            result["completionTime"] = now_rfc3339()
            await self._write_result(client, md, result)
            self._done.add(uid)
        finally:
            self._running.discard(uid)

    async def _perform(self, action: dict[str, Any]) -> dict[str, Any]:
        md = action["metadata"]
        spec = action.get("spec") or {}
        op = spec.get("operation") or spec.get("action") or ""
        pod_name = spec.get("podName") or spec.get("pod") or ""
        key = sibling_key(action, pod_name)  # the pod lives beside its Action
        params = dict(spec.get("params") or {})
        params.update({k: v for k, v in spec.items() if k not in _NOT_PARAMS})
        w = self.find_pod(key)
        if op not in ACTION_OPERATIONS:
            return {
                "complete": True,
                "error": f"unsupported action {op!r} (supported: {', '.join(ACTION_OPERATIONS)})",
            }
        if w is None:
            return {"complete": True, "error": f"pod {pod_name!r} is not running on node {self.node_name}"}
        if spec.get("podID") and spec["podID"] != w.uid:
            return {
                "complete": True,
                "error": f"pod {pod_name!r} was replaced (uid {w.uid}, action for {spec['podID']})",
            }
        rt = self.runtime_of(w.pod)
        result: dict[str, Any]
        if rt is None:
            result = {"complete": True, "error": f"node {self.node_name} has no runtime for pod {pod_name!r}"}
        else:
            log.info("action %s: %s on pod %s", md.get("name"), op, key)
            try:
                result = await rt.action(w.uid, op, params)
            except RuntimeError_ as e:
                result = {"error": str(e)}
            result.setdefault("complete", True)
        w.wake.set()
        return result

    async def _write_result(self, client: Client, md: dict[str, Any], result: dict[str, Any]) -> None:
        """Write ``result`` to the Action's status; retried until written or the Action is gone."""
        while True:
            try:
                async with self.write_limit:
                    await client.patch(
                        "actions",
                        md["name"],
                        {"status": result},
                        md.get("namespace"),
                        md.get("tenant") or SYSTEM_TENANT,
                        subresource="status",
                    )
                return
            except ApiError as e:
                if e.code == 404:
                    return
                log.warning("action %s: status write failed: %s; retrying", md.get("name"), e)
            except ConnectionError as e:
                log.warning("action %s: status write failed: %s; retrying", md.get("name"), e)
            await asyncio.sleep(1.0)
