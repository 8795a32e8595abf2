"""Embedded store: a kine-style MVCC log in one SQLite table.

Every write appends a row to ``log``; the row's autoincrement id *is* the revision.
A row records the key, the value, the key's create revision, the revision it
supersedes and whether it is a deletion (tombstone). ``current`` maps each live key
to its latest row so that point reads and "now" lists never scan history. Lists at an
older revision and watches that resume from the past read the log itself, so any
revision that has not been compacted can be replayed.

Writes go through one writer thread (SQLite allows one writer anyway). The thread
drains whatever operations are queued and commits them in one transaction: group
commit, one fsync per batch, ``synchronous=FULL`` in WAL mode, so a write is only
acknowledged once it is durable, and throughput still scales with concurrency.
Reads run on a small pool of reader threads with their own connections (WAL lets
them proceed while the writer commits).

Live watch events are produced by the writer after each commit and fanned out on
the event loop to the watchers whose prefix matches.

The database file is created ``0600`` (and an existing one, with its ``-wal`` and ``-shm``,
made so at start): it holds every Secret and issued token.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

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
    prefix_end,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB
);
CREATE INDEX IF NOT EXISTS log_name_id ON log(name, id);
CREATE TABLE IF NOT EXISTS current (
    name TEXT PRIMARY KEY,
    id INTEGER NOT NULL,
    create_revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
"""

_MAX_BATCH = 512


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA cache_size=-65536")
    return conn


def _make_private(path: str) -> None:
    """Create the database file 0600 (SQLite gives ``-wal``/``-shm`` the same mode) or fix its mode.

    The store holds every Secret and issued token: no other local user may read it or its
    write-ahead log, whatever the process umask or the mode an older version left.
    """
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for p in (path, path + "-wal", path + "-shm"):
        try:
            if os.stat(p).st_mode & 0o077:
                os.chmod(p, 0o600)
        except FileNotFoundError:
            pass


class _Watcher:
    __slots__ = ("prefix", "end", "queue", "closed")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.end = prefix_end(prefix)
        self.queue: asyncio.Queue[list[WatchEvent] | None] = asyncio.Queue()
        self.closed = False

    def matches(self, key: str) -> bool:
        return self.prefix <= key < self.end


class SqliteStore(Store):
    """MVCC store in one SQLite file (see module docstring)."""

    name = "sqlite"

    def __init__(self, path: str) -> None:
        if not path:
            raise ValueError("sqlite store needs a file path")
        self.path = path
        self._started = False
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writeq: queue.Queue[Any] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._watchers: set[_Watcher] = set()
        self._revision = 0
        self._compacted = 0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, mode=0o700, exist_ok=True)
        _make_private(self.path)
        conn = _connect(self.path)
        conn.executescript(SCHEMA)
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='log'").fetchone()
        self._revision = int(row[0]) if row else 0
        row = conn.execute("SELECT v FROM meta WHERE k='compacted'").fetchone()
        self._compacted = int(row[0]) if row else 0
        self._wconn = conn
        self._writer = threading.Thread(target=self._writer_loop, name="sqlite-writer", daemon=True)
        self._writer.start()
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sqlite-reader")
        self._started = True

    async def close(self) -> None:
        if not self._started or self._closed:
            return
        self._closed = True
        self._writeq.put(None)
        assert self._writer is not None
        await asyncio.get_running_loop().run_in_executor(None, self._writer.join)
        if self._readers:
            self._readers.shutdown(wait=True)
        for w in list(self._watchers):
            w.queue.put_nowait(None)
        self._watchers.clear()

    def _rconn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = _connect(self.path)
            self._local.conn = c
        return c

    async def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        if not self._started:
            await self.start()
        if self._closed:
            raise StoreError("store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._rconn()))

    async def _write(self, op: Callable[[sqlite3.Connection], Any]) -> Any:
        if not self._started:
            await self.start()
        if self._closed:
            raise StoreError("store is closed")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._writeq.put((op, fut))
        return await fut

    # ------------------------------------------------------------------ writer thread
    def _writer_loop(self) -> None:
        conn = self._wconn
        loop = self._loop
        assert loop is not None
        while True:
            item = self._writeq.get()
            if item is None:
                break
            batch = [item]
            stop = False
            while len(batch) < _MAX_BATCH:
                try:
                    nxt = self._writeq.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            results: list[tuple[asyncio.Future[Any], bool, Any]] = []
            events: list[WatchEvent] = []
            try:
                conn.execute("BEGIN IMMEDIATE")
                for op, fut in batch:
                    try:
                        res = op(conn)
                    except StoreError as e:
                        results.append((fut, False, e))
                        continue
                    except Exception as e:  # pragma: no cover - unexpected sqlite failure
                        results.append((fut, False, StoreError(f"sqlite: {e}")))
                        continue
                    value, evs = res
                    events.extend(evs)
                    results.append((fut, True, value))
                conn.execute("COMMIT")
            except Exception as e:  # commit failed: nothing acknowledged
                try:
                    conn.execute("ROLLBACK")
                except Exception:
                    pass
                err = StoreError(f"sqlite commit failed: {e}")
                results = [(fut, False, err) for _, fut in batch]
                events = []
            if events:
                self._revision = max(self._revision, events[-1].revision)
            loop.call_soon_threadsafe(self._complete, results, events)
            if stop:
                break
        conn.close()

    def _complete(
        self, results: list[tuple[asyncio.Future[Any], bool, Any]], events: list[WatchEvent]
    ) -> None:
        if events:
            for w in self._watchers:
                mine = [e for e in events if w.matches(e.kv.key)]
                if mine:
                    w.queue.put_nowait(mine)
        for fut, ok, val in results:
            if fut.done():
                continue
            if ok:
                fut.set_result(val)
            else:
                fut.set_exception(val)

    # ------------------------------------------------------------------ write ops (run in writer thread)
    @staticmethod
    def _current(conn: sqlite3.Connection, key: str, expected: int | None) -> tuple[int, int, bytes]:
        """(mod revision, create revision, value) of a live key; the CAS check of update and delete."""
        row = conn.execute(
            "SELECT c.id, c.create_revision, l.value FROM current c JOIN log l ON l.id = c.id WHERE c.name = ?",
            (key,),
        ).fetchone()
        if row is None:
            raise KeyNotFoundError(key)
        if expected is not None and expected != row[0]:
            raise ConflictError(key, expected, row[0])
        return int(row[0]), int(row[1]), bytes(row[2])

    @staticmethod
    def _append(
        conn: sqlite3.Connection,
        key: str,
        created: int,
        deleted: int,
        create_rev: int,
        prev: int,
        value: bytes,
    ) -> int:
        cur = conn.execute(
            "INSERT INTO log(name, created, deleted, create_revision, prev_revision, value) VALUES (?,?,?,?,?,?)",
            (key, created, deleted, create_rev, prev, value),
        )
        rev = cur.lastrowid
        assert rev is not None
        return rev

    async def create(self, key: str, value: bytes) -> KeyValue:
        def op(conn: sqlite3.Connection) -> tuple[KeyValue, list[WatchEvent]]:
            if conn.execute("SELECT 1 FROM current WHERE name = ?", (key,)).fetchone():
                raise KeyExistsError(key)
            rev = self._append(conn, key, 1, 0, 0, 0, value)
            conn.execute("UPDATE log SET create_revision = ? WHERE id = ?", (rev, rev))
            conn.execute("INSERT INTO current(name, id, create_revision) VALUES (?,?,?)", (key, rev, rev))
            kv = KeyValue(key, value, rev, rev)
            return kv, [WatchEvent("PUT", kv)]

        result: KeyValue = await self._write(op)
        return result

    async def update(self, key: str, value: bytes, expected_revision: int | None = None) -> KeyValue:
        def op(conn: sqlite3.Connection) -> tuple[KeyValue, list[WatchEvent]]:
            old_rev, create_rev, old_value = self._current(conn, key, expected_revision)
            rev = self._append(conn, key, 0, 0, create_rev, old_rev, value)
            conn.execute("UPDATE current SET id = ? WHERE name = ?", (rev, key))
            kv = KeyValue(key, value, create_rev, rev)
            return kv, [WatchEvent("PUT", kv, KeyValue(key, old_value, create_rev, old_rev))]

        result: KeyValue = await self._write(op)
        return result

    async def delete(self, key: str, expected_revision: int | None = None) -> KeyValue:
        def op(conn: sqlite3.Connection) -> tuple[KeyValue, list[WatchEvent]]:
            old_rev, create_rev, old_value = self._current(conn, key, expected_revision)
            rev = self._append(conn, key, 0, 1, create_rev, old_rev, old_value)
            conn.execute("DELETE FROM current WHERE name = ?", (key,))
            prev = KeyValue(key, old_value, create_rev, old_rev)
            return prev, [WatchEvent("DELETE", KeyValue(key, old_value, create_rev, rev), prev)]

        result: KeyValue = await self._write(op)
        return result

    async def compact(self, revision: int) -> None:
        def op(conn: sqlite3.Connection) -> tuple[None, list[WatchEvent]]:
            rev = min(revision, self._revision)
            if rev <= self._compacted:
                return None, []
            # Drop every row at or below rev that is superseded by a later row at or below rev,
            # and every tombstone at or below rev (with the rows it superseded).
            conn.execute(
                """DELETE FROM log WHERE id <= ? AND (
                       deleted = 1 OR id < (SELECT MAX(l2.id) FROM log l2 WHERE l2.name = log.name AND l2.id <= ?))""",
                (rev, rev),
            )
            conn.execute(
                "INSERT INTO meta(k, v) VALUES ('compacted', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                (rev,),
            )
            self._compacted = rev
            return None, []

        await self._write(op)

    # ------------------------------------------------------------------ reads
    async def get(self, key: str) -> KeyValue | None:
        def fn(conn: sqlite3.Connection) -> KeyValue | None:
            row = conn.execute(
                "SELECT c.create_revision, c.id, l.value FROM current c JOIN log l ON l.id = c.id WHERE c.name = ?",
                (key,),
            ).fetchone()
            return KeyValue(key, row[2], row[0], row[1]) if row else None

        result: KeyValue | None = await self._read(fn)
        return result

    async def list(
        self, prefix: str, *, limit: int = 0, start_after: str | None = None, revision: int = 0
    ) -> ListResult:
        end = prefix_end(prefix)
        lo = prefix if start_after is None or start_after < prefix else start_after
        op = ">=" if start_after is None or start_after < prefix else ">"

        def fn(conn: sqlite3.Connection) -> ListResult:
            conn.execute("BEGIN")
            try:
                now = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='log'").fetchone()
                now_rev = int(now[0]) if now else 0
                compacted_row = conn.execute("SELECT v FROM meta WHERE k='compacted'").fetchone()
                compacted = int(compacted_row[0]) if compacted_row else 0
                lim = -1 if limit <= 0 else limit + 1
                if revision and revision < now_rev:
                    if revision < compacted:
                        raise CompactedError(revision, compacted)
                    rows = conn.execute(
                        f"""SELECT l.name, l.value, l.create_revision, l.id FROM log l
                            JOIN (SELECT name, MAX(id) AS mid FROM log
                                  WHERE name {op} ? AND name < ? AND id <= ? GROUP BY name) m
                            ON l.id = m.mid WHERE l.deleted = 0 ORDER BY l.name LIMIT ?""",
                        (lo, end, revision, lim),
                    ).fetchall()
                    at = revision
                else:
                    rows = conn.execute(
                        f"""SELECT c.name, l.value, c.create_revision, c.id FROM current c
                            JOIN log l ON l.id = c.id WHERE c.name {op} ? AND c.name < ?
                            ORDER BY c.name LIMIT ?""",
                        (lo, end, lim),
                    ).fetchall()
                    at = now_rev
            finally:
                conn.execute("COMMIT")
            more = limit > 0 and len(rows) > limit
            if more:
                rows = rows[:limit]
            return ListResult([KeyValue(r[0], r[1], r[2], r[3]) for r in rows], at, more)

        result: ListResult = await self._read(fn)
        return result

    async def count(self, prefix: str) -> int:
        end = prefix_end(prefix)
        n: int = await self._read(
            lambda c: c.execute(
                "SELECT COUNT(*) FROM current WHERE name >= ? AND name < ?", (prefix, end)
            ).fetchone()[0]
        )
        return n

    async def current_revision(self) -> int:
        if not self._started:
            await self.start()
        return self._revision

    async def compacted_revision(self) -> int:
        if not self._started:
            await self.start()
        return self._compacted

    async def _history(self, prefix: str, after: int, upto: int) -> builtins.list[WatchEvent]:
        end = prefix_end(prefix)

        def fn(conn: sqlite3.Connection) -> builtins.list[WatchEvent]:
            rows = conn.execute(
                """SELECT l.id, l.name, l.deleted, l.create_revision, l.prev_revision, l.value, p.value
                   FROM log l LEFT JOIN log p ON p.id = l.prev_revision
                   WHERE l.id > ? AND l.id <= ? AND l.name >= ? AND l.name < ? ORDER BY l.id""",
                (after, upto, prefix, end),
            ).fetchall()
            out = []
            for rid, name, deleted, crev, prev_rev, value, pvalue in rows:
                prev = KeyValue(name, pvalue, crev, prev_rev) if prev_rev and pvalue is not None else None
                out.append(WatchEvent("DELETE" if deleted else "PUT", KeyValue(name, value, crev, rid), prev))
            return out

        result: builtins.list[WatchEvent] = await self._read(fn)
        return result

    async def watch(  # type: ignore[override]
        self, prefix: str, after_revision: int, *, prev_kv: bool = True
    ) -> AsyncIterator[WatchEvent]:  # previous values come with the log rows: prev_kv costs nothing
        if not self._started:
            await self.start()
        if after_revision < self._compacted:
            raise CompactedError(after_revision, self._compacted)
        w = _Watcher(prefix)
        self._watchers.add(w)
        try:
            last = after_revision
            upto = self._revision
            if after_revision < upto:
                for ev in await self._history(prefix, after_revision, upto):
                    last = ev.revision
                    yield ev
                last = max(last, upto)
            while True:
                batch = await w.queue.get()
                if batch is None:
                    return
                for ev in batch:
                    if ev.revision > last:
                        last = ev.revision
                        yield ev
        finally:
            w.closed = True
            self._watchers.discard(w)
