"""A thin synchronous wrapper over the async client, for scripts and the CLI.

It runs one private event loop in a background thread and forwards each call to the
async :class:`~ctl.client.aio.Client`; watches and log streams come back as ordinary
iterators.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

from ctl.client.aio import Client
from ctl.client.kubeconfig import ClientConfig

T = TypeVar("T")


class SyncClient:
    def __init__(self, config: ClientConfig, timeout: float = 30.0) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="centaurus-client")
        self._thread.start()
        self.aio = Client(config, timeout=timeout)

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None) -> SyncClient:
        from ctl.client.kubeconfig import load

        return cls(load(path, context))

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self.aio, name)
        if not asyncio.iscoroutinefunction(fn):
            return fn

        def call(*a: Any, **kw: Any) -> Any:
            return self._run(fn(*a, **kw))

        return call

    def watch(self, *a: Any, **kw: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        return self._iterate(self.aio.watch(*a, **kw))

    def log_stream(self, *a: Any, **kw: Any) -> Iterator[bytes]:
        """:meth:`Client.log_stream <ctl.client.aio.Client.log_stream>` as an ordinary iterator."""
        return self._iterate(self.aio.log_stream(*a, **kw))

    def _iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        try:
            while True:
                try:
                    yield self._run(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._run(agen.aclose())  # type: ignore[attr-defined]

    def close(self) -> None:
        self._run(self.aio.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
