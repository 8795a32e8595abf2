"""Storage backends behind one async MVCC contract (see :mod:`ctl.store.base`).

:func:`open_store` opens a backend by URL and, given an EncryptionConfiguration file,
wraps it so that Secrets are encrypted at rest (:mod:`ctl.store.encrypted`).
"""

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


def open_store(
    url: str, *, encryption_key_file: str | None = None, encryption_rewrite: bool = False
) -> Store:
    """Open a store by URL: ``sqlite:///path/to/db`` or ``etcd://host:port[,host:port]``.

    With ``encryption_key_file`` (an EncryptionConfiguration) the configured resources are
    encrypted at rest; ``encryption_rewrite`` rewrites them all with the current key at start.
    A bad file raises :class:`ctl.store.encrypted.EncryptionConfigError` (an ``OSError``).
    """
    store: Store
    if url.startswith("sqlite://"):
        from ctl.store.sqlite import SqliteStore

        store = SqliteStore(url[len("sqlite://") :])
    elif url.startswith("etcd://"):
        from ctl.store.etcd import EtcdStore

        store = EtcdStore(url[len("etcd://") :].split(","))
    else:
        raise ValueError(f"unknown store URL {url!r}: use sqlite:///PATH or etcd://HOST:PORT")
    if encryption_key_file:
        from ctl.store.encrypted import EncryptedStore, load_config

        store = EncryptedStore(store, load_config(encryption_key_file), rewrite_on_start=encryption_rewrite)
    elif encryption_rewrite:
        from ctl.store.encrypted import EncryptionConfigError

        raise EncryptionConfigError("--encryption-rewrite needs --encryption-key-file")
    return store
