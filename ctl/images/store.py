"""The local image store: OCI images kept on disk under ``DATA_DIR/images``, unpacked on demand.

The store directory is itself an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/...``),
so other OCI tools can read it. Each image is one manifest in ``index.json``, named by the annotations
``io.containerd.image.name`` (the canonical reference, e.g. ``docker.io/library/busybox:latest``) and
``org.opencontainers.image.ref.name`` (the tag). Several names may point at one manifest.

Images come in through :meth:`ImageStore.import_path`, which understands an OCI layout directory, an
OCI layout tarball and a ``docker save`` tarball (optionally gzip-compressed), and through
:meth:`ImageStore.add_image` (used by the built-in image builders). Blobs are verified against their
digests on the way in.

The node agent asks :meth:`ImageStore.rootfs` for an image's root filesystem: the layers are applied in
order (honouring OCI whiteouts) into ``rootfs/<manifest digest>/`` once, and the result is shared
read-only by every container of that image (the runtime puts an overlay on top). Extraction resolves
every path inside the rootfs, so a layer cannot write outside it even through absolute symlinks.

Writers take an ``flock`` on ``images/.lock``, so the CLI and agents on one host can share a store.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ctl.images import reference
from ctl.images.errors import ImageError, ImageNotFound, InvalidImage
from ctl.images.layers import apply_layer, tar_bytes
from ctl.images.sources import DirSource, Source, TarSource
from ctl.types import meta

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ANN_NAME = "io.containerd.image.name"
ANN_REF = "org.opencontainers.image.ref.name"


def default_data_dir() -> Path:
    """``$CENTAURUS_DATA_DIR`` or ``~/.centaurus``."""
    env = os.environ.get("CENTAURUS_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".centaurus"


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class ImageRecord:
    """One named image in the store."""

    name: str  # canonical reference
    digest: str  # manifest digest
    config_digest: str
    size: int  # sum of layer blob sizes
    created: str | None = None
    layers: list[str] = field(default_factory=list)

    @property
    def familiar(self) -> str:
        return reference.familiar(self.name)

    @property
    def id(self) -> str:
        """Docker-style image ID (the config digest), short form."""
        return self.config_digest.split(":", 1)[1][:12]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.familiar,
            "reference": self.name,
            "id": self.id,
            "digest": self.digest,
            "configDigest": self.config_digest,
            "size": self.size,
            "created": self.created,
            "layers": len(self.layers),
        }


class ImageStore:
    """A local OCI image store rooted at ``data_dir/images``."""

    def __init__(self, data_dir: str | os.PathLike[str] | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.root = self.data_dir / "images"
        self.blobs = self.root / "blobs" / "sha256"
        self.rootfs_dir = self.root / "rootfs"

    # ---------------------------------------------------------------- layout

    def _ensure(self) -> None:
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.rootfs_dir.mkdir(parents=True, exist_ok=True)
        layout = self.root / "oci-layout"
        if not layout.exists():
            layout.write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        if not (self.root / "index.json").exists():
            self._write_index({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": []})

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self._ensure()
        with open(self.root / ".lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _read_index(self) -> dict[str, Any]:
        p = self.root / "index.json"
        if not p.exists():
            return {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": []}
        return json.loads(p.read_text())

    def _write_index(self, idx: dict[str, Any]) -> None:
        tmp = self.root / "index.json.tmp"
        tmp.write_text(json.dumps(idx, indent=1, sort_keys=True))
        os.replace(tmp, self.root / "index.json")

    def blob_path(self, digest: str) -> Path:
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64:
            raise InvalidImage(f"unsupported digest {digest!r}")
        return self.blobs / hexd

    def _put_blob(self, data: bytes) -> str:
        digest = sha256_bytes(data)
        p = self.blob_path(digest)
        if not p.exists():
            tmp = p.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(data)
            os.replace(tmp, p)
        return digest

    def _put_blob_file(self, src: IO[bytes], expected: str | None = None) -> tuple[str, int]:
        """Copy a stream into the blob store, verifying ``expected`` when given."""
        self.blobs.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        size = 0
        fd, tmpname = tempfile.mkstemp(dir=self.blobs, prefix=".in-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(1 << 20):
                    h.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            digest = "sha256:" + h.hexdigest()
            if expected and digest != expected:
                raise InvalidImage(f"blob digest mismatch: expected {expected}, got {digest}")
            os.replace(tmpname, self.blob_path(digest))
            return digest, size
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmpname)

    def read_blob(self, digest: str) -> bytes:
        p = self.blob_path(digest)
        if not p.exists():
            raise InvalidImage(f"blob {digest} missing from the store")
        return p.read_bytes()

    def _json_blob(self, digest: str) -> dict[str, Any]:
        return json.loads(self.read_blob(digest))

    # ---------------------------------------------------------------- queries

    def _record(self, name: str, desc: dict[str, Any]) -> ImageRecord:
        manifest = self._json_blob(desc["digest"])
        cfg_digest = manifest["config"]["digest"]
        created = None
        with contextlib.suppress(Exception):
            created = self._json_blob(cfg_digest).get("created")
        layers = [lyr["digest"] for lyr in manifest.get("layers", [])]
        size = sum(int(lyr.get("size", 0)) for lyr in manifest.get("layers", []))
        return ImageRecord(
            name=name,
            digest=desc["digest"],
            config_digest=cfg_digest,
            size=size,
            created=created,
            layers=layers,
        )

    def images(self) -> list[ImageRecord]:
        idx = self._read_index()
        out = []
        for desc in idx.get("manifests", []):
            name = (desc.get("annotations") or {}).get(ANN_NAME)
            if name:
                out.append(self._record(name, desc))
        return sorted(out, key=lambda r: r.name)

    def resolve(self, ref: str) -> ImageRecord:
        """Find an image by name, ``name@digest``, manifest digest, or image-ID prefix."""
        ref = ref.strip()
        images = self.images()
        hexref = ref[len("sha256:") :] if ref.startswith("sha256:") else ref
        if len(hexref) >= 6 and all(c in "0123456789abcdef" for c in hexref):
            hits = {
                r.digest: r
                for r in images
                if r.digest.split(":")[1].startswith(hexref)
                or r.config_digest.split(":")[1].startswith(hexref)
            }
            if len(hits) == 1:
                rec = next(iter(hits.values()))
                # prefer returning the record with its name; any name for that digest works
                return rec
            if len(hits) > 1:
                raise ImageError(f"image ID prefix {ref!r} is ambiguous")
        try:
            parsed = reference.parse(ref)
        except reference.InvalidReference as e:
            raise ImageNotFound(f"image {ref!r} not found ({e})") from None
        if parsed.digest:
            for r in images:
                if r.digest == parsed.digest and reference.parse(r.name).repository == parsed.repository:
                    return r
        else:
            canon = parsed.canonical()
            for r in images:
                if r.name == canon:
                    return r
        raise ImageNotFound(f"image {ref!r} not found in {self.root}")

    def exists(self, ref: str) -> bool:
        try:
            self.resolve(ref)
            return True
        except ImageError:
            return False

    def config(self, ref: str) -> dict[str, Any]:
        """The image's runtime config (``Entrypoint``, ``Cmd``, ``Env``, ``WorkingDir``, ``User``...)."""
        rec = self.resolve(ref)
        cfg = self._json_blob(rec.config_digest)
        return dict(cfg.get("config") or cfg.get("container_config") or {})

    # ---------------------------------------------------------------- writing

    def _tag(self, idx: dict[str, Any], name: str, desc: dict[str, Any]) -> None:
        """Point ``name`` at ``desc`` in ``idx`` (replacing whatever it named before)."""
        canon = reference.normalize(name)
        parsed = reference.parse(canon)
        idx["manifests"] = [
            d for d in idx.get("manifests", []) if (d.get("annotations") or {}).get(ANN_NAME) != canon
        ]
        idx["manifests"].append(
            {
                "mediaType": desc.get("mediaType", MT_OCI_MANIFEST),
                "digest": desc["digest"],
                "size": desc["size"],
                "annotations": {ANN_NAME: canon, ANN_REF: parsed.tag or "latest"},
            }
        )

    def add_image(
        self, name: str, layers: list[bytes], config: dict[str, Any], created: str | None = None
    ) -> ImageRecord:
        """Store an image made of uncompressed layer tarballs and an image config section.

        ``config`` is the ``config`` part of an OCI image config (Entrypoint, Cmd, Env, ...).
        Deterministic: the same inputs give the same digests, so rebuilding is a no-op.
        """
        canon = reference.normalize(name)
        with self._lock():
            layer_descs = []
            diff_ids = []
            for data in layers:
                d = self._put_blob(data)
                layer_descs.append({"mediaType": MT_OCI_LAYER, "digest": d, "size": len(data)})
                diff_ids.append(d)
            cfg = {
                "architecture": "amd64",
                "os": "linux",
                "created": created or "1970-01-01T00:00:00Z",
                "config": config,
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
            cfg_bytes = json.dumps(cfg, sort_keys=True).encode()
            cfg_digest = self._put_blob(cfg_bytes)
            manifest = {
                "schemaVersion": 2,
                "mediaType": MT_OCI_MANIFEST,
                "config": {"mediaType": MT_OCI_CONFIG, "digest": cfg_digest, "size": len(cfg_bytes)},
                "layers": layer_descs,
            }
            m_bytes = json.dumps(manifest, sort_keys=True).encode()
            m_digest = self._put_blob(m_bytes)
            idx = self._read_index()
            self._tag(idx, canon, {"mediaType": MT_OCI_MANIFEST, "digest": m_digest, "size": len(m_bytes)})
            self._write_index(idx)
        return self.resolve(canon)

    def tag(self, ref: str, new_name: str) -> ImageRecord:
        rec = self.resolve(ref)
        with self._lock():
            idx = self._read_index()
            size = self.blob_path(rec.digest).stat().st_size
            self._tag(idx, new_name, {"digest": rec.digest, "size": size})
            self._write_index(idx)
        return self.resolve(new_name)

    def import_path(self, path: str | os.PathLike[str], name: str | None = None) -> list[ImageRecord]:
        """Import an OCI layout directory, an OCI layout tarball or a ``docker save`` tarball.

        ``name`` (``name:tag``) names the image; it is required when the archive carries no name and
        only allowed when the archive holds exactly one image. Returns the imported records.
        """
        p = Path(path)
        if name is not None:
            try:
                reference.parse(name)
            except reference.InvalidReference as e:
                raise ImageError(str(e)) from None
        if not p.exists():
            raise ImageError(f"{p}: no such file or directory")
        if p.is_dir():
            src: Source = DirSource(p)
        else:
            try:
                src = TarSource(p)
            except (tarfile.TarError, OSError, EOFError) as e:
                raise InvalidImage(f"{p}: not a tar archive or OCI layout directory ({e})") from None
        try:
            with self._lock():
                if src.exists("index.json") and src.exists("oci-layout"):
                    found = self._import_oci(src)
                elif src.exists("manifest.json"):
                    found = self._import_docker(src)
                else:
                    raise InvalidImage(f"{p}: neither an OCI image layout nor a docker-save archive")
                if not found:
                    raise InvalidImage(f"{p}: archive contains no images")
                if name is not None:
                    if len({d["digest"] for d, _ in found}) > 1:
                        raise ImageError(f"{p}: archive holds several images; --name is ambiguous")
                    found = [(found[0][0], [name])]
                unnamed = [d for d, names in found if not names]
                if unnamed:
                    raise ImageError(
                        f"{p}: image {unnamed[0]['digest'][:19]} has no name; pass --name NAME:TAG"
                    )
                idx = self._read_index()
                names = []
                for desc, nms in found:
                    for n in nms:
                        self._tag(idx, n, desc)
                        names.append(reference.normalize(n))
                self._write_index(idx)
        finally:
            src.close()
        return [self.resolve(n) for n in names]

    def _copy_blob(self, src: Source, digest: str) -> int:
        if self.blob_path(digest).exists():
            return self.blob_path(digest).stat().st_size
        rel = "blobs/" + digest.replace(":", "/")
        if not src.exists(rel):
            raise InvalidImage(f"archive is missing blob {digest}")
        with src.open(rel) as fh:
            _, size = self._put_blob_file(fh, expected=digest)
        return size

    def _import_oci(self, src: Source) -> list[tuple[dict[str, Any], list[str]]]:
        try:
            idx = json.loads(src.read("index.json"))
        except ValueError as e:
            raise InvalidImage(f"index.json is not valid JSON: {e}") from None
        out: list[tuple[dict[str, Any], list[str]]] = []
        for desc in idx.get("manifests", []):
            ann = desc.get("annotations") or {}
            mdesc = self._import_manifest(src, desc)
            names = []
            full = ann.get(ANN_NAME)
            refname = ann.get(ANN_REF)
            if full:
                names.append(full)
            elif refname and (":" in refname or "/" in refname):
                names.append(refname)
            out.append((mdesc, names))
        # A docker >= 25 save has both index.json and manifest.json; take RepoTags names if no annotations.
        if src.exists("manifest.json") and all(not n for _, n in out):
            with contextlib.suppress(Exception):
                dm = json.loads(src.read("manifest.json"))
                if len(dm) == len(out):
                    out = [(d, list(e.get("RepoTags") or [])) for (d, _), e in zip(out, dm, strict=True)]
        return out

    def _import_manifest(self, src: Source, desc: dict[str, Any]) -> dict[str, Any]:
        """Copy one manifest (choosing linux/amd64 from an index) and its blobs; return its descriptor."""
        mt = desc.get("mediaType", MT_OCI_MANIFEST)
        self._copy_blob(src, desc["digest"])
        body = self._json_blob(desc["digest"])
        if mt in (MT_OCI_INDEX, MT_DOCKER_LIST) or "manifests" in body:
            cands = body.get("manifests", [])
            chosen = None
            for c in cands:
                plat = c.get("platform") or {}
                if plat.get("os", "linux") == "linux" and plat.get("architecture", "amd64") == "amd64":
                    chosen = c
                    break
            if chosen is None:
                raise InvalidImage("image index has no linux/amd64 manifest")
            return self._import_manifest(src, chosen)
        self._copy_blob(src, body["config"]["digest"])
        for lyr in body.get("layers", []):
            if "zstd" in lyr.get("mediaType", ""):
                raise InvalidImage("zstd-compressed layers are not supported")
            self._copy_blob(src, lyr["digest"])
        size = self.blob_path(desc["digest"]).stat().st_size
        return {"mediaType": mt, "digest": desc["digest"], "size": size}

    def _import_docker(self, src: Source) -> list[tuple[dict[str, Any], list[str]]]:
        try:
            entries = json.loads(src.read("manifest.json"))
        except ValueError as e:
            raise InvalidImage(f"manifest.json is not valid JSON: {e}") from None
        out: list[tuple[dict[str, Any], list[str]]] = []
        for ent in entries:
            cfg_rel = ent["Config"]
            with src.open(cfg_rel) as fh:
                cfg_digest, cfg_size = self._put_blob_file(fh)
            layers = []
            for lrel in ent.get("Layers", []):
                with src.open(lrel) as fh:
                    head = fh.read(2)
                with src.open(lrel) as fh:
                    d, size = self._put_blob_file(fh)
                mt = MT_OCI_LAYER_GZIP if head == b"\x1f\x8b" else MT_OCI_LAYER
                layers.append({"mediaType": mt, "digest": d, "size": size})
            manifest = {
                "schemaVersion": 2,
                "mediaType": MT_OCI_MANIFEST,
                "config": {"mediaType": MT_OCI_CONFIG, "digest": cfg_digest, "size": cfg_size},
                "layers": layers,
            }
            mb = json.dumps(manifest, sort_keys=True).encode()
            md = self._put_blob(mb)
            out.append(
                (
                    {"mediaType": MT_OCI_MANIFEST, "digest": md, "size": len(mb)},
                    list(ent.get("RepoTags") or []),
                )
            )
        return out

    # ---------------------------------------------------------------- removal

    def _in_use(self, rootfs: Path) -> bool:
        """True if an overlay mount uses ``rootfs`` as a lower directory."""
        needle = str(rootfs)
        with contextlib.suppress(OSError), open("/proc/self/mountinfo") as fh:
            for line in fh:
                if " overlay " in line and needle in line:
                    return True
        return False

    def remove(self, ref: str, force: bool = False) -> list[str]:
        """Untag ``ref``; when no name is left on its manifest, delete it, its unshared blobs and rootfs.

        Refuses (unless ``force``) while running containers' overlays use the unpacked rootfs.
        Returns the removed names.
        """
        rec = self.resolve(ref)
        with self._lock():
            idx = self._read_index()
            if self._names_ref(ref):
                removed = [rec.name]
            else:  # by ID or digest: every name of that manifest
                removed = [
                    (d.get("annotations") or {}).get(ANN_NAME, "")
                    for d in idx["manifests"]
                    if d["digest"] == rec.digest
                ]
            remaining = [
                d for d in idx["manifests"] if (d.get("annotations") or {}).get(ANN_NAME) not in removed
            ]
            still_used = any(d["digest"] == rec.digest for d in remaining)
            rootfs = self.rootfs_dir / rec.digest.split(":")[1]
            if not still_used and not force and self._in_use(rootfs):
                raise ImageError(f"image {rec.familiar} is in use by running containers (use --force)")
            idx["manifests"] = remaining
            self._write_index(idx)
            if not still_used:
                shutil.rmtree(rootfs, ignore_errors=True)
                self._gc(idx)
        return removed

    def _names_ref(self, ref: str) -> bool:
        try:
            canon = reference.normalize(ref)
        except reference.InvalidReference:
            return False
        return any(r.name == canon for r in self.images())

    def _gc(self, idx: dict[str, Any]) -> None:
        """Delete blobs no manifest in ``idx`` references."""
        keep: set[str] = set()
        for d in idx.get("manifests", []):
            keep.add(d["digest"])
            with contextlib.suppress(Exception):
                m = self._json_blob(d["digest"])
                keep.add(m["config"]["digest"])
                keep.update(lyr["digest"] for lyr in m.get("layers", []))
        for p in self.blobs.iterdir():
            if p.name.startswith("."):
                continue
            if "sha256:" + p.name not in keep:
                p.unlink(missing_ok=True)

    # ---------------------------------------------------------------- unpacking

    def rootfs(self, ref: str) -> Path:
        """Path of the image's unpacked root filesystem (unpacked once, then cached)."""
        rec = self.resolve(ref)
        target = self.rootfs_dir / rec.digest.split(":")[1]
        if (target / ".complete").exists():
            return target / "fs"
        with self._lock():
            if (target / ".complete").exists():
                return target / "fs"
            shutil.rmtree(target, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(dir=self.rootfs_dir, prefix=".unpack-"))
            try:
                fs = tmp / "fs"
                fs.mkdir()
                os.chmod(fs, 0o755)
                for d in rec.layers:
                    apply_layer(fs, self.blob_path(d))
                (tmp / ".complete").write_text(meta.now_rfc3339())
                os.replace(tmp, target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return target / "fs"


__all__ = [
    "ImageError",
    "ImageNotFound",
    "ImageRecord",
    "ImageStore",
    "InvalidImage",
    "apply_layer",
    "default_data_dir",
    "tar_bytes",
]
