"""The store contract shared by every backend.

Centaurus keeps every API object as one value under a key of the form
``/registry/{resource}/{tenant}/{namespace}/{name}``. A store is an MVCC key-value
log: every write gets a new, cluster-wide increasing revision, each key remembers the
revision that created it and the revision of its last modification, and a watch can
replay every change after any revision that has not been compacted away.

Two backends implement this contract (``sqlite`` embedded, ``etcd`` through aetcd)
and pass the same contract test suite (``tests/store/test_contract.py``).

Semantics that callers rely on:

* ``create`` fails with :class:`KeyExistsError` if the key is present.
* ``update``/``delete`` with ``expected_revision`` succeed only if the key's current
  ``mod_revision`` equals it, else :class:`ConflictError`; a missing key is
  :class:`KeyNotFoundError`. Among concurrent CAS writers exactly one wins.
* ``list`` returns keys in byte order, at most ``limit`` (0 = all), starting after
  ``start_after`` (exclusive), as of ``revision`` (0 = now); the returned revision is
  the one the list was read at, to continue or to start a watch from.
* ``watch(prefix, after_revision)`` yields every change with revision greater than
  ``after_revision`` in revision order; if that revision was compacted it raises
  :class:`CompactedError` (the API server turns it into 410 Gone).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass


class StoreError(Exception):
    """Base class of store errors."""


class KeyExistsError(StoreError):
    pass


class KeyNotFoundError(StoreError):
    pass


class ConflictError(StoreError):
    """The key's mod_revision is not the expected one."""

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"{key}: expected revision {expected}, found {actual}")
        self.key, self.expected, self.actual = key, expected, actual


class CompactedError(StoreError):
    """The requested revision is older than the compacted revision."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"revision {requested} has been compacted (oldest available {compacted})")
        self.requested, self.compacted = requested, compacted


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change. ``type`` is ``PUT`` (create or update) or ``DELETE``.

    For DELETE, ``kv`` carries the last value before deletion with ``mod_revision``
    set to the revision of the delete itself.
    """

    type: str
    kv: KeyValue
    prev: KeyValue | None = None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @property
    def is_create(self) -> bool:
        return self.type == "PUT" and self.kv.create_revision == self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KeyValue]
    revision: int
    more: bool


class Store(abc.ABC):
    """Async MVCC key-value store."""

    name: str = "store"

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections; idempotent."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def get(self, key: str) -> KeyValue | None: ...

    @abc.abstractmethod
    async def list(
        self, prefix: str, *, limit: int = 0, start_after: str | None = None, revision: int = 0
    ) -> ListResult: ...

    @abc.abstractmethod
    async def create(self, key: str, value: bytes) -> KeyValue: ...

    @abc.abstractmethod
    async def update(self, key: str, value: bytes, expected_revision: int | None = None) -> KeyValue: ...

    @abc.abstractmethod
    async def delete(self, key: str, expected_revision: int | None = None) -> KeyValue: ...

    @abc.abstractmethod
    def watch(self, prefix: str, after_revision: int, *, prev_kv: bool = True) -> AsyncIterator[WatchEvent]:
        """Async iterator of changes; closing it (aclose) stops the watch.

        ``prev_kv=False`` tells the backend the caller keeps its own copy of every value
        (the watch cache does): it may then leave ``WatchEvent.prev_kv`` unset and send a
        DELETE with an empty value and ``create_revision`` 0, saving the store a lookup of
        the previous value per event.
        """

    @abc.abstractmethod
    async def current_revision(self) -> int: ...

    @abc.abstractmethod
    async def compact(self, revision: int) -> None: ...

    @abc.abstractmethod
    async def compacted_revision(self) -> int: ...

    async def count(self, prefix: str) -> int:
        res = await self.list(prefix)
        return len(res.items)


def prefix_end(prefix: str) -> str:
    """Smallest string greater than every string starting with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else "\U0010ffff"
