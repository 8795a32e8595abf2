"""Who is calling: authentication of requests into an :class:`Identity`.

Bearer tokens are kept hashed (SHA-256) in ``tokens.json`` in the server's data
directory, each mapped to a user, a tenant and groups. ``centaurusctl init`` writes the
system administrator's token there and into the kubeconfig. With ``--anonymous``
(tests, or a Unix socket only reachable by root) an unauthenticated caller is the
system administrator.

The multi-tenancy layer (tenant isolation, RBAC) builds on the Identity: a request's
short path resolves to ``identity.tenant``. An Identity may also carry a ``uid`` and
``extra`` attributes (what Kubernetes' ``UserInfo`` has); impersonation
(:mod:`ctl.apiserver.impersonation`) fills them in and records who impersonates in
``impersonator``. :meth:`Authenticator.token_identity` looks a bearer token up without
any fallback (what a ``TokenReview`` asks).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from ctl.types import tokens
from ctl.types.kinds import SYSTEM_TENANT
from ctl.types.tokens import SYSTEM_MASTERS, hash_token, new_token

__all__ = [
    "ANONYMOUS_ADMIN",
    "PUBLIC_PATHS",
    "SYSTEM_MASTERS",
    "Authenticator",
    "Identity",
    "TokenFile",
    "current_identity",
    "hash_token",
    "new_token",
]

PUBLIC_PATHS = {"/healthz", "/readyz", "/livez", "/version", "/version/"}


@dataclass(frozen=True)
class Identity:
    user: str
    tenant: str
    groups: tuple[str, ...] = field(default=())
    uid: str = ""
    # Extra attributes as (key, values) pairs, sorted by key (hashable, like the rest).
    extra: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())
    # The user who impersonates this identity (empty when nobody does).
    impersonator: str = ""

    def user_info(self) -> dict[str, Any]:
        """The identity as a Kubernetes ``UserInfo`` (reviews answer it)."""
        info: dict[str, Any] = {"username": self.user, "groups": list(self.groups)}
        if self.uid:
            info["uid"] = self.uid
        extra = {k: list(v) for k, v in self.extra}
        extra.setdefault("centaurus.io/tenant", [self.tenant])
        info["extra"] = extra
        return info

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


class TokenFile(tokens.TokenFile):
    """The shared ``tokens.json`` (:mod:`ctl.types.tokens`), read into Identities."""

    def lookup(self, token: str) -> Identity | None:
        e = self.entry(token)
        if e is None:
            return None
        return Identity(e["user"], e["tenant"], tuple(e.get("groups", ())))


class Authenticator:
    def __init__(self, tokens: TokenFile | None, anonymous: bool) -> None:
        self.tokens = tokens
        self.anonymous = anonymous

    def token_identity(self, token: str) -> Identity | None:
        """Who a bearer token belongs to, or None; never the anonymous fallback."""
        return self.tokens.lookup(token) if self.tokens is not None else None

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
