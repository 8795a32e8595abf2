"""The Recreate strategy (Kubernetes' ``deployment/recreate.go``).

Scale every old ReplicaSet to zero, wait until none of their pods is left running (the
controller is woken by pod deletions), then create or scale up the new ReplicaSet.
"""

from __future__ import annotations

from typing import Any

from ctl.controllers.deployment.progress import deployment_complete
from ctl.controllers.deployment.sync import SyncMixin
from ctl.controllers.deployment.util import replicas_of


class RecreateMixin(SyncMixin):
    """One step of a recreate rollout per sync."""

    async def _rollout_recreate(self, d: dict[str, Any], rss: list[dict[str, Any]]) -> float | None:
        new_rs, old = await self._get_all(d, rss, create=False)
        all_rs = old + ([new_rs] if new_rs else [])
        scaled = False
        for rs in old:
            if replicas_of(rs) > 0:
                scaled |= (await self._scale(d, rs, 0))[0]
        if scaled:
            return await self._sync_rollout_status(d, all_rs, new_rs)
        for rs in old:
            for p in self.pods.by_index("controller", rs["metadata"]["uid"]):
                if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                    return await self._sync_rollout_status(d, all_rs, new_rs)
        if new_rs is None:
            new_rs, old = await self._get_all(d, rss, create=True)
            if new_rs is None:
                return 0.5
            all_rs = old + [new_rs]
        if replicas_of(new_rs) != replicas_of(d):
            await self._scale(d, new_rs, replicas_of(d))
        if deployment_complete(d, d.get("status") or {}):
            await self._cleanup(d, old)
        return await self._sync_rollout_status(d, all_rs, new_rs)
