"""The RollingUpdate strategy (Kubernetes' ``deployment/rolling.go``).

Scale the new ReplicaSet up while the total stays within ``replicas + maxSurge`` and the
old ones down while the available pods stay at least ``replicas - maxUnavailable``. Two
guards make this hold even while ReplicaSet statuses lag: a ReplicaSet counts as
``max(spec.replicas, status.replicas)`` pods when surging, and as
``min(spec.replicas, status.availableReplicas)`` available pods when scaling down. Old
ReplicaSets lose their unavailable pods first, then available ones within the budget.
"""

from __future__ import annotations

from typing import Any

from ctl.controllers.deployment.progress import deployment_complete
from ctl.controllers.deployment.sync import SyncMixin
from ctl.controllers.deployment.util import created, max_unavailable, new_rs_replicas, replicas_of, st


class RollingMixin(SyncMixin):
    """One step of a rolling update per sync."""

    async def _rollout_rolling(self, d: dict[str, Any], rss: list[dict[str, Any]]) -> float | None:
        new_rs, old = await self._get_all(d, rss, create=True)
        if new_rs is None:
            return 0.5
        all_rs = old + [new_rs]
        if await self._reconcile_new(d, new_rs, old):
            return await self._sync_rollout_status(d, all_rs, new_rs)
        if await self._reconcile_old(d, new_rs, old):
            return await self._sync_rollout_status(d, all_rs, new_rs)
        if deployment_complete(d, d.get("status") or {}):
            await self._cleanup(d, old)
        return await self._sync_rollout_status(d, all_rs, new_rs)

    async def _reconcile_new(
        self, d: dict[str, Any], new_rs: dict[str, Any], old: list[dict[str, Any]]
    ) -> bool:
        want = replicas_of(d)
        cur = replicas_of(new_rs)
        if cur == want:
            return False
        if cur > want:
            return (await self._scale(d, new_rs, want))[0]
        n = new_rs_replicas(d, old, new_rs)
        return (await self._scale(d, new_rs, n))[0]

    async def _reconcile_old(
        self, d: dict[str, Any], new_rs: dict[str, Any], old: list[dict[str, Any]]
    ) -> bool:
        old_pods = sum(replicas_of(r) for r in old)
        if old_pods == 0:
            return False
        all_rs = old + [new_rs]
        all_pods = sum(replicas_of(r) for r in all_rs)
        min_available = replicas_of(d) - max_unavailable(d)
        new_unavailable = replicas_of(new_rs) - st(new_rs, "availableReplicas")
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        cleaned = 0
        # First scale down old ReplicaSets' unhealthy (not available) replicas.
        for rs in sorted(old, key=created):
            if cleaned >= max_scaled_down:
                break
            cur = replicas_of(rs)
            healthy = min(st(rs, "availableReplicas"), cur)
            if cur == 0 or cur == healthy:
                continue
            down = min(max_scaled_down - cleaned, cur - healthy)
            await self._scale(d, rs, cur - down)
            cleaned += down
        # Then available ones, keeping minAvailable.
        available = sum(min(st(r, "availableReplicas"), replicas_of(r)) for r in all_rs)
        budget = min(available - min_available, max_scaled_down - cleaned)
        scaled = 0
        if budget > 0:
            for rs in sorted(old, key=created):
                if scaled >= budget:
                    break
                cur = replicas_of(rs)
                if cur == 0:
                    continue
                down = min(cur, budget - scaled)
                await self._scale(d, rs, cur - down)
                scaled += down
        return cleaned + scaled > 0
