"""Data at rest through the real start path: file modes, and Secrets encrypted in the store.

A real ``centaurusctl serve apiserver`` process creates its data directory; the directory
must be 0700 and the store, its WAL/SHM and the token file 0600, and an unprivileged user
(``nobody``, through ``setpriv``) must fail to read any of them. A data directory left
world-readable by an older version is fixed when the server starts. With
``--encryption-key-file`` a Secret's value is absent from the raw ``store.db``/WAL bytes
while the API returns it; after a key rotation with ``--encryption-rewrite`` old and new
Secrets both read and the old key can be dropped.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctl.apiserver.auth import SYSTEM_MASTERS, TokenFile
from tests.cluster import ApiServerProcess
from tests.store.test_encryption import key_file, raw_bytes
from tests.tenancy.conftest import ADMIN_TOKEN, Caller

VALUE = "top-secret-password-9d41"
SECRETS = "/api/v1/namespaces/default/secrets"
pytestmark = pytest.mark.slow  # every test starts an API server process


def _as_nobody_reads(path: Path) -> bool:
    r = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat", str(path)],
        capture_output=True,
        timeout=10,
    )
    return r.returncode == 0


def _secret(name: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "data": {"password": base64.b64encode(VALUE.encode()).decode()}}


def _api(d: Path, extra: list[str] | None = None) -> ApiServerProcess:
    TokenFile(d / "tokens.json").add(ADMIN_TOKEN, "system:admin", "system", [SYSTEM_MASTERS])
    return ApiServerProcess(d, anonymous=False, extra=extra).start()


@pytest.fixture
def traversable_dir() -> Iterator[Path]:
    """A directory every user may traverse, as /var/lib is (pytest's own tmp_path is 0700)."""
    p = Path(tempfile.mkdtemp(prefix="centaurus-at-rest-", dir="/tmp"))
    os.chmod(p, 0o755)
    try:
        yield p
    finally:
        shutil.rmtree(p, ignore_errors=True)


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv to act as nobody"
)


@pytest.mark.root
@needs_root
def test_data_dir_private_when_created_and_fixed_on_start(traversable_dir: Path) -> None:
    d = traversable_dir / "data"
    api = _api(d)
    try:
        Caller(api.url, ADMIN_TOKEN).ok("POST", SECRETS, _secret("s1"))
    finally:
        api.stop()
    files = [d / "store.db", d / "store.db-wal", d / "tokens.json", d / "apiserver.log"]
    files = [f for f in files if f.exists()]
    assert d / "store.db" in files and d / "tokens.json" in files
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for f in files:
        if f.name == "apiserver.log":
            continue  # written by the test harness, not the server; fixed on the next start below
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    for f in files:
        assert not _as_nobody_reads(f), f"nobody can read {f}"

    # an existing data dir left readable (an older version, or a careless copy) is fixed on start
    os.chmod(d, 0o755)
    for f in files:
        os.chmod(f, 0o644)
    (d / "pki").mkdir(exist_ok=True)
    (d / "pki" / "ca.key").write_text("key")
    os.chmod(d / "pki" / "ca.key", 0o644)
    assert _as_nobody_reads(d / "pki" / "ca.key"), "the test must make the file readable first"
    api = _api(d)
    api.stop()
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for f in [*files, d / "pki" / "ca.key"]:
        assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f
        assert not _as_nobody_reads(f), f"nobody can read {f}"


def test_secrets_encrypted_in_the_store_and_rotated(tmp_path: Path) -> None:
    d = tmp_path / "data"
    d.mkdir()
    k1 = key_file(tmp_path / "k1.yaml", "k1")
    api = _api(d, ["--encryption-key-file", str(k1)])
    try:
        admin = Caller(api.url, ADMIN_TOKEN)
        admin.ok("POST", SECRETS, _secret("old"))
        got = admin.ok("GET", f"{SECRETS}/old")
        assert base64.b64decode(got["data"]["password"]).decode() == VALUE
        admin.ok("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "cm-marker-51"}})
        on_disk = raw_bytes(d / "store.db")
        assert b"cm-marker-51" in on_disk, "the configmap is on disk: the test reads the store's files"
        encoded = got["data"]["password"].encode()
        assert VALUE.encode() not in on_disk and encoded not in on_disk, "the secret is on disk in plaintext"
    finally:
        api.stop()

    # rotation: k2 first (encrypts), k1 still listed (decrypts); the rewrite moves everything onto k2
    k21 = key_file(tmp_path / "k21.yaml", "k2", "k1")
    api = _api(d, ["--encryption-key-file", str(k21), "--encryption-rewrite"])
    try:
        admin = Caller(api.url, ADMIN_TOKEN)
        admin.ok("POST", SECRETS, _secret("new"))
        for name in ("old", "new"):
            got = admin.ok("GET", f"{SECRETS}/{name}")
            assert base64.b64decode(got["data"]["password"]).decode() == VALUE
    finally:
        api.stop()

    api = _api(d, ["--encryption-key-file", str(key_file(tmp_path / "k2.yaml", "k2"))])  # k1 dropped
    try:
        admin = Caller(api.url, ADMIN_TOKEN)
        items = admin.ok("GET", SECRETS)["items"]
        assert {"old", "new"} <= {i["metadata"]["name"] for i in items}
        for i in items:
            if i["metadata"]["name"] in ("old", "new"):
                assert base64.b64decode(i["data"]["password"]).decode() == VALUE
    finally:
        api.stop()


def test_bad_key_file_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("kind: Nope\n")
    api = ApiServerProcess(tmp_path / "data", extra=["--encryption-key-file", str(tmp_path / "bad.yaml")])
    with pytest.raises(RuntimeError, match="not an EncryptionConfiguration") as e:
        api.start(timeout=15)
    assert "Traceback" not in str(e.value)


def test_secure_tree_spares_container_visible_files(tmp_path: Path) -> None:
    """The start-up fix-up closes state files but leaves rootfs, a pod's etc and the image store alone."""
    from ctl.util.private_files import role_umask, secure_tree

    pod = tmp_path / "agent" / "n1" / "pods" / "uid1"
    for sub in ("containers/c/0/rootfs/bin", "etc", "logs/c"):
        (pod / sub).mkdir(parents=True)
    (tmp_path / "images" / "busybox").mkdir(parents=True)
    files = {
        pod / "pod.json": 0o644,
        pod / "logs" / "c" / "0.log": 0o644,
        pod / "containers" / "c" / "0" / "rootfs" / "bin" / "sh": 0o755,
        pod / "etc" / "hosts": 0o644,
        tmp_path / "images" / "busybox" / "layer": 0o644,
        tmp_path / "run.sh": 0o755,
    }
    for f, mode in files.items():
        f.write_text("x")
        os.chmod(f, mode)
    os.chmod(tmp_path, 0o755)
    secure_tree(tmp_path)
    mode = {f: stat.S_IMODE(f.stat().st_mode) for f in files}
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
    assert mode[pod / "pod.json"] == 0o600 and mode[pod / "logs" / "c" / "0.log"] == 0o600
    assert mode[tmp_path / "run.sh"] == 0o700  # the owner keeps its execute bit
    assert mode[pod / "containers" / "c" / "0" / "rootfs" / "bin" / "sh"] == 0o755
    assert mode[pod / "etc" / "hosts"] == 0o644 and mode[tmp_path / "images" / "busybox" / "layer"] == 0o644
    assert role_umask("apiserver") == 0o077 and role_umask("agent") == 0o077
