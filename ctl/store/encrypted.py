"""Encryption of Secrets at rest: a store wrapper, configured as kube-apiserver's EncryptionConfiguration.

``centaurusctl serve apiserver --encryption-key-file FILE`` wraps the store in
:class:`EncryptedStore`. Values under the configured resources' keys
(``/registry/secrets/...`` for ``resources: [secrets]``) are sealed with AES-GCM before
they reach the backend and opened again on every read, list and watch event, so the
watch cache and everything above it see plaintext while ``store.db``, its WAL and etcd
hold only ciphertext.

The file is the Kubernetes ``EncryptionConfiguration`` (``apiserver.config.k8s.io/v1``)
with the ``aesgcm`` and ``identity`` providers::

    apiVersion: apiserver.config.k8s.io/v1
    kind: EncryptionConfiguration
    resources:
      - resources: [secrets]
        providers:
          - aesgcm:
              keys:
                - name: key2               # the first key of the first provider encrypts
                  secret: <base64 of 16, 24 or 32 random bytes>
                - name: key1               # every listed key decrypts (rotation)
                  secret: <base64>
          - identity: {}                   # values written before encryption still read

A sealed value is ``k8s:enc:aesgcm:v1:KEYNAME:`` + a 12-byte random nonce + the ciphertext
and tag; the store key is the authenticated data, so a value copied under another key
does not open. A value without the prefix is plaintext and reads as it is (migration); with
``identity`` as the first provider new writes are plaintext again (decommissioning).

Rotation, as in Kubernetes: add the new key second and restart every API server (all can
read it), move it first and restart (new writes use it), rewrite every Secret
(:meth:`EncryptedStore.rewrite`, run at start by ``--encryption-rewrite``), then drop the
old key.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import dataclasses
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ctl.store.base import (
    ConflictError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    Store,
    StoreError,
    WatchEvent,
)

PREFIX = b"k8s:enc:aesgcm:v1:"
NONCE = 12
REWRITE_PAGE = 500


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The API server's encryption-at-rest flags."""
    g = p.add_argument_group("encryption at rest")
    g.add_argument(
        "--encryption-key-file",
        default="",
        help="EncryptionConfiguration (aesgcm keys) encrypting Secrets in the store",
    )
    g.add_argument(
        "--encryption-rewrite",
        action="store_true",
        help="at start, rewrite every encrypted resource with the current key (after a rotation)",
    )


class EncryptionConfigError(OSError):
    """The encryption configuration file is unusable (the message says why).

    An ``OSError`` so that a role's start-up reports it as one line (:func:`ctl.util.daemon.run_daemon`).
    """


@dataclasses.dataclass(frozen=True)
class Keyring:
    """The keys of one resource set: ``primary`` encrypts (None = write plaintext), all decrypt."""

    keys: dict[str, AESGCM]
    primary: str | None

    def seal(self, key: str, value: bytes) -> bytes:
        if self.primary is None:
            return value
        nonce = os.urandom(NONCE)
        ct = self.keys[self.primary].encrypt(nonce, value, key.encode())
        return PREFIX + self.primary.encode() + b":" + nonce + ct

    def open(self, key: str, value: bytes) -> bytes:
        if not value.startswith(PREFIX):
            return value  # written before encryption was configured
        name, sep, rest = value[len(PREFIX) :].partition(b":")
        aes = self.keys.get(name.decode(errors="replace"))
        if not sep or aes is None:
            raise StoreError(
                f"cannot decrypt {key}: key {name.decode(errors='replace')!r} is not in the encryption configuration"
            )
        try:
            return aes.decrypt(rest[:NONCE], rest[NONCE:], key.encode())
        except Exception:  # cryptography's InvalidTag: wrong key material or a damaged value
            raise StoreError(f"cannot decrypt {key}: the value does not authenticate") from None

    def current(self, value: bytes) -> bool:
        """Whether ``value`` is stored as this keyring writes it now."""
        if self.primary is None:
            return not value.startswith(PREFIX)
        return value.startswith(PREFIX + self.primary.encode() + b":")


def load_config(path: str | Path) -> dict[str, Keyring]:
    """Key prefix (``/registry/secrets/``) -> keyring, from an EncryptionConfiguration file."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise EncryptionConfigError(f"cannot read the encryption configuration {path}: {e}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "EncryptionConfiguration":
        raise EncryptionConfigError(f"{path}: not an EncryptionConfiguration (kind: EncryptionConfiguration)")
    out: dict[str, Keyring] = {}
    for i, entry in enumerate(doc.get("resources") or []):
        where = f"{path}: resources[{i}]"
        if not isinstance(entry, dict):
            raise EncryptionConfigError(f"{where}: must be a mapping")
        ring = _keyring(entry.get("providers"), where)
        for res in entry.get("resources") or []:
            if not isinstance(res, str) or not res or "*" in res or "/" in res:
                raise EncryptionConfigError(
                    f"{where}.resources: {res!r} is not a resource name like 'secrets'"
                )
            out[f"/registry/{res.split('.')[0]}/"] = ring
    if not out:
        raise EncryptionConfigError(f"{path}: no resources to encrypt (resources[].resources: [secrets])")
    return out


def _keyring(providers: Any, where: str) -> Keyring:
    if not isinstance(providers, list) or not providers:
        raise EncryptionConfigError(f"{where}.providers: a list of aesgcm/identity providers is required")
    keys: dict[str, AESGCM] = {}
    primary: str | None = None
    for j, prov in enumerate(providers):
        if not isinstance(prov, dict) or len(prov) != 1:
            raise EncryptionConfigError(f"{where}.providers[{j}]: one of aesgcm, identity")
        ((ptype, body),) = prov.items()
        if ptype == "identity":
            continue
        if ptype != "aesgcm":
            raise EncryptionConfigError(
                f"{where}.providers[{j}]: provider {ptype!r} is not supported (aesgcm, identity)"
            )
        for k, key in enumerate((body or {}).get("keys") or []):
            kw = f"{where}.providers[{j}].aesgcm.keys[{k}]"
            name, secret = (key or {}).get("name"), (key or {}).get("secret")
            if not isinstance(name, str) or not name or ":" in name:
                raise EncryptionConfigError(f"{kw}.name: a non-empty name without ':' is required")
            try:
                raw = base64.b64decode(str(secret), validate=True)
            except (binascii.Error, ValueError):
                raise EncryptionConfigError(f"{kw}.secret: not valid base64") from None
            if len(raw) not in (16, 24, 32):
                raise EncryptionConfigError(
                    f"{kw}.secret: {len(raw)} bytes; AES-GCM keys are 16, 24 or 32 bytes"
                )
            if name in keys:
                raise EncryptionConfigError(f"{kw}.name: key {name!r} is listed twice")
            keys[name] = AESGCM(raw)
            if j == 0 and primary is None:
                primary = name
        if j == 0 and primary is None:
            raise EncryptionConfigError(f"{where}.providers[0].aesgcm.keys: at least one key is required")
    return Keyring(keys, primary)


class EncryptedStore(Store):
    """A store that seals the values of configured key prefixes (module docstring)."""

    def __init__(self, inner: Store, rings: dict[str, Keyring], *, rewrite_on_start: bool = False) -> None:
        self.inner = inner
        self.rings = rings
        self.rewrite_on_start = rewrite_on_start
        self.name = inner.name

    def __getattr__(self, attr: str) -> Any:  # backend extras (paths, test hooks) pass through
        return getattr(self.inner, attr)

    def _ring(self, key: str) -> Keyring | None:
        for prefix, ring in self.rings.items():
            if key.startswith(prefix):
                return ring
        return None

    def _seal(self, key: str, value: bytes) -> bytes:
        ring = self._ring(key)
        return ring.seal(key, value) if ring else value

    def _open(self, kv: KeyValue) -> KeyValue:
        ring = self._ring(kv.key)
        if ring is None or not kv.value:
            return kv
        return dataclasses.replace(kv, value=ring.open(kv.key, kv.value))

    # ------------------------------------------------------------------ contract
    async def start(self) -> None:
        await self.inner.start()
        if self.rewrite_on_start:
            await self.rewrite()

    async def close(self) -> None:
        await self.inner.close()

    async def get(self, key: str) -> KeyValue | None:
        kv = await self.inner.get(key)
        return None if kv is None else self._open(kv)

    async def list(
        self, prefix: str, *, limit: int = 0, start_after: str | None = None, revision: int = 0
    ) -> ListResult:
        res = await self.inner.list(prefix, limit=limit, start_after=start_after, revision=revision)
        return ListResult([self._open(kv) for kv in res.items], res.revision, res.more)

    async def create(self, key: str, value: bytes) -> KeyValue:
        kv = await self.inner.create(key, self._seal(key, value))
        return dataclasses.replace(kv, value=value)

    async def update(self, key: str, value: bytes, expected_revision: int | None = None) -> KeyValue:
        kv = await self.inner.update(key, self._seal(key, value), expected_revision)
        return dataclasses.replace(kv, value=value)

    async def delete(self, key: str, expected_revision: int | None = None) -> KeyValue:
        return self._open(await self.inner.delete(key, expected_revision))

    async def watch(
        self, prefix: str, after_revision: int, *, prev_kv: bool = True
    ) -> AsyncIterator[WatchEvent]:  # type: ignore[override]
        it = self.inner.watch(prefix, after_revision, prev_kv=prev_kv)
        try:
            async for ev in it:
                yield WatchEvent(ev.type, self._open(ev.kv), None if ev.prev is None else self._open(ev.prev))
        finally:
            await it.aclose()  # type: ignore[attr-defined]

    async def current_revision(self) -> int:
        return await self.inner.current_revision()

    async def compact(self, revision: int) -> None:
        await self.inner.compact(revision)

    async def compacted_revision(self) -> int:
        return await self.inner.compacted_revision()

    async def count(self, prefix: str) -> int:
        return await self.inner.count(prefix)

    # ------------------------------------------------------------------ rotation
    async def rewrite(self) -> int:
        """Store every value of the configured prefixes as the first provider writes it; returns how many.

        Values already sealed with the current key are left alone; a value changed meanwhile
        (a CAS conflict) was written by a writer using the current key, so it is skipped.
        """
        n = 0
        for prefix, ring in self.rings.items():
            after: str | None = None
            while True:
                page = await self.inner.list(prefix, limit=REWRITE_PAGE, start_after=after)
                for kv in page.items:
                    if ring.current(kv.value):
                        continue
                    plain = ring.open(kv.key, kv.value)
                    try:
                        await self.inner.update(kv.key, ring.seal(kv.key, plain), kv.mod_revision)
                        n += 1
                    except (ConflictError, KeyNotFoundError):
                        pass
                if not page.more or not page.items:
                    break
                after = page.items[-1].key
        return n
