"""Put malformed objects into an API server's store behind its back, as an older version might have.

The API server validates what it is sent, so a malformed object can only reach the
controllers and the scheduler from the store itself. :func:`corrupt` does that the way
it happens in life: the test creates valid objects through the API, stops the API
server, rewrites the objects' JSON in the (sqlite) store in-process, and starts the API
server again on the same data directory and port, which then serves them as they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from ctl.client.aio import resolve_kind
from ctl.store import open_store
from tests.cluster import ApiServerProcess

Change = Callable[[dict[str, Any]], None]


async def _rewrite(db: str, changes: dict[str, Change]) -> None:
    store = open_store(f"sqlite://{db}")
    await store.start()
    try:
        for key, change in changes.items():
            kv = await store.get(key)
            assert kv is not None, f"{key} is not in the store"
            obj = orjson.loads(kv.value)
            change(obj)
            await store.update(key, orjson.dumps(obj), kv.mod_revision)
    finally:
        await store.close()


def store_key(resource: str, name: str, namespace: str = "", tenant: str = "system") -> str:
    return resolve_kind(resource).key(tenant, namespace, name)


async def corrupt(api: ApiServerProcess, changes: dict[str, Change]) -> None:
    """Stop ``api``, apply ``changes`` (store key -> in-place edit of the object) and start it again."""
    api.stop()
    await _rewrite(str(api.data_dir / "store.db"), changes)
    await asyncio.to_thread(api.start)
