"""The etcd backend: the store contract on a real etcd through ``aetcd``.

Scale-out and HA deployments keep their registry in etcd (Debian ``etcd-server``).
:class:`EtcdStore` maps every contract operation onto one etcd request over a single
gRPC channel owned by one ``aetcd.Client`` (HTTP/2 multiplexes concurrent calls, so
concurrent writers share the channel without head-of-line blocking):

* ``create`` is a transaction ``create_revision(key) == 0 -> put``;
* ``update``/``delete`` are transactions ``create_revision(key) > 0 [and
  mod_revision(key) == expected] -> put/delete``, whose failure branch reads the key
  so a conflict reports the actual revision and a missing key is told apart;
* ``list`` is one range request with ``limit`` and ``revision``; continuation starts
  at ``start_after + "\\0"`` (the smallest key after it);
* ``watch(prefix, after)`` is an etcd watch from ``start_revision = after + 1`` with
  ``prev_kv`` so DELETE events carry the last value and updates carry the previous one
  (unless the caller passes ``prev_kv=False``: the watch cache keeps values itself).

aetcd's convenience methods lack ``limit``/``revision`` on ranges, and its multiplexed
watcher costs several Python hops per event, so requests are built from ``aetcd.rpc``
messages and sent on stubs over the client's channel: ``KVStub`` for reads and writes, and
for each watch its own bidirectional ``Watch`` stream (HTTP/2 streams on the one channel),
whose responses are turned into events directly.

Compaction: etcd answers a range below its compacted revision with
``OUT_OF_RANGE "mvcc: required revision has been compacted"`` and a watch below it
with a response carrying ``compact_revision``. Both become :class:`CompactedError`.
etcd has no cheap "what is the compacted revision" call, so
:meth:`EtcdStore.compacted_revision` remembers the last compaction this client did (or
learned), checks it with one range read at that revision (which fails only if someone
compacted further), and only then learns the exact value from a throwaway watch at
revision 1, whose compaction response carries it. Watches and lists check the remembered
value first so a revision at or after ``compact_revision - 1`` (which etcd itself would
still serve for watches) is treated the same way as by the sqlite backend:
``after_revision < compacted`` is gone.

Connection problems (etcd down, unreachable, timeouts) surface as :class:`StoreError`
with the endpoint in the message.
"""

from __future__ import annotations

import asyncio
import builtins
import ipaddress
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import aetcd
import grpc
from aetcd import exceptions as aexc
from aetcd import rpc

from ctl.store.base import (
    CompactedError,
    ConflictError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    Store,
    StoreError,
    WatchEvent,
)

_PROBE_KEY = b"\x00centaurus/probe"
_GRPC_OPTIONS: dict[str, Any] = {
    "grpc.max_receive_message_length": 2**31 - 1,
    "grpc.max_send_message_length": 2**31 - 1,
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
    # Per-call cost is what bounds the API server on etcd: no retry buffering (nothing here
    # uses gRPC retry policies) and no optional filters (census/stats) - ~10% less CPU a call.
    "grpc.enable_retries": 0,
    "grpc.minimal_stack": 1,
}

_EQUAL = rpc.Compare.EQUAL
_GREATER = rpc.Compare.GREATER
_CREATE = rpc.Compare.CREATE
_MOD = rpc.Compare.MOD
_DELETE = rpc.Event.DELETE


def _range_end(prefix: bytes) -> bytes:
    """etcd range end for a prefix (``b"\\0"`` = to the end of the keyspace)."""
    s = bytearray(prefix)
    while s:
        if s[-1] < 0xFF:
            s[-1] += 1
            return bytes(s)
        s.pop()
    return b"\0"


def _strip_endpoint(ep: str) -> str:
    ep = ep.strip()
    for scheme in ("http://", "etcd://", "grpc://"):
        if ep.startswith(scheme):
            ep = ep[len(scheme) :]
    ep = ep.rstrip("/")
    if not ep:
        raise ValueError("empty etcd endpoint")
    if ep.startswith("https://"):
        raise ValueError(f"etcd endpoint {ep}: TLS is not supported")
    host, sep, port = ep.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"etcd endpoint {ep!r}: expected host:port")
    return ep


def grpc_target(endpoints: list[str]) -> str:
    """One gRPC target for the endpoints (several endpoints need IP literals)."""
    eps = [_strip_endpoint(e) for e in endpoints]
    if not eps:
        raise ValueError("no etcd endpoints")
    if len(eps) == 1:
        return eps[0]
    families = set()
    for ep in eps:
        host = ep.rpartition(":")[0].strip("[]")
        try:
            families.add(ipaddress.ip_address(host).version)
        except ValueError:
            raise ValueError(f"etcd endpoint {ep}: several endpoints must be IP literals") from None
    if len(families) != 1:
        raise ValueError("etcd endpoints mix IPv4 and IPv6")
    return f"ipv{families.pop()}:" + ",".join(eps)


def _kv(key: str, kv: Any) -> KeyValue:
    return KeyValue(key, kv.value, kv.create_revision, kv.mod_revision)


class EtcdStore(Store):
    """Store contract on etcd (see module docstring)."""

    name = "etcd"

    def __init__(self, endpoints: list[str], *, timeout: float = 10.0) -> None:
        self.endpoints = list(endpoints)
        self.target = grpc_target(self.endpoints)
        self.timeout = timeout
        self._client: aetcd.Client | None = None
        self._kvstub: Any = None
        self._watchstub: Any = None
        self._start_lock = asyncio.Lock()
        self._compacted = 0
        self._closed = False

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._kvstub is not None:
            return
        async with self._start_lock:
            if self._kvstub is not None:
                return
            if self._closed:
                raise StoreError("store is closed")
            # aetcd joins host and port as f"{host}:{port}"; splitting the target at its last
            # colon lets multi-address targets ("ipv4:a:1,b:2") through unchanged.
            host, _, port = self.target.rpartition(":")
            multi = "," in self.target
            options: dict[str, Any] = dict(_GRPC_OPTIONS)
            if multi:
                options["grpc.lb_policy_name"] = "round_robin"
            client = aetcd.Client(
                host=host, port=int(port), timeout=int(self.timeout) or None, options=options
            )
            try:
                await client.connect()
            except aexc.ClientError as e:
                raise StoreError(f"etcd {self.target}: cannot connect: {e}") from None
            self._client = client
            self._kvstub = client.kvstub
            self._watchstub = rpc.WatchStub(client.channel)
            try:
                await self._refresh_compacted()
            except BaseException:
                await self.close()
                raise

    async def close(self) -> None:
        self._closed = True
        client, self._client, self._kvstub, self._watchstub = self._client, None, None, None
        if client is not None:
            try:
                await client.close()
            except Exception:  # closing a broken channel must not mask the caller's error
                pass

    async def _stub(self) -> Any:
        if self._kvstub is None:
            await self.start()
        return self._kvstub

    def _error(self, e: grpc.aio.AioRpcError, what: str) -> StoreError:
        code, details = e.code(), (e.details() or "").strip()
        if code == grpc.StatusCode.UNAVAILABLE:
            return StoreError(f"etcd {self.target} unavailable during {what}: {details}")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return StoreError(f"etcd {self.target}: {what} timed out after {self.timeout:g}s")
        return StoreError(f"etcd {what} failed: {code.name}: {details}")

    async def _txn(self, req: rpc.TxnRequest, what: str) -> Any:
        stub = await self._stub()
        try:
            return await stub.Txn(req, timeout=self.timeout)
        except grpc.aio.AioRpcError as e:
            raise self._error(e, what) from None

    async def _range(self, req: rpc.RangeRequest, what: str) -> Any:
        stub = await self._stub()
        try:
            return await stub.Range(req, timeout=self.timeout)
        except grpc.aio.AioRpcError as e:
            if "compacted" in (e.details() or "") and req.revision:
                compacted = await self._refresh_compacted()
                raise CompactedError(req.revision, compacted) from None
            raise self._error(e, what) from None

    # ------------------------------------------------------------------ reads
    async def get(self, key: str) -> KeyValue | None:
        resp = await self._range(rpc.RangeRequest(key=key.encode()), f"get {key}")
        return _kv(key, resp.kvs[0]) if resp.kvs else None

    async def list(
        self, prefix: str, *, limit: int = 0, start_after: str | None = None, revision: int = 0
    ) -> ListResult:
        if limit < 0 or revision < 0:
            raise ValueError("limit and revision must be >= 0")
        bprefix = prefix.encode()
        start = bprefix
        if start_after is not None and start_after >= prefix:
            start = start_after.encode() + b"\0"
        end = _range_end(bprefix)
        if end != b"\0" and start >= end:  # continuation past the prefix: nothing left
            at = revision or await self.current_revision()
            return ListResult([], at, False)
        req = rpc.RangeRequest(key=start, range_end=end, limit=limit, revision=revision)
        resp = await self._range(req, f"list {prefix}")
        items = [KeyValue(kv.key.decode(), kv.value, kv.create_revision, kv.mod_revision) for kv in resp.kvs]
        return ListResult(items, revision or resp.header.revision, bool(resp.more))

    async def count(self, prefix: str) -> int:
        bprefix = prefix.encode()
        req = rpc.RangeRequest(key=bprefix, range_end=_range_end(bprefix), count_only=True)
        resp = await self._range(req, f"count {prefix}")
        return int(resp.count)

    async def current_revision(self) -> int:
        resp = await self._range(rpc.RangeRequest(key=_PROBE_KEY, count_only=True), "current revision")
        return int(resp.header.revision)

    # ------------------------------------------------------------------ writes
    async def create(self, key: str, value: bytes) -> KeyValue:
        k = key.encode()
        req = rpc.TxnRequest(
            compare=[rpc.Compare(key=k, result=_EQUAL, target=_CREATE, create_revision=0)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value))],
        )
        resp = await self._txn(req, f"create {key}")
        if not resp.succeeded:
            raise KeyExistsError(key)
        rev = resp.header.revision
        return KeyValue(key, value, rev, rev)

    @staticmethod
    def _conditions(k: bytes, expected_revision: int | None) -> builtins.list[rpc.Compare]:
        mod = rpc.Compare(key=k, result=_EQUAL, target=_MOD, mod_revision=expected_revision or 0)
        if expected_revision is not None and expected_revision > 0:
            return [mod]  # a missing key has mod_revision 0, so this also requires existence
        exists = rpc.Compare(key=k, result=_GREATER, target=_CREATE, create_revision=0)
        return [exists] if expected_revision is None else [exists, mod]

    @staticmethod
    def _failure(key: str, expected_revision: int | None, resp: Any) -> StoreError:
        kvs = resp.responses[0].response_range.kvs
        if not kvs:
            return KeyNotFoundError(key)
        return ConflictError(key, expected_revision or 0, kvs[0].mod_revision)

    async def update(self, key: str, value: bytes, expected_revision: int | None = None) -> KeyValue:
        k = key.encode()
        req = rpc.TxnRequest(
            compare=self._conditions(k, expected_revision),
            success=[
                rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value)),
                # a range after the put inside the txn sees the new state: create_revision
                # without shipping the old value back (as prev_kv would)
                rpc.RequestOp(request_range=rpc.RangeRequest(key=k, keys_only=True)),
            ],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k, keys_only=True))],
        )
        resp = await self._txn(req, f"update {key}")
        if not resp.succeeded:
            raise self._failure(key, expected_revision, resp)
        kv = resp.responses[1].response_range.kvs[0]
        return KeyValue(key, value, kv.create_revision, resp.header.revision)

    async def delete(self, key: str, expected_revision: int | None = None) -> KeyValue:
        """Delete; returns the key's last value as it was before the delete (like sqlite)."""
        k = key.encode()
        req = rpc.TxnRequest(
            compare=self._conditions(k, expected_revision),
            success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k, prev_kv=True))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k, keys_only=True))],
        )
        resp = await self._txn(req, f"delete {key}")
        if not resp.succeeded:
            raise self._failure(key, expected_revision, resp)
        prev = resp.responses[0].response_delete_range.prev_kvs
        if not prev:  # deleted by someone else between compare and apply cannot happen in a txn
            raise KeyNotFoundError(key)
        return _kv(key, prev[0])

    # ------------------------------------------------------------------ compaction
    async def compact(self, revision: int) -> None:
        """Compact history below ``revision`` (clamped to now; at or below the compacted
        revision it is a no-op). Waits until etcd applied it physically."""
        stub = await self._stub()
        rev = min(revision, await self.current_revision())
        if rev <= self._compacted:
            return
        try:
            await stub.Compact(
                rpc.CompactionRequest(revision=rev, physical=True), timeout=max(self.timeout, 60)
            )
        except grpc.aio.AioRpcError as e:
            if "compacted" in (e.details() or ""):  # someone compacted at or beyond rev already
                await self._refresh_compacted()
                return
            raise self._error(e, f"compact {rev}") from None
        self._compacted = max(self._compacted, rev)

    async def compacted_revision(self) -> int:
        await self._stub()
        return await self._refresh_compacted()

    async def _refresh_compacted(self) -> int:
        """Check the remembered compacted revision; learn the real one if it moved."""
        stub = self._kvstub
        probe_rev = max(self._compacted, 1)
        try:
            await stub.Range(
                rpc.RangeRequest(key=_PROBE_KEY, revision=probe_rev, count_only=True), timeout=self.timeout
            )
            return self._compacted  # reading at probe_rev works: nothing newer was compacted
        except grpc.aio.AioRpcError as e:
            if "compacted" not in (e.details() or ""):
                raise self._error(e, "compacted revision") from None
        # Someone else compacted: a watch from revision 1 is refused with the compact revision.
        try:
            async for _ in self._watch_stream(
                _PROBE_KEY, b"", 1, "compacted revision probe", first_only=True
            ):
                break
        except CompactedError:
            pass  # _watch_stream recorded the revision
        return self._compacted

    # ------------------------------------------------------------------ watch
    async def _watch_stream(
        self,
        key: bytes,
        range_end: bytes,
        start_revision: int,
        what: str,
        first_only: bool = False,
        prev_kv: bool = True,
    ) -> AsyncGenerator[Any, None]:
        """One etcd watch on its own bidirectional stream; yields etcd event messages.

        The first response (``created``) must arrive within the timeout. A response carrying
        ``compact_revision`` (the start revision is compacted) raises :class:`CompactedError`;
        a cancel by the server or the end of the stream raises :class:`StoreError`.
        ``first_only`` stops at the first answer after the created one (the compaction probe).
        """
        await self._stub()
        call = self._watchstub.Watch(timeout=None)
        create = rpc.WatchCreateRequest(
            key=key, range_end=range_end, start_revision=start_revision, prev_kv=prev_kv
        )
        try:
            await call.write(rpc.WatchRequest(create_request=create))
            first = True
            while True:
                if first or first_only:  # the created answer (and a probe's next one) must come soon
                    async with asyncio.timeout(self.timeout):
                        resp = await call.read()
                    first = False
                else:
                    resp = await call.read()
                if resp is grpc.aio.EOF:
                    raise StoreError(f"etcd {self.target}: {what}: the watch stream ended")
                if resp.compact_revision:
                    self._compacted = max(self._compacted, int(resp.compact_revision))
                    raise CompactedError(start_revision - 1, int(resp.compact_revision))
                if resp.canceled:
                    reason = resp.cancel_reason or "canceled by the server"
                    raise StoreError(f"etcd {self.target}: {what}: {reason}")
                if first_only and not resp.created:
                    return
                for ev in resp.events:
                    yield ev
        except grpc.aio.AioRpcError as e:
            raise self._error(e, what) from None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._closed and not (task and task.cancelling()):
                return  # close() closed the channel under this watch: the watch just ends
            raise
        except TimeoutError:
            raise StoreError(f"etcd {self.target}: {what}: no answer within {self.timeout:g}s") from None
        finally:
            call.cancel()

    async def watch(  # type: ignore[override]
        self, prefix: str, after_revision: int, *, prev_kv: bool = True
    ) -> AsyncIterator[WatchEvent]:
        await self._stub()
        if after_revision < self._compacted:
            raise CompactedError(after_revision, self._compacted)
        bprefix = prefix.encode()
        stream = self._watch_stream(
            bprefix, _range_end(bprefix), after_revision + 1, f"watch {prefix}", prev_kv=prev_kv
        )
        try:
            async for ev in stream:
                kv, prev = ev.kv, (ev.prev_kv if ev.HasField("prev_kv") else None)
                key = kv.key.decode()
                before = _kv(key, prev) if prev is not None else None
                if ev.type == _DELETE:
                    if prev is not None:
                        out = KeyValue(key, prev.value, prev.create_revision, kv.mod_revision)
                    else:  # not asked for (prev_kv=False), or already compacted away
                        out = KeyValue(key, b"", 0, kv.mod_revision)
                    yield WatchEvent("DELETE", out, before)
                else:
                    yield WatchEvent("PUT", _kv(key, kv), before)
        finally:
            await stream.aclose()
