"""Storage backends behind one async MVCC contract (see :mod:`ctl.store.base`)."""

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

__all__ = [
    "CompactedError",
    "ConflictError",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyValue",
    "ListResult",
    "Store",
    "StoreError",
    "WatchEvent",
    "open_store",
]


def open_store(url: str) -> Store:
    """Open a store by URL: ``sqlite:///path/to/db`` or ``etcd://host:port[,host:port]``."""
    if url.startswith("sqlite://"):
        from ctl.store.sqlite import SqliteStore

        return SqliteStore(url[len("sqlite://") :])
    if url.startswith("etcd://"):
        from ctl.store.etcd import EtcdStore

        return EtcdStore(url[len("etcd://") :].split(","))
    raise ValueError(f"unknown store URL {url!r}: use sqlite:///PATH or etcd://HOST:PORT")
