"""Programming one droplet's transit daemon: converge it on the topology, key by key.

A :class:`DropletProgrammer` runs one task per droplet. It knows what its daemon holds
(``known``: listed from the daemon when it first connects, then kept up to date with every
write) and a set of *dirty* keys, the keys a change in the topology may have touched. A pass
asks :meth:`Topology.entry` what the droplet should hold under each dirty key and sends only
the differences: the PUTs of one kind in one batched request (``put(kind, [..])``, all or
nothing on the daemon), in the order substrates, VPCs, nets, endpoints, agents, then DELETEs in
the reverse order. Because the question is asked at send time, a burst of changes collapses
into one pass, and writing the same thing twice is never needed: programming is idempotent.

* Unreachable daemon (connection refused, timeout, 5xx): the keys stay dirty and the pass is
  retried with exponential back-off (0.1 s doubling to 5 s); once it answers again its state is
  listed afresh and diffed in full, so a daemon that restarted empty is resynced in full and
  one that kept its pinned state costs no writes.
* A daemon that restarted between two passes is noticed by its ``pid`` in ``/v1/status``
  (checked every ``check_interval`` seconds while idle) and resynced the same way.
* An entry the daemon refuses (422, e.g. a veth that does not exist) fails the waiters of that
  key with the daemon's message; the rest of the batch is sent one by one.

:meth:`DropletProgrammer.converge` returns a future that is done when its keys have been
applied. RPCs are counted per method (``rpcs``), which the tests and benchmarks read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import Any

from ctl.network.topology import KIND_ORDER, Entry, Key, Topology, normalise
from ctl.transit.client import TransitClient, TransitError

log = logging.getLogger("centaurus.network.programmer")
BATCH = 512
MAX_BACKOFF = 5.0


class ProgramError(Exception):
    """The daemon refused an entry (the message is its one line)."""


def client_for(address: str, timeout: float = 10.0) -> TransitClient:
    if address.startswith("unix://"):
        address = address[len("unix://") :]
    if address.startswith("/"):
        return TransitClient(address, timeout=timeout)
    return TransitClient(tcp=address.removeprefix("tcp://"), timeout=timeout)


def _unreachable(e: Exception) -> bool:
    if isinstance(e, TransitError):
        return e.code == 0 or e.code >= 500
    return isinstance(e, OSError | ConnectionError | TimeoutError)


class DropletProgrammer:
    def __init__(
        self,
        name: str,
        topology: Topology,
        executor: Executor,
        check_interval: float = 2.0,
        on_state: Callable[[str, bool, int | None], None] | None = None,
    ) -> None:
        self.name = name
        self.topo = topology
        self.executor = executor
        self.check_interval = check_interval
        self.on_state = on_state
        self.known: dict[Key, Entry] = {}
        self.listed = False
        self.full = True
        self.dirty: set[Key] = set()
        self.errors: dict[Key, str] = {}
        self.waiters: list[tuple[set[Key], asyncio.Future[None]]] = []
        self.wake = asyncio.Event()
        self.pid: int | None = None
        self.reachable: bool | None = None
        self.rpcs: Counter[str] = Counter()
        self.resyncs = 0
        self._address = ""
        self._client: TransitClient | None = None
        self._task: asyncio.Task[None] | None = None

    # ---- interface --------------------------------------------------------------------------

    def converge(self, keys: Iterable[Key]) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # never "not retrieved"
        ks = set(keys)
        self.dirty |= ks
        self.waiters.append((ks, fut))
        self.wake.set()
        return fut

    def converge_all(self) -> asyncio.Future[None]:
        self.full = True
        return self.converge(())

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"program-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        for _, f in self.waiters:
            if not f.done():
                f.cancel()
        self.waiters.clear()

    # ---- the loop ---------------------------------------------------------------------------

    @property
    def client(self) -> TransitClient:
        d = self.topo.droplets.get(self.name)
        address = d.address if d is not None else ""
        if self._client is None or address != self._address:
            if not address:
                raise ConnectionError(f"droplet {self.name} has no transitd address")
            self._address = address
            self._client = client_for(address)
            self.listed = False
        return self._client

    async def _call(self, method: str, fn: Callable[..., Any], *args: Any) -> Any:
        self.rpcs[method] += 1
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def _run(self) -> None:
        backoff = 0.1
        last_check = time.monotonic()
        while True:
            try:
                if self.listed and time.monotonic() - last_check >= self.check_interval:
                    last_check = time.monotonic()
                    st = await self._call("GET", self.client.status)
                    if st.get("pid") != self.pid:
                        log.info(
                            "transitd %s restarted (pid %s -> %s): resync", self.name, self.pid, st.get("pid")
                        )
                        self.listed = False
                if not self.listed:
                    await self._list()
                    last_check = time.monotonic()
                if self.full:
                    self.full = False
                    self.dirty |= set(self.known) | self.topo.keys_for(self.name)
                if self.dirty:
                    await self._apply()
                self._set_reachable(True)
                backoff = 0.1
                self._resolve()
                if not self.dirty and not self.full:
                    self.wake.clear()
                    try:
                        await asyncio.wait_for(self.wake.wait(), self.check_interval)
                    except TimeoutError:
                        pass
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if not _unreachable(e) and not isinstance(e, KeyError):
                    log.warning("transitd %s: %s", self.name, e)
                else:
                    log.debug("transitd %s unreachable: %s", self.name, e)
                self._set_reachable(False)
                self.listed = False  # it may have restarted: list again once it answers
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def _set_reachable(self, ok: bool) -> None:
        if ok != self.reachable:
            self.reachable = ok
            if self.on_state is not None:
                self.on_state(self.name, ok, self.pid)

    async def _list(self) -> None:
        c = self.client
        st = await self._call("GET", c.status)
        known: dict[Key, Entry] = {}
        for kind in KIND_ORDER:
            for o in await self._call("GET", c.list, kind):
                k, e = normalise(kind, o)
                known[k] = e
        self.known = known
        self.pid = st.get("pid")
        self.listed = True
        self.full = True
        self.resyncs += 1

    async def _apply(self) -> None:
        keys, self.dirty = self.dirty, set()
        puts: dict[str, list[tuple[Key, Entry]]] = {k: [] for k in KIND_ORDER}
        dels: dict[str, list[Key]] = {k: [] for k in KIND_ORDER}
        for key in keys:
            want = self.topo.entry(self.name, key)
            if want == self.known.get(key):
                self.errors.pop(key, None)
                continue
            (dels[key[0]].append(key) if want is None else puts[key[0]].append((key, want)))
        pending = set(k for k, _ in (x for v in puts.values() for x in v)) | {
            k for v in dels.values() for k in v
        }
        try:
            c = self.client
            for kind in KIND_ORDER:
                items = puts[kind]
                for i in range(0, len(items), BATCH):
                    await self._put(c, kind, items[i : i + BATCH])
                    pending -= {k for k, _ in items[i : i + BATCH]}
            for kind in reversed(KIND_ORDER):
                for key in dels[kind]:
                    try:
                        await self._call("DELETE", c.delete, kind, key[1])
                    except TransitError as e:
                        if e.code != 404:
                            raise
                    self.known.pop(key, None)
                    self.errors.pop(key, None)
                    pending.discard(key)
        except BaseException:
            self.dirty |= pending  # what was not applied is still to do
            raise

    async def _put(self, c: TransitClient, kind: str, items: list[tuple[Key, Entry]]) -> None:
        try:
            await self._call("PUT", c.put, kind, [e for _, e in items])
        except TransitError as e:
            if _unreachable(e):
                raise
            if len(items) > 1:
                for one in items:
                    await self._put(c, kind, [one])
                return
            key = items[0][0]
            self.errors[key] = str(e)
            log.warning("transitd %s refused %s %s: %s", self.name, kind, key[1], e)
            return
        for k, e2 in items:
            self.known[k] = e2
            self.errors.pop(k, None)

    def _resolve(self) -> None:
        still = []
        for keys, fut in self.waiters:
            if fut.done():
                continue
            if keys & self.dirty or (self.full and not keys):
                still.append((keys, fut))
                continue
            bad = [self.errors[k] for k in keys if k in self.errors]
            if bad:
                fut.set_exception(ProgramError(f"droplet {self.name}: {bad[0]}"))
            else:
                fut.set_result(None)
        self.waiters = still
