"""Secrets encrypted at rest by the store wrapper (:mod:`ctl.store.encrypted`), on a real SQLite store.

The raw database and WAL bytes are read back from disk: the secret's value must not be
in them, while reads, lists and watches through the wrapper return it. Rotation: a key
added second still decrypts; moved first, it encrypts new writes and ``rewrite`` moves
every old value onto it; values stored before encryption was configured still read.
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import pytest

from ctl.store import open_store
from ctl.store.base import StoreError
from ctl.store.encrypted import PREFIX, EncryptionConfigError, load_config

SECRET = b'{"data":{"password":"c3VwZXItc2VjcmV0LXZhbHVlLTQy"},"note":"plain-marker-7e1f"}'
MARK = b"plain-marker-7e1f"


def key_file(path: Path, *names: str, identity_first: bool = False) -> Path:
    keys = "".join(
        f"          - name: {n}\n            secret: {base64.b64encode(_key(n)).decode()}\n" for n in names
    )
    aes = f"      - aesgcm:\n          keys:\n{keys}"
    ident = "      - identity: {}\n"
    path.write_text(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
        "  - resources: [secrets]\n    providers:\n" + (ident + aes if identity_first else aes + ident)
    )
    return path


def _key(name: str) -> bytes:
    return (name.encode() * 32)[:32]  # deterministic per name, so a file can be rewritten with the same keys


def raw_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


def test_values_sealed_on_disk_and_plain_through_the_store(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    kf = key_file(tmp_path / "enc.yaml", "k1")

    async def go() -> None:
        s = open_store(f"sqlite://{db}", encryption_key_file=str(kf))
        await s.start()
        watch = s.watch("/registry/secrets/", 0)
        kv = await s.create("/registry/secrets/t/default/s1", SECRET)
        await s.create("/registry/configmaps/t/default/c1", b"configmap-marker-3c9a")
        assert kv.value == SECRET
        got = await s.get("/registry/secrets/t/default/s1")
        assert got is not None and got.value == SECRET
        listed = await s.list("/registry/secrets/")
        assert [x.value for x in listed.items] == [SECRET]
        ev = await asyncio.wait_for(watch.__anext__(), 5)
        assert ev.kv.value == SECRET
        await watch.aclose()  # type: ignore[attr-defined]
        upd = await s.update("/registry/secrets/t/default/s1", SECRET + b" ", kv.mod_revision)
        gone = await s.delete("/registry/secrets/t/default/s1", upd.mod_revision)
        assert gone.value == SECRET + b" "
        await s.create("/registry/secrets/t/default/s2", SECRET)
        inner = s.inner  # type: ignore[attr-defined]
        raw = await inner.get("/registry/secrets/t/default/s2")
        assert raw.value.startswith(PREFIX + b"k1:") and MARK not in raw.value
        await s.close()

    asyncio.run(go())
    on_disk = raw_bytes(db)
    assert b"configmap-marker-3c9a" in on_disk, (
        "the unencrypted configmap is on disk (the right files are read)"
    )
    assert MARK not in on_disk, "the secret's value is on disk in plaintext"
    assert b"c3VwZXItc2VjcmV0LXZhbHVlLTQy" not in on_disk


def test_rotation_migration_and_rewrite(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    url = f"sqlite://{db}"

    async def go() -> None:
        plain = open_store(url)  # before encryption was configured
        await plain.start()
        await plain.create("/registry/secrets/t/ns/old-plain", SECRET)
        await plain.close()

        s = open_store(url, encryption_key_file=str(key_file(tmp_path / "a.yaml", "k1")))
        await s.start()
        await s.create("/registry/secrets/t/ns/by-k1", SECRET)
        assert (await s.get("/registry/secrets/t/ns/old-plain")).value == SECRET  # type: ignore[union-attr]
        await s.close()

        # k2 added first: new writes use it, k1 and plaintext still read
        s = open_store(url, encryption_key_file=str(key_file(tmp_path / "b.yaml", "k2", "k1")))
        await s.start()
        await s.create("/registry/secrets/t/ns/by-k2", SECRET)
        for name in ("old-plain", "by-k1", "by-k2"):
            assert (await s.get(f"/registry/secrets/t/ns/{name}")).value == SECRET  # type: ignore[union-attr]
        raw = {kv.key.rsplit("/", 1)[1]: kv.value for kv in (await s.inner.list("/registry/secrets/")).items}  # type: ignore[attr-defined]
        assert raw["old-plain"] == SECRET
        assert raw["by-k1"].startswith(PREFIX + b"k1:") and raw["by-k2"].startswith(PREFIX + b"k2:")
        await s.close()

        # the start-up rewrite moves everything onto k2; then k1 can go
        s = open_store(url, encryption_key_file=str(tmp_path / "b.yaml"), encryption_rewrite=True)
        await s.start()
        raw = {kv.key.rsplit("/", 1)[1]: kv.value for kv in (await s.inner.list("/registry/secrets/")).items}  # type: ignore[attr-defined]
        assert all(v.startswith(PREFIX + b"k2:") for v in raw.values()), raw
        assert await s.rewrite() == 0  # type: ignore[attr-defined]
        await s.close()

        s = open_store(url, encryption_key_file=str(key_file(tmp_path / "c.yaml", "k2")))
        await s.start()
        for name in ("old-plain", "by-k1", "by-k2"):
            assert (await s.get(f"/registry/secrets/t/ns/{name}")).value == SECRET  # type: ignore[union-attr]
        await s.close()

        # a store opened without k2 cannot read them: an error, never ciphertext passed on as the value
        s = open_store(url, encryption_key_file=str(key_file(tmp_path / "d.yaml", "k3")))
        await s.start()
        with pytest.raises(StoreError, match="k2"):
            await s.get("/registry/secrets/t/ns/by-k1")
        await s.close()

    asyncio.run(go())


def test_value_moved_to_another_key_does_not_open(tmp_path: Path) -> None:
    async def go() -> None:
        s = open_store(
            f"sqlite://{tmp_path / 's.db'}", encryption_key_file=str(key_file(tmp_path / "k.yaml", "k1"))
        )
        await s.start()
        await s.create("/registry/secrets/t/ns/a", SECRET)
        sealed = (await s.inner.get("/registry/secrets/t/ns/a")).value  # type: ignore[attr-defined]
        await s.inner.create("/registry/secrets/t/ns/b", sealed)  # type: ignore[attr-defined]
        with pytest.raises(StoreError, match="authenticate"):
            await s.get("/registry/secrets/t/ns/b")
        await s.close()

    asyncio.run(go())


@pytest.mark.parametrize(
    "body, message",
    [
        ("kind: Other\n", "not an EncryptionConfiguration"),
        (
            "kind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n"
            "      - aescbc: {keys: [{name: a, secret: AAAA}]}\n",
            "not supported",
        ),
        (
            "kind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n"
            "      - aesgcm: {keys: [{name: a, secret: " + base64.b64encode(os.urandom(7)).decode() + "}]}\n",
            "7 bytes",
        ),
        ("kind: EncryptionConfiguration\nresources: []\n", "no resources"),
    ],
)
def test_bad_configuration_is_one_clear_error(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "k.yaml").write_text(body)
    with pytest.raises(EncryptionConfigError, match=message):
        load_config(tmp_path / "k.yaml")


def test_identity_first_writes_plaintext_but_still_reads_sealed(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 's.db'}"

    async def go() -> None:
        s = open_store(url, encryption_key_file=str(key_file(tmp_path / "a.yaml", "k1")))
        await s.start()
        await s.create("/registry/secrets/t/ns/a", SECRET)
        await s.close()
        s = open_store(url, encryption_key_file=str(key_file(tmp_path / "b.yaml", "k1", identity_first=True)))
        await s.start()
        assert (await s.get("/registry/secrets/t/ns/a")).value == SECRET  # type: ignore[union-attr]
        assert await s.rewrite() == 1  # type: ignore[attr-defined]
        assert (await s.inner.get("/registry/secrets/t/ns/a")).value == SECRET  # type: ignore[attr-defined]
        await s.close()

    asyncio.run(go())
