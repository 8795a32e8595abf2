"""Impersonation: ``Impersonate-User``/``-Group``/``-Uid``/``-Extra-*`` headers, as Kubernetes honours them.

``kubectl --as=alice --as-group=devs`` (and every client library) sends these headers to
run a request as someone else. The API server's middleware authenticates the caller,
then hands the identity to :attr:`ctl.apiserver.app.APIServer.impersonate`; the request
is served, authorized and admitted as the identity that function returns.

Without an RBAC layer installed the server refuses impersonation outright
(:func:`refuse`): silently ignoring the headers would run the request as the caller,
which a client that meant to *drop* privileges would never notice.

With RBAC (:class:`Impersonator`, installed by :func:`ctl.apiserver.tenancy.install`),
each requested attribute needs the ``impersonate`` verb, checked for the *caller* as
kube-apiserver checks it:

* the user: ``users`` (group ``""``) named the user, or, for
  ``system:serviceaccount:NS:NAME``, ``serviceaccounts`` named NAME in namespace NS;
* each group: ``groups`` (group ``""``) named the group;
* the uid: ``uids`` in group ``authentication.k8s.io`` named the uid;
* each extra value: ``userextras/KEY`` in group ``authentication.k8s.io`` named the value.

Any denial is a 403 naming what was refused; groups, a uid or extras without a user are a
400. The impersonated identity gets the requested groups plus ``system:authenticated``
(and, for a service account, ``system:serviceaccounts`` and
``system:serviceaccounts:NS``), the uid and extras, and remembers the impersonator.

Tenants: the impersonated identity lives in the caller's tenant. Only a caller of the
system tenant may name another tenant, with the extra ``centaurus.io/tenant``
(``Impersonate-Extra-Centaurus.io%2Ftenant: acme``, or ``as-user-extra`` in a kubeconfig);
a tenant's caller naming any other tenant gets 403, so a tenant administrator can never
act as another tenant's user. RBAC for the check is the caller's tenant's (the system
tenant's for system callers, whose roles apply to every tenant); the cluster administrator
(``system:masters`` in the system tenant) may impersonate anyone.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote

from ctl.apiserver import status as st
from ctl.apiserver.auth import Identity
from ctl.types.kinds import SYSTEM_TENANT

log = logging.getLogger("centaurus.apiserver")

USER_HEADER = "Impersonate-User"
GROUP_HEADER = "Impersonate-Group"
UID_HEADER = "Impersonate-Uid"
EXTRA_PREFIX = "impersonate-extra-"
TENANT_EXTRA = "centaurus.io/tenant"
AUTH_GROUP = "authentication.k8s.io"
SA_PREFIX = "system:serviceaccount:"


def _requested(headers: Any) -> tuple[str, list[str], str, dict[str, list[str]]]:
    """(user, groups, uid, extra) the headers ask for (empty when absent)."""
    user = headers.get(USER_HEADER, "")
    groups = [g for g in headers.getall(GROUP_HEADER, []) if g] if hasattr(headers, "getall") else []
    if not groups and headers.get(GROUP_HEADER):
        groups = [headers[GROUP_HEADER]]
    uid = headers.get(UID_HEADER, "")
    extra: dict[str, list[str]] = {}
    for name in headers:
        if name.lower().startswith(EXTRA_PREFIX):
            key = unquote(name[len(EXTRA_PREFIX) :]).lower()
            values = headers.getall(name, []) if hasattr(headers, "getall") else [headers[name]]
            extra.setdefault(key, [])
            extra[key] += [v for v in values if v not in extra[key]]
    return user, groups, uid, extra


def wants_impersonation(headers: Any) -> bool:
    """Whether a request carries any impersonation header."""
    return any(h.lower().startswith("impersonate-") for h in headers)


def refuse(headers: Any, ident: Identity) -> Identity:
    """The default: no authorizer can judge impersonation, so any attempt is 403."""
    if wants_impersonation(headers):
        raise st.forbidden(
            f'User "{ident.user}" cannot impersonate: impersonation is not enabled on this server'
        )
    return ident


class Impersonator:
    """Impersonation judged by RBAC (see the module docstring)."""

    def __init__(self, rbac: Any) -> None:
        self.rbac = rbac

    def _check(
        self, ident: Identity, group: str, resource: str, name: str, namespace: str | None = None
    ) -> None:
        if ident.is_cluster_admin:
            return
        tenant = SYSTEM_TENANT if ident.is_system else ident.tenant
        if self.rbac.allowed(ident, tenant, "impersonate", group, resource, namespace, name):
            return
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        what = resource.split("/", 1)[0] + (f".{group}" if group else "")
        raise st.forbidden(
            f'{what} "{name}" is forbidden: User "{ident.user}" cannot impersonate resource '
            f'"{resource}" in API group "{group}"{where}'
        )

    def __call__(self, headers: Any, ident: Identity) -> Identity:
        if not wants_impersonation(headers):
            return ident
        user, groups, uid, extra = _requested(headers)
        if not user:
            raise st.bad_request(
                "requested impersonation of groups, a uid or extra attributes without impersonating a user "
                f"(set the {USER_HEADER} header, kubectl --as)"
            )
        if user.startswith(SA_PREFIX) and user.count(":") == 3:
            ns, name = user[len(SA_PREFIX) :].split(":", 1)
            self._check(ident, "", "serviceaccounts", name, ns)
            implied = ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]
        else:
            self._check(ident, "", "users", user)
            implied = []
        for g in groups:
            self._check(ident, "", "groups", g)
        if uid:
            self._check(ident, AUTH_GROUP, "uids", uid)
        tenant = ident.tenant
        for key, values in extra.items():
            if key == TENANT_EXTRA:
                if len(values) != 1:
                    raise st.bad_request(f"the extra {TENANT_EXTRA} names exactly one tenant")
                if values[0] != ident.tenant and not ident.is_system:
                    raise st.forbidden(
                        f'users "{user}" is forbidden: User "{ident.user}" of tenant "{ident.tenant}" cannot '
                        f'impersonate users of tenant "{values[0]}"'
                    )
                tenant = values[0]
            for v in values:
                self._check(ident, AUTH_GROUP, f"userextras/{key}", v)
        all_groups = [*groups, *(g for g in implied if g not in groups)]
        if user != "system:anonymous" and "system:authenticated" not in all_groups:
            all_groups.append("system:authenticated")
        log.info(
            "%s (tenant %s) impersonates %s (tenant %s, groups %s)",
            ident.user,
            ident.tenant,
            user,
            tenant,
            ",".join(all_groups),
        )
        return Identity(
            user,
            tenant,
            tuple(all_groups),
            uid=uid,
            extra=tuple(sorted((k, tuple(v)) for k, v in extra.items())),
            impersonator=ident.user,
        )


def install(server: Any) -> None:
    """Judge impersonation with the server's RBAC (``server.rbac``, from the tenancy layer)."""
    server.impersonate = Impersonator(server.rbac)


__all__ = ["Impersonator", "install", "refuse", "wants_impersonation"]
