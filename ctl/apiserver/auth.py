"""Who is calling: authentication of requests into an :class:`Identity`.

Bearer tokens are kept hashed (SHA-256) in ``tokens.json`` in the server's data
directory, each mapped to a user, a tenant and groups. ``centaurusctl init`` writes the
system administrator's token there and into the kubeconfig. With ``--anonymous``
(tests, or a Unix socket only reachable by root) an unauthenticated caller is the
system administrator.

The multi-tenancy layer (tenant isolation, RBAC) builds on the Identity: a request's
short path resolves to ``identity.tenant``.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctl.types.kinds import SYSTEM_TENANT

PUBLIC_PATHS = {"/healthz", "/readyz", "/livez", "/version", "/version/"}
SYSTEM_MASTERS = "system:masters"


@dataclass(frozen=True)
class Identity:
    user: str
    tenant: str
    groups: tuple[str, ...] = field(default=())

    @property
    def is_system(self) -> bool:
        return self.tenant == SYSTEM_TENANT

    @property
    def is_cluster_admin(self) -> bool:
        return self.is_system and SYSTEM_MASTERS in self.groups


# The identity of the request being served (set by the API server's middleware), for
# admission steps that depend on who asks, such as RBAC's escalation check.
current_identity: ContextVar[Identity | None] = ContextVar("current_identity", default=None)

ANONYMOUS_ADMIN = Identity("system:admin", SYSTEM_TENANT, (SYSTEM_MASTERS, "system:authenticated"))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
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

    def lookup(self, token: str) -> Identity | None:
        self._load()
        e = self._entries.get(hash_token(token))
        if e is None:
            return None
        return Identity(e["user"], e["tenant"], tuple(e.get("groups", ())))

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


class Authenticator:
    def __init__(self, tokens: TokenFile | None, anonymous: bool) -> None:
        self.tokens = tokens
        self.anonymous = anonymous

    def authenticate(self, headers: Any, peercert: dict[str, Any] | None = None) -> Identity | None:
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer ") and self.tokens is not None:
            ident = self.tokens.lookup(auth[7:].strip())
            if ident is not None:
                return ident
            return None
        if peercert:
            cn, orgs = "", []
            for rdn in peercert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        cn = v
                    elif k == "organizationName":
                        orgs.append(v)
            tenant = next((o.split(":", 1)[1] for o in orgs if o.startswith("tenant:")), SYSTEM_TENANT)
            groups = tuple(o for o in orgs if not o.startswith("tenant:"))
            if cn:
                return Identity(cn, tenant, groups)
        if self.anonymous:
            return ANONYMOUS_ADMIN
        return None
