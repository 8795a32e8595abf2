"""The image store: references, the busybox builder, imports (OCI dir/tar, docker-save), layers, removal, CLI."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from ctl.images import reference
from ctl.images.busybox import build_busybox_image, find_busybox
from ctl.images.store import ImageError, ImageNotFound, ImageStore, InvalidImage


def _tar(entries: list[tuple[str, str, bytes | str]]) -> bytes:
    """(name, kind, data/linkname) -> tar bytes; kind is f(ile), d(ir), s(ymlink), h(ardlink)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mode = 0o755 if kind == "d" else 0o644
            if kind == "d":
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            elif kind == "s":
                ti.type, ti.linkname = tarfile.SYMTYPE, str(data)
                tf.addfile(ti)
            elif kind == "h":
                ti.type, ti.linkname = tarfile.LNKTYPE, str(data)
                tf.addfile(ti)
            else:
                raw = data if isinstance(data, bytes) else data.encode()
                ti.size = len(raw)
                tf.addfile(ti, io.BytesIO(raw))
    return buf.getvalue()


def docker_save_tar(
    path: Path, layers: list[bytes], repo_tags: list[str] | None, config: dict | None = None
) -> Path:
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": config or {"Cmd": ["sh"]}}).encode()
    cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
    entries: list[tuple[str, str, bytes | str]] = [(cfg_name, "f", cfg)]
    names = []
    for i, layer in enumerate(layers):
        entries.append((f"l{i}/layer.tar", "f", layer))
        names.append(f"l{i}/layer.tar")
    manifest = [{"Config": cfg_name, "RepoTags": repo_tags, "Layers": names}]
    entries.append(("manifest.json", "f", json.dumps(manifest).encode()))
    path.write_bytes(_tar(entries))
    return path


LAYER1 = _tar(
    [
        ("etc", "d", b""),
        ("etc/keep", "f", "keep"),
        ("etc/gone", "f", "gone"),
        ("data", "d", b""),
        ("data/old", "f", "old"),
        ("escape", "s", "/"),
        ("abs", "s", "/etc/keep"),
        ("hard", "h", "etc/keep"),
    ]
)
LAYER2 = _tar(
    [
        ("etc/.wh.gone", "f", b""),
        ("data/.wh..wh..opq", "f", b""),
        ("data/new", "f", "new"),
        ("escape/pwned-by-layer", "f", "x"),  # through an absolute symlink: must stay inside
        ("../../outside-by-dotdot", "f", "x"),
    ]
)


def test_reference_normalisation() -> None:
    assert reference.normalize("busybox") == "docker.io/library/busybox:latest"
    assert reference.normalize("busybox:1.36") == "docker.io/library/busybox:1.36"
    assert reference.normalize("docker.io/library/busybox:latest") == "docker.io/library/busybox:latest"
    assert reference.normalize("quay.io/org/app") == "quay.io/org/app:latest"
    assert reference.normalize("localhost:5000/app:v1") == "localhost:5000/app:v1"
    assert reference.familiar("docker.io/library/busybox:latest") == "busybox:latest"
    assert reference.familiar("docker.io/me/app:v1") == "me/app:v1"
    for bad in ("", "UPPER:case", "a:b:c", "x@sha256:zz"):
        with pytest.raises(reference.InvalidReference):
            reference.parse(bad)


@pytest.mark.slow
def test_build_busybox_idempotent_and_runnable_layout(tmp_path: Path) -> None:
    try:
        find_busybox()
    except ImageError:
        pytest.skip("busybox-static is not installed")
    store = ImageStore(tmp_path)
    a = build_busybox_image(store)
    b = build_busybox_image(store)
    assert a.digest == b.digest and len(store.images()) == 1
    assert store.resolve("docker.io/library/busybox:latest").digest == a.digest
    fs = store.rootfs("busybox")
    assert (fs / "bin/busybox").stat().st_mode & 0o111
    assert os.readlink(fs / "bin/sh") == "/bin/busybox"
    assert (fs / "usr/bin/wget").is_symlink()
    assert oct((fs / "tmp").stat().st_mode & 0o7777) == "0o1777"
    assert "root:x:0:0" in (fs / "etc/passwd").read_text()
    if os.geteuid() == 0:  # the unpacked image really runs
        out = subprocess.run(
            ["chroot", str(fs), "/bin/sh", "-c", "echo $((6*7))"], capture_output=True, text=True
        )
        assert out.returncode == 0 and out.stdout.strip() == "42", out.stderr
    assert store.config("busybox")["Cmd"] == ["sh"]
    # the store directory is itself a valid OCI layout
    assert json.loads((store.root / "oci-layout").read_text())["imageLayoutVersion"] == "1.0.0"


def test_docker_save_import_layers_whiteouts_and_confinement(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "d")
    tarball = docker_save_tar(
        tmp_path / "img.tar", [LAYER1, LAYER2], ["example/app:v1"], {"Entrypoint": ["/app"]}
    )
    recs = store.import_path(tarball)
    assert [r.familiar for r in recs] == ["example/app:v1"]
    fs = store.rootfs("example/app:v1")
    assert (fs / "etc/keep").read_text() == "keep"
    assert not (fs / "etc/gone").exists()  # whiteout
    assert sorted(p.name for p in (fs / "data").iterdir()) == ["new"]  # opaque dir
    assert (fs / "pwned-by-layer").exists()  # the absolute symlink resolved inside the rootfs
    assert not Path("/pwned-by-layer").exists()
    assert (fs / "outside-by-dotdot").exists() and not (tmp_path / "outside-by-dotdot").exists()
    assert os.stat(fs / "hard").st_ino == os.stat(fs / "etc/keep").st_ino
    assert store.config("example/app:v1")["Entrypoint"] == ["/app"]
    # rootfs is cached: a second call does not re-extract
    marker = fs / "marker"
    marker.write_text("x")
    assert store.rootfs("example/app:v1") == fs and marker.exists()


def test_oci_layout_dir_and_tar_import_and_naming(tmp_path: Path) -> None:
    src = ImageStore(tmp_path / "src")
    layer = _tar([("hello", "f", "hi")])
    rec = src.add_image("tools/hello:1", [layer], {"Cmd": ["/hello"]})
    # an OCI layout directory (our store directory is one) keeps its names
    dst = ImageStore(tmp_path / "dst")
    got = dst.import_path(src.root)
    assert [r.name for r in got] == ["docker.io/tools/hello:1"] and got[0].digest == rec.digest
    # an OCI layout tarball, renamed on import
    layout = tmp_path / "layout"
    shutil.copytree(src.root, layout, ignore=shutil.ignore_patterns("rootfs", ".lock"))
    tarball = tmp_path / "layout.tar"
    with tarfile.open(tarball, "w") as tf:
        tf.add(layout, arcname=".")
    got = dst.import_path(tarball, name="renamed:2")
    assert got[0].familiar == "renamed:2" and got[0].digest == rec.digest
    assert {r.familiar for r in dst.images()} == {"tools/hello:1", "renamed:2"}
    # removing one name keeps the shared blobs; removing the last deletes them
    assert dst.remove("renamed:2") == ["docker.io/library/renamed:2"]
    assert dst.rootfs("tools/hello:1").joinpath("hello").read_text() == "hi"
    dst.remove(rec.id)
    assert dst.images() == [] and list(dst.blobs.iterdir()) == []
    assert list(dst.rootfs_dir.iterdir()) == []


def test_import_errors(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    with pytest.raises(ImageError, match="no such file"):
        store.import_path(tmp_path / "nope.tar")
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tarball at all" * 100)
    with pytest.raises(InvalidImage):
        store.import_path(junk)
    unnamed = docker_save_tar(tmp_path / "unnamed.tar", [_tar([("f", "f", "x")])], None)
    with pytest.raises(ImageError, match="--name"):
        store.import_path(unnamed)
    assert store.images() == []
    with pytest.raises(ImageError):
        store.import_path(unnamed, name="Bad Name")
    # a corrupt blob is rejected
    src = ImageStore(tmp_path / "src")
    rec = src.add_image("x:1", [_tar([("f", "f", "x")])], {})
    blob = src.blob_path(rec.layers[0])
    blob.write_bytes(blob.read_bytes() + b"tampered")
    with pytest.raises(InvalidImage, match="digest mismatch"):
        ImageStore(tmp_path / "other").import_path(src.root)
    with pytest.raises(ImageNotFound):
        store.resolve("absent:1")


def _ctl(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CENTAURUS_DATA_DIR=str(data_dir))
    return subprocess.run(
        [sys.executable, "-c", "from ctl.cli.main import main; main()", "image", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.slow
def test_cli_import_list_remove_and_errors(tmp_path: Path) -> None:
    d = tmp_path / "data"
    tarball = docker_save_tar(tmp_path / "img.tar", [_tar([("f", "f", "x")])], ["demo:v1"])
    r = _ctl(d, "import", str(tarball))
    assert r.returncode == 0 and "imported demo:v1" in r.stdout, r.stderr
    r = _ctl(d, "list")
    assert r.returncode == 0 and "demo:v1" in r.stdout and "NAME" in r.stdout
    r = _ctl(d, "list", "-o", "json")
    assert json.loads(r.stdout)[0]["reference"] == "docker.io/library/demo:v1"
    r = _ctl(d, "list", "-o", "yaml")
    assert "name: demo:v1" in r.stdout
    # --data-dir on the group overrides the environment
    other = tmp_path / "other"
    r = _ctl(d, "--data-dir", str(other), "list", "-o", "json")
    assert json.loads(r.stdout) == []
    for args in (
        ("import", str(tmp_path / "missing.tar")),
        ("import", str(tarball), "--name", "NOT VALID"),
        ("remove", "nothere:1"),
        ("list", "-o", "xml"),
    ):
        r = _ctl(d, *args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error: "), (args, r.stderr)
        assert "Traceback" not in r.stderr
    r = _ctl(d, "remove", "demo:v1")
    assert r.returncode == 0 and "removed" in r.stdout
    assert json.loads(_ctl(d, "list", "-o", "json").stdout) == []


@pytest.mark.slow
def test_cli_build_defaults(tmp_path: Path) -> None:
    try:
        find_busybox()
    except ImageError:
        pytest.skip("busybox-static is not installed")
    d = tmp_path / "data"
    for _ in range(2):
        r = _ctl(d, "build-defaults")
        assert r.returncode == 0, r.stderr
        assert "built busybox:latest" in r.stdout
    names = [i["name"] for i in json.loads(_ctl(d, "list", "-o", "json").stdout)]
    assert names.count("busybox:latest") == 1


def test_layer_directories_readable_under_private_umask(tmp_path: Path) -> None:
    """Roles run under umask 0o077; directories a layer implies (a file listed without its
    directory) must still be 0755, or a container's non-root user cannot reach the file."""
    from ctl.images.store import apply_layer, tar_bytes

    f = tarfile.TarInfo("usr/share/app/data.txt")
    f.size, f.mode = 3, 0o644
    layer = tmp_path / "layer.tar"
    layer.write_bytes(tar_bytes([f], {"usr/share/app/data.txt": b"abc"}))
    root = tmp_path / "fs"
    root.mkdir()
    old = os.umask(0o077)
    try:
        apply_layer(root, layer)
    finally:
        os.umask(old)
    for d in ("usr", "usr/share", "usr/share/app"):
        assert (root / d).stat().st_mode & 0o777 == 0o755, d
    assert (root / "usr/share/app/data.txt").stat().st_mode & 0o777 == 0o644
