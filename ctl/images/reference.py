"""Parsing and normalising image references (``busybox``, ``busybox:1.36``, ``docker.io/library/busybox:latest``).

Image names follow the Docker/OCI distribution grammar closely enough for a local store:
an optional registry domain (a first component containing ``.`` or ``:`` or equal to ``localhost``),
a repository path, and either a ``:tag`` (default ``latest``) or an ``@sha256:...`` digest.
Names without a domain live on ``docker.io`` and single-component Docker Hub names get the
``library/`` prefix, so ``busybox``, ``busybox:latest`` and ``docker.io/library/busybox:latest``
all name the same image. The store keys images by the canonical form; the CLI shows the short
("familiar") form, the way ``docker images`` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_DOMAIN = "docker.io"
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class InvalidReference(ValueError):
    """The string is not a valid image reference."""


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    def canonical(self) -> str:
        """``docker.io/library/busybox:latest`` (or ``...@sha256:...`` for a digest reference)."""
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag or 'latest'}"

    def familiar(self) -> str:
        """``busybox:latest``: the short form for display."""
        repo = self.path
        if self.domain == DEFAULT_DOMAIN:
            if repo.startswith("library/") and repo.count("/") == 1:
                repo = repo[len("library/") :]
        else:
            repo = self.repository
        if self.digest:
            return f"{repo}@{self.digest}"
        return f"{repo}:{self.tag or 'latest'}"


def parse(ref: str) -> Reference:
    """Parse ``ref`` into a normalised :class:`Reference`; raises :class:`InvalidReference`."""
    s = ref.strip()
    if not s:
        raise InvalidReference("empty image reference")
    digest = None
    if "@" in s:
        s, digest = s.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidReference(f"invalid digest in image reference {ref!r}")
    tag = None
    last = s.rsplit("/", 1)[-1]
    if ":" in last:
        s, tag = s.rsplit(":", 1)
        if not _TAG.match(tag):
            raise InvalidReference(f"invalid tag {tag!r} in image reference {ref!r}")
    parts = s.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        domain, parts = parts[0], parts[1:]
    else:
        domain = DEFAULT_DOMAIN
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and len(parts) == 1:
        parts = ["library", *parts]
    for p in parts:
        if not _COMPONENT.match(p):
            raise InvalidReference(f"invalid image name {ref!r} (components must be lowercase alphanumerics)")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(domain=domain, path="/".join(parts), tag=tag, digest=digest)


def normalize(ref: str) -> str:
    """Canonical string form of ``ref``."""
    return parse(ref).canonical()


def familiar(ref: str) -> str:
    """Short display form of ``ref``."""
    return parse(ref).familiar()
