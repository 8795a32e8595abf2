"""Bearer tokens at rest: the ``tokens.json`` format, token generation and hashing.

``centaurusctl init`` (:mod:`ctl.cluster.bootstrap`) writes one token per component and
the administrator's into ``tokens.json``; the API server (:mod:`ctl.apiserver.auth`)
reads the same file to authenticate requests. Both sides share this module, so the
bootstrap never imports the API server. Tokens are stored only as SHA-256 hashes, each
mapped to ``{"user", "tenant", "groups"}``; the file is written atomically with mode
0600 and re-read whenever its mtime changes. Pure standard library.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from pathlib import Path
from typing import Any

# The group whose members are cluster administrators (as in Kubernetes).
SYSTEM_MASTERS = "system:masters"


def hash_token(token: str) -> str:
    """The form a token is kept in: its SHA-256 hex digest."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random bearer token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


class TokenFile:
    """Hashed bearer tokens on disk; reloaded when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime = -1.0
        self._entries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _load(self) -> None:
        try:
            m = self.path.stat().st_mtime
        except FileNotFoundError:
            self._entries = {}
            return
        if m != self._mtime:
            with self.path.open() as f:
                self._entries = json.load(f)
            self._mtime = m

    def entry(self, token: str) -> dict[str, Any] | None:
        """The ``{"user", "tenant", "groups"}`` record of ``token``, or None if unknown."""
        self._load()
        return self._entries.get(hash_token(token))

    def add(self, token: str, user: str, tenant: str, groups: list[str]) -> None:
        with self._lock:
            self._load()
            self._entries[hash_token(token)] = {"user": user, "tenant": tenant, "groups": groups}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                json.dump(self._entries, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            self._mtime = -1.0
