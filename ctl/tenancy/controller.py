"""The tenant controller: gives every new tenant its private virtual cluster and removes it all again.

For each Active tenant it runs, idempotently, the provisioning of :mod:`ctl.tenancy.provision`
(namespaces, built-in roles and the admin binding, a default Network, the tenant
administrator's token). A tenant being deleted is Terminating (the API server put
``deletionTimestamp`` on it and holds it with the ``centaurus.io/tenant`` finalizer): the
controller then deletes every object the tenant owns, finalizes its namespaces, revokes its
issued tokens and finally drops the tenant's finalizers, which removes the tenant; it repeats
passes until nothing is left.

``run_tenant_controller(client)`` runs it on an API client with system-administrator
rights (it lists, watches and relists tenants every ``resync`` seconds); ``python -m
ctl.tenancy.controller --server URL --token T`` runs it standalone.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from ctl.client import ApiError, Client, ClientConfig, WatchExpired
from ctl.client.kubeconfig import load as load_config
from ctl.tenancy.provision import TENANT_FINALIZER, cleanup_tenant, ensure_tenant, finish_tenant
from ctl.util.daemon import run_daemon
from ctl.util.tasks import cancel_and_wait

log = logging.getLogger("centaurus.tenants")


class TenantController:
    def __init__(self, client: Client, resync: float = 30.0) -> None:
        self.client = client
        self.resync = resync
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.queued: set[str] = set()
        self.passes: dict[str, int] = {}

    def enqueue(self, name: str) -> None:
        if name not in self.queued:
            self.queued.add(name)
            self.queue.put_nowait(name)

    async def sync(self, name: str) -> float | None:
        """Reconcile one tenant; returns a delay to retry after, or None when done."""
        try:
            t = await self.client.get("tenants", name)
        except ApiError as e:
            if e.code == 404:
                self.passes.pop(name, None)
                return None
            raise
        md = t["metadata"]
        if not md.get("deletionTimestamp"):
            self.passes.pop(name, None)
            await ensure_tenant(self.client, name)
            return None
        if TENANT_FINALIZER not in (md.get("finalizers") or []):
            return None  # someone else finishes it
        n = self.passes.get(name, 0)
        self.passes[name] = n + 1
        remaining = await cleanup_tenant(self.client, name, force=n >= 1)
        if remaining:
            log.info("tenant %s: %d objects left to delete", name, remaining)
            return 0.3 if n < 10 else 2.0
        await finish_tenant(self.client, name)
        self.passes.pop(name, None)
        log.info("tenant %s deleted", name)
        return None

    async def worker(self) -> None:
        while True:
            name = await self.queue.get()
            self.queued.discard(name)
            try:
                delay = await self.sync(name)
            except (ApiError, ConnectionError) as e:
                log.warning("tenant %s: %s; retrying", name, e)
                delay = 1.0
            except Exception:
                log.exception("tenant %s: unexpected error; retrying", name)
                delay = 2.0
            if delay is not None:
                asyncio.get_running_loop().call_later(delay, self.enqueue, name)

    async def watch_loop(self) -> None:
        while True:
            try:
                lst = await self.client.list("tenants")
                for t in lst["items"]:
                    self.enqueue(t["metadata"]["name"])
                rv = lst["metadata"]["resourceVersion"]
                async for _typ, obj in self.client.watch(
                    "tenants", resource_version=rv, timeout_seconds=int(self.resync)
                ):
                    self.enqueue(obj["metadata"]["name"])
            except WatchExpired:
                continue
            except (ApiError, ConnectionError) as e:
                log.warning("tenant watch: %s; relisting", e)
                await asyncio.sleep(1.0)


async def run_tenant_controller(client: Client, workers: int = 2, resync: float = 30.0) -> None:
    """Run until cancelled."""
    c = TenantController(client, resync)
    tasks = [asyncio.create_task(c.watch_loop(), name="tenant-watch")]
    tasks += [asyncio.create_task(c.worker(), name=f"tenant-worker-{i}") for i in range(workers)]
    try:
        await asyncio.gather(*tasks)
    finally:
        await cancel_and_wait(tasks)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ctl.tenancy.controller", description="Run the tenant controller alone."
    )
    p.add_argument("--server", default="")
    p.add_argument("--token", default=None)
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--resync", type=float, default=30.0)
    p.add_argument("--log-level", default="INFO")
    a = p.parse_args(argv)
    cfg = ClientConfig(a.server, token=a.token) if a.server else load_config(a.kubeconfig)
    if a.token:
        cfg.token = a.token

    async def go(stop: asyncio.Event) -> None:
        client = Client(cfg)
        task = asyncio.create_task(run_tenant_controller(client, a.workers, a.resync), name="tenant")
        halt = asyncio.create_task(stop.wait(), name="stop-signal")
        try:
            await asyncio.wait({task, halt}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(task, halt)
            await client.close()

    return run_daemon("tenants", go, a.log_level)


if __name__ == "__main__":
    raise SystemExit(main())
