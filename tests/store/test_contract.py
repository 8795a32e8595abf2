"""One contract suite for every store backend (see ``ctl/store/base.py``).

Each test runs against the embedded sqlite store and against a real etcd (``conftest.py``).
Keys live under a per-test ``root`` so the shared etcd keeps tests apart. Watch tests
never assert "no more events" by waiting: they write a sentinel key and require that the
next event is the sentinel, which fails if anything unexpected arrives in between.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from ctl.store import (
    CompactedError,
    ConflictError,
    KeyExistsError,
    KeyNotFoundError,
    Store,
)

from .conftest import next_events


# ---------------------------------------------------------------------- basic CRUD
async def test_create_get(store: Store, root: str) -> None:
    key = root + "/registry/pods/default/a"
    kv = await store.create(key, b"v1")
    assert kv.key == key and kv.value == b"v1"
    assert kv.create_revision == kv.mod_revision > 0
    got = await store.get(key)
    assert got == kv
    assert await store.get(root + "/registry/pods/default/missing") is None


async def test_create_existing_raises(store: Store, root: str) -> None:
    key = root + "/registry/pods/a"
    kv = await store.create(key, b"v1")
    with pytest.raises(KeyExistsError):
        await store.create(key, b"v2")
    assert await store.get(key) == kv


async def test_update_cas_ok(store: Store, root: str) -> None:
    key = root + "/registry/pods/a"
    kv = await store.create(key, b"v1")
    kv2 = await store.update(key, b"v2", expected_revision=kv.mod_revision)
    assert kv2.value == b"v2"
    assert kv2.create_revision == kv.create_revision
    assert kv2.mod_revision > kv.mod_revision
    assert await store.get(key) == kv2


async def test_update_cas_conflict(store: Store, root: str) -> None:
    key = root + "/registry/pods/a"
    kv = await store.create(key, b"v1")
    kv2 = await store.update(key, b"v2", expected_revision=kv.mod_revision)
    with pytest.raises(ConflictError) as ei:
        await store.update(key, b"v3", expected_revision=kv.mod_revision)
    assert ei.value.expected == kv.mod_revision
    assert ei.value.actual == kv2.mod_revision
    assert await store.get(key) == kv2


async def test_update_missing_raises(store: Store, root: str) -> None:
    key = root + "/registry/pods/missing"
    with pytest.raises(KeyNotFoundError):
        await store.update(key, b"v")
    with pytest.raises(KeyNotFoundError):
        await store.update(key, b"v", expected_revision=5)
    assert await store.get(key) is None


async def test_update_cas_expected_zero_never_creates(store: Store, root: str) -> None:
    key = root + "/registry/pods/zero"
    with pytest.raises(KeyNotFoundError):
        await store.update(key, b"v", expected_revision=0)
    assert await store.get(key) is None


async def test_unconditional_update(store: Store, root: str) -> None:
    key = root + "/registry/pods/a"
    kv = await store.create(key, b"v1")
    kv2 = await store.update(key, b"v2")
    kv3 = await store.update(key, b"v3")
    assert kv.mod_revision < kv2.mod_revision < kv3.mod_revision
    assert kv3.create_revision == kv.create_revision
    assert (await store.get(key)) == kv3


async def test_delete_cas_ok(store: Store, root: str) -> None:
    key = root + "/registry/pods/a"
    kv = await store.create(key, b"v1")
    kv2 = await store.update(key, b"v2")
    deleted = await store.delete(key, expected_revision=kv2.mod_revision)
    assert deleted.key == key and deleted.value == b"v2"
    assert deleted.create_revision == kv.create_revision
    assert await store.get(key) is None
    assert await store.current_revision() > kv2.mod_revision
    # the key can be created again, with a new create revision
    again = await store.create(key, b"v3")
    assert again.create_revision > kv2.mod_revision


async def test_delete_cas_conflict(store: Store, root: str) -> None:
    key = root + "/registry/pods/a"
    kv = await store.create(key, b"v1")
    kv2 = await store.update(key, b"v2")
    with pytest.raises(ConflictError) as ei:
        await store.delete(key, expected_revision=kv.mod_revision)
    assert ei.value.actual == kv2.mod_revision
    assert await store.get(key) == kv2


async def test_delete_missing_raises(store: Store, root: str) -> None:
    key = root + "/registry/pods/missing"
    with pytest.raises(KeyNotFoundError):
        await store.delete(key)
    with pytest.raises(KeyNotFoundError):
        await store.delete(key, expected_revision=3)
    kv = await store.create(key, b"x")
    await store.delete(key)
    with pytest.raises(KeyNotFoundError):
        await store.delete(key, expected_revision=kv.mod_revision)


async def test_unconditional_delete(store: Store, root: str) -> None:
    key = root + "/registry/pods/a"
    await store.create(key, b"v1")
    await store.update(key, b"v2")
    deleted = await store.delete(key)
    assert deleted.value == b"v2"
    assert await store.get(key) is None


# ---------------------------------------------------------------------- list
async def test_list_prefix_byte_order(store: Store, root: str) -> None:
    prefix = root + "/registry/pods/"
    names = ["b", "a", "a/b", "ab", "a-", "Z", "z", "0", "aa", "é", "b0"]
    random.Random(1).shuffle(names)
    for n in names:
        await store.create(prefix + n, n.encode())
    await store.create(root + "/registry/pod", b"outside")
    await store.create(root + "/registry/services/x", b"outside")
    res = await store.list(prefix)
    keys = [kv.key for kv in res.items]
    assert keys == sorted(prefix + n for n in names)
    assert keys == sorted(keys, key=lambda k: k.encode())
    assert [kv.value for kv in res.items] == [k[len(prefix) :].encode() for k in keys]
    assert res.more is False
    assert res.revision == await store.current_revision()
    assert await store.count(prefix) == len(names)


async def test_list_limit_start_after_pages(store: Store, root: str) -> None:
    prefix = root + "/registry/pods/"
    want = []
    for i in range(23):
        kv = await store.create(f"{prefix}p{i:03d}", str(i).encode())
        want.append(kv)
    got, pages, after, rev = [], 0, None, 0
    while True:
        res = await store.list(prefix, limit=5, start_after=after, revision=rev)
        pages += 1
        assert len(res.items) <= 5
        got.extend(res.items)
        rev = res.revision
        if not res.more:
            break
        assert len(res.items) == 5
        after = res.items[-1].key
    assert pages == 5
    assert got == want
    # a limit larger than the rest: more is False
    res = await store.list(prefix, limit=100)
    assert res.more is False and len(res.items) == 23
    # start_after before the prefix is the same as no start_after; past the prefix: empty
    assert (await store.list(prefix, start_after=root + "/registry/a")).items == want
    assert (await store.list(prefix, start_after=root + "/registry/pods0")).items == []


async def test_list_pages_consistent_while_writing(store: Store, root: str) -> None:
    """Pages read at the first page's revision form one snapshot although writes land between pages."""
    prefix = root + "/registry/pods/"
    for i in range(30):
        await store.create(f"{prefix}p{i:03d}", b"orig")
    snapshot = (await store.list(prefix)).items

    first = await store.list(prefix, limit=7)
    rev = first.revision
    pages = list(first.items)
    after = first.items[-1].key
    i = 0
    more = first.more
    while more:
        # writes between pages: updates of listed and unlisted keys, deletes, creates in range
        await store.update(f"{prefix}p{i:03d}", b"changed")
        await store.update(f"{prefix}p{29 - i:03d}", b"changed")
        await store.delete(f"{prefix}p{15 + i:03d}") if 15 + i < 29 - i else None
        await store.create(f"{prefix}p{i:03d}x", b"new")
        await store.create(f"{prefix}zz{i}", b"new")
        i += 1
        res = await store.list(prefix, limit=7, start_after=after, revision=rev)
        assert res.revision == rev
        pages.extend(res.items)
        more = res.more
        if res.items:
            after = res.items[-1].key
    assert pages == snapshot
    now = await store.list(prefix)
    assert now.revision > rev and now.items != snapshot


async def test_list_at_old_revision(store: Store, root: str) -> None:
    prefix = root + "/registry/pods/"
    a1 = await store.create(prefix + "a", b"a1")
    b1 = await store.create(prefix + "b", b"b1")
    a2 = await store.update(prefix + "a", b"a2")
    await store.delete(prefix + "b")
    c1 = await store.create(prefix + "c", b"c1")
    at = lambda r: store.list(prefix, revision=r)  # noqa: E731
    assert (await at(a1.mod_revision)).items == [a1]
    assert (await at(b1.mod_revision)).items == [a1, b1]
    assert (await at(a2.mod_revision)).items == [a2, b1]
    assert (await at(a2.mod_revision + 1)).items == [a2]
    assert (await at(c1.mod_revision)).items == [a2, c1]
    assert (await at(b1.mod_revision)).revision == b1.mod_revision
    # limit + continuation at an old revision
    res = await store.list(prefix, revision=b1.mod_revision, limit=1)
    assert res.items == [a1] and res.more
    res = await store.list(prefix, revision=b1.mod_revision, limit=1, start_after=prefix + "a")
    assert res.items == [b1] and not res.more


# ---------------------------------------------------------------------- watch
async def test_watch_replays_history_then_live(store: Store, root: str) -> None:
    prefix = root + "/registry/pods/"
    start = await store.current_revision()
    a1 = await store.create(prefix + "a", b"a1")
    a2 = await store.update(prefix + "a", b"a2", expected_revision=a1.mod_revision)
    b1 = await store.create(prefix + "b", b"b1")
    await store.delete(prefix + "a")
    await store.create(root + "/registry/services/s", b"other prefix")

    w = store.watch(prefix, start)
    try:
        evs = await next_events(w, 4)
        assert [(e.type, e.kv.key) for e in evs] == [
            ("PUT", prefix + "a"),
            ("PUT", prefix + "a"),
            ("PUT", prefix + "b"),
            ("DELETE", prefix + "a"),
        ]
        assert evs[0].is_create and evs[0].kv == a1
        assert not evs[1].is_create and evs[1].kv == a2
        if evs[1].prev is not None:
            assert evs[1].prev.value == b"a1" and evs[1].prev.mod_revision == a1.mod_revision
        assert evs[2].is_create and evs[2].kv == b1
        dele = evs[3]
        assert not dele.is_create
        assert dele.kv.value == b"a2" and dele.kv.create_revision == a1.create_revision
        assert dele.revision > b1.mod_revision
        assert (
            dele.prev is not None and dele.prev.value == b"a2" and dele.prev.mod_revision == a2.mod_revision
        )
        revs = [e.revision for e in evs]
        assert revs == sorted(set(revs))

        # live events after the replay, in order, and nothing from other prefixes
        c1 = await store.create(prefix + "c", b"c1")
        await store.create(root + "/registry/podsx/c", b"other prefix")
        b2 = await store.update(prefix + "b", b"b2")
        live = await next_events(w, 2)
        assert [e.kv for e in live] == [c1, b2]
        assert live[0].is_create and not live[1].is_create
        assert dele.revision < live[0].revision < live[1].revision
    finally:
        await w.aclose()


async def test_watch_without_prev_kv_keeps_keys_and_revisions(store: Store, root: str) -> None:
    """prev_kv=False (the watch cache's mode) may drop previous values, never events."""
    prefix = root + "/registry/pods/"
    start = await store.current_revision()
    a1 = await store.create(prefix + "a", b"a1")
    a2 = await store.update(prefix + "a", b"a2")
    gone = await store.delete(prefix + "a")
    w = store.watch(prefix, start, prev_kv=False)
    try:
        evs = await next_events(w, 3)
    finally:
        await w.aclose()
    assert [(e.type, e.kv.key, e.revision) for e in evs] == [
        ("PUT", prefix + "a", a1.mod_revision),
        ("PUT", prefix + "a", a2.mod_revision),
        ("DELETE", prefix + "a", evs[2].revision),
    ]
    assert evs[0].kv == a1 and evs[0].is_create and evs[1].kv == a2 and not evs[1].is_create
    assert evs[2].revision > a2.mod_revision and gone.value == b"a2"
    assert evs[2].kv.value in (b"", b"a2")  # the value of a DELETE is optional in this mode


async def test_watch_resume_from_any_revision(store: Store, root: str) -> None:
    prefix = root + "/registry/pods/"
    base = await store.current_revision()
    kvs = [await store.create(prefix + "a", b"0")]
    for i in range(1, 4):
        kvs.append(await store.update(prefix + "a", str(i).encode()))
    await store.delete(prefix + "a")
    kvs.append(await store.create(prefix + "b", b"b"))
    revs = [base] + [kv.mod_revision for kv in kvs[:4]] + [kvs[3].mod_revision + 1, kvs[4].mod_revision]
    all_events = await next_events(store.watch(prefix, base), 6)
    assert [e.revision for e in all_events] == revs[1:]
    for i, after in enumerate(revs):
        w = store.watch(prefix, after)
        try:
            expected = all_events[i:]
            got = await next_events(w, len(expected))
            assert got == expected
            sentinel = await store.create(prefix + f"s{i}", b"s")
            (nxt,) = await next_events(w, 1)
            assert nxt.kv == sentinel
        finally:
            await w.aclose()
        all_events.append(nxt)


async def test_watch_from_current_revision_gets_only_new(store: Store, root: str) -> None:
    prefix = root + "/registry/pods/"
    await store.create(prefix + "old", b"x")
    w = store.watch(prefix, await store.current_revision())
    try:
        new = await store.create(prefix + "new", b"y")
        (ev,) = await next_events(w, 1)
        assert ev.kv == new
    finally:
        await w.aclose()


async def test_watch_concurrent_writers_in_revision_order(store: Store, root: str) -> None:
    prefix = root + "/registry/pods/"
    start = await store.current_revision()
    w = store.watch(prefix, start)

    async def writer(t: int) -> list[int]:
        return [(await store.create(f"{prefix}w{t}-{i}", b"x")).mod_revision for i in range(15)]

    try:
        results = await asyncio.gather(*(writer(t) for t in range(6)))
        written = sorted(r for rs in results for r in rs)
        assert len(set(written)) == 90
        evs = await next_events(w, 90, timeout=10)
        assert [e.revision for e in evs] == written
    finally:
        await w.aclose()


async def test_watch_close_stops_iterator(store: Store, root: str) -> None:
    prefix = root + "/registry/pods/"
    w = store.watch(prefix, await store.current_revision())
    await store.create(prefix + "a", b"1")
    await next_events(w, 1)
    await w.aclose()
    await store.create(prefix + "b", b"2")
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(w), 2)

    # closing a watch that is blocked waiting in another task: cancel the waiter, then close
    w2 = store.watch(prefix, await store.current_revision())
    waiter = asyncio.ensure_future(anext(w2))
    await asyncio.sleep(0.2)
    assert not waiter.done()
    waiter.cancel()
    with pytest.raises((asyncio.CancelledError, StopAsyncIteration)):
        await waiter
    await w2.aclose()
    # the store keeps working and new watches work
    w3 = store.watch(prefix, await store.current_revision())
    try:
        c = await store.create(prefix + "c", b"3")
        (ev,) = await next_events(w3, 1)
        assert ev.kv == c
    finally:
        await w3.aclose()


async def test_many_watches_opened_and_closed(store: Store, root: str) -> None:
    prefix = root + "/registry/pods/"
    for i in range(30):
        w = store.watch(prefix, await store.current_revision())
        kv = await store.create(f"{prefix}k{i}", b"x")
        (ev,) = await next_events(w, 1)
        assert ev.kv == kv
        await w.aclose()


# ---------------------------------------------------------------------- compaction
async def _history(store: Store, prefix: str) -> tuple[int, int]:
    first = await store.create(prefix + "a", b"1")
    for i in range(2, 6):
        await store.update(prefix + "a", str(i).encode())
    await store.create(prefix + "b", b"b")
    return first.mod_revision, await store.current_revision()


async def test_compact_then_watch_compacted_raises(store: Store, root: str) -> None:
    prefix = root + "/registry/pods/"
    first, rev = await _history(store, prefix)
    await store.compact(rev)
    assert await store.compacted_revision() == rev
    with pytest.raises(CompactedError) as ei:
        await anext(store.watch(prefix, first))
    assert ei.value.requested == first and ei.value.compacted == rev
    # from the compacted revision itself: works, and sees new events
    w = store.watch(prefix, rev)
    try:
        c = await store.create(prefix + "c", b"c")
        (ev,) = await next_events(w, 1)
        assert ev.kv == c
    finally:
        await w.aclose()


async def test_watch_just_below_compacted_revision_raises(store: Store, root: str) -> None:
    prefix = root + "/registry/pods/"
    _, rev = await _history(store, prefix)
    await store.compact(rev)
    with pytest.raises(CompactedError):
        await anext(store.watch(prefix, rev - 1))


async def test_watch_after_zero_when_compacted_raises(store: Store, root: str) -> None:
    """after_revision=0 asks for the whole history, which compaction removed."""
    prefix = root + "/registry/pods/"
    _, rev = await _history(store, prefix)
    await store.compact(rev)
    with pytest.raises(CompactedError):
        await asyncio.wait_for(anext(store.watch(prefix, 0)), 5)


async def test_list_at_compacted_revision_raises(store: Store, root: str) -> None:
    prefix = root + "/registry/pods/"
    first, rev = await _history(store, prefix)
    before = await store.list(prefix)
    await store.compact(rev)
    with pytest.raises(CompactedError) as ei:
        await store.list(prefix, revision=first)
    assert ei.value.requested == first and ei.value.compacted == rev
    with pytest.raises(CompactedError):
        await store.list(prefix, revision=rev - 1, limit=1)
    # the compacted revision itself still lists, and so does now
    assert (await store.list(prefix, revision=rev)).items == before.items
    assert (await store.list(prefix)).items == before.items
    assert (await store.get(prefix + "a")) == before.items[0]


async def test_compact_is_idempotent_and_clamped(store: Store, root: str) -> None:
    prefix = root + "/registry/pods/"
    _, rev = await _history(store, prefix)
    await store.compact(rev)
    await store.compact(rev)  # again: no-op
    await store.compact(rev - 2)  # older: no-op
    assert await store.compacted_revision() == rev
    now = await store.current_revision()
    await store.compact(now + 1000)  # future: clamped to now
    assert await store.compacted_revision() == now
    kv = await store.create(prefix + "after", b"x")
    assert kv.mod_revision > now


# ---------------------------------------------------------------------- concurrency, revisions
async def test_concurrent_cas_exactly_one_wins(store: Store, root: str) -> None:
    key = root + "/registry/pods/contended"
    kv = await store.create(key, b"start")

    async def attempt(i: int) -> int | None:
        try:
            await store.update(key, f"writer-{i}".encode(), expected_revision=kv.mod_revision)
            return i
        except ConflictError:
            return None

    results = await asyncio.gather(*(attempt(i) for i in range(20)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    final = await store.get(key)
    assert final is not None and final.value == f"writer-{winners[0]}".encode()


async def test_concurrent_create_exactly_one_wins(store: Store, root: str) -> None:
    key = root + "/registry/pods/race"

    async def attempt(i: int) -> bool:
        try:
            await store.create(key, str(i).encode())
            return True
        except KeyExistsError:
            return False

    results = await asyncio.gather(*(attempt(i) for i in range(20)))
    assert results.count(True) == 1


async def test_concurrent_cas_increments_lose_nothing(store: Store, root: str) -> None:
    """Read-modify-write loops with CAS retries: 8 tasks x 5 increments == 40."""
    key = root + "/registry/counter"
    await store.create(key, b"0")

    async def incr() -> None:
        for _ in range(5):
            for _attempt in range(200):
                cur = await store.get(key)
                assert cur is not None
                try:
                    await store.update(
                        key, str(int(cur.value) + 1).encode(), expected_revision=cur.mod_revision
                    )
                    break
                except ConflictError:
                    await asyncio.sleep(0)
            else:
                raise AssertionError("CAS retry budget exhausted")

    await asyncio.gather(*(incr() for _ in range(8)))
    final = await store.get(key)
    assert final is not None and final.value == b"40"


async def test_revisions_monotonic(store: Store, root: str) -> None:
    prefix = root + "/registry/pods/"
    last = await store.current_revision()
    key = prefix + "m"
    ops = [
        lambda: store.create(key, b"1"),
        lambda: store.update(key, b"2"),
        lambda: store.create(prefix + "n", b"1"),
        lambda: store.update(key, b"3"),
    ]
    for op in ops:
        kv = await op()
        assert kv.mod_revision > last
        last = kv.mod_revision
        assert await store.current_revision() >= last
    await store.delete(key)
    assert await store.current_revision() > last
    # failed writes do not move the revision backwards, reads never exceed current
    before = await store.current_revision()
    with pytest.raises(KeyExistsError):
        await store.create(prefix + "n", b"again")
    assert await store.current_revision() >= before
    res = await asyncio.gather(*(store.create(f"{prefix}c{i}", b"x") for i in range(20)))
    revs = [kv.mod_revision for kv in res]
    assert len(set(revs)) == 20 and min(revs) > before
    assert await store.current_revision() >= max(revs)


async def test_prefix_isolation(store: Store, root: str) -> None:
    pods, podsx = root + "/registry/pods/", root + "/registry/podsx/"
    start = await store.current_revision()
    await store.create(pods + "a", b"pod")
    await store.create(podsx + "a", b"podx")
    await store.create(root + "/registry/pods", b"no slash")
    assert [kv.key for kv in (await store.list(pods)).items] == [pods + "a"]
    assert [kv.key for kv in (await store.list(podsx)).items] == [podsx + "a"]
    assert await store.count(pods) == 1
    w = store.watch(pods, start)
    try:
        (ev,) = await next_events(w, 1)
        assert ev.kv.key == pods + "a"
        await store.update(podsx + "a", b"x2")
        s = await store.create(pods + "b", b"sentinel")
        (ev,) = await next_events(w, 1)
        assert ev.kv == s
    finally:
        await w.aclose()


async def test_large_values(store: Store, root: str) -> None:
    prefix = root + "/registry/blobs/"
    big = random.Random(7).randbytes(1024 * 1024 - 512)
    start = await store.current_revision()
    kv = await store.create(prefix + "big", big)
    assert (await store.get(prefix + "big")) == kv and kv.value == big
    kv2 = await store.update(prefix + "big", big[::-1], expected_revision=kv.mod_revision)
    await store.create(prefix + "big2", big)
    res = await store.list(prefix)
    assert [x.value for x in res.items] == [big[::-1], big]
    evs = await next_events(store.watch(prefix, start), 3, timeout=10)
    assert evs[0].kv.value == big and evs[1].kv == kv2 and evs[2].kv.value == big
    deleted = await store.delete(prefix + "big")
    assert deleted.value == big[::-1]
    # a list whose response is larger than gRPC's default 4 MiB message limit
    for i in range(5):
        await store.create(f"{prefix}many{i}", big)
    res = await store.list(prefix + "many")
    assert len(res.items) == 5 and all(x.value == big for x in res.items)


async def test_close_ends_active_watches(store_url: str, root: str) -> None:
    from ctl.store import open_store

    store = open_store(store_url)
    await store.start()
    prefix = root + "/registry/pods/"
    w = store.watch(prefix, await store.current_revision())
    waiter = asyncio.ensure_future(anext(w))
    await asyncio.sleep(0.2)
    await store.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiter, 5)
