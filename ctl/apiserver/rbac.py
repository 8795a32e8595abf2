"""Role-based access control inside a tenant, evaluated from the watch cache.

Roles and bindings are the Kubernetes ``rbac.authorization.k8s.io/v1`` kinds, but
scoped as in Arktos: ClusterRole and ClusterRoleBinding belong to a tenant (they
grant across that tenant's namespaces, never beyond it), Role and RoleBinding to a
namespace of a tenant. A rule allows a request when its ``apiGroups``, ``resources``
(``pods``, ``pods/status``, ``*``), ``verbs`` (get, list, watch, create, update, patch,
delete, deletecollection, or ``*``) and, if given, ``resourceNames`` all match.

Non-resource URLs (``/metrics``, ``/debug/*``, the full OpenAPI document) are granted by
rules with ``nonResourceURLs`` and ``verbs`` (:meth:`RBAC.url_allowed`); since they show the
whole cluster, only the system tenant's roles grant them, and only to its own identities.

Subjects are ``User`` (the identity's user name), ``Group`` (any of its groups) and
``ServiceAccount`` (user ``system:serviceaccount:NS:NAME``).

:class:`RBAC` answers ``allowed(identity, tenant, verb, group, resource, namespace, name)``
from the API server's in-memory cache. The bindings of a tenant are indexed by
subject and the index is rebuilt only when a role or binding changes, so a check is
a few dictionary lookups, not a scan.

No escalation, as in Kubernetes: :class:`EscalationCheck` (an admission step) lets a user
create or update a Role or ClusterRole only with rules they hold themselves (in that
namespace, or tenant-wide for a ClusterRole) unless they may ``escalate`` it, and bind a
role only if they hold all of its rules where the binding applies unless they may ``bind``
it. A rule is held when every (group, resource, verb, name) it names is allowed by one of
the user's rules, where a ``*`` is held only by a ``*``.

The ClusterRoles every tenant gets from the tenant controller are declared in
:mod:`ctl.types.roles`: ``admin`` (everything in the tenant), ``edit`` (workloads and
their configuration, no RBAC, quotas or credentials) and ``view`` (read-only, no secrets).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ctl.apiserver import status as st
from ctl.apiserver.auth import Identity, current_identity
from ctl.apiserver.watchcache import WatchCache
from ctl.types import kinds
from ctl.types.kinds import SYSTEM_TENANT, Kind
from ctl.types.roles import RBAC_GROUP


def url_rule_allows(rule: dict[str, Any], verb: str, path: str) -> bool:
    """Whether a ``nonResourceURLs`` rule allows ``verb`` (get, post...) on ``path``.

    As in Kubernetes: ``*`` matches every path, a pattern ending in ``*`` matches by prefix
    (``/debug/*``), anything else matches exactly.
    """
    verbs = rule.get("verbs") or []
    if "*" not in verbs and verb not in verbs:
        return False
    for pattern in rule.get("nonResourceURLs") or []:
        if not isinstance(pattern, str):
            continue
        if pattern == "*" or pattern == path or (pattern.endswith("*") and path.startswith(pattern[:-1])):
            return True
    return False


def rule_allows(rule: dict[str, Any], verb: str, group: str, resource: str, name: str | None) -> bool:
    groups = rule.get("apiGroups") or []
    if "*" not in groups and group not in groups:
        return False
    verbs = rule.get("verbs") or []
    if "*" not in verbs and verb not in verbs:
        return False
    resources = rule.get("resources") or []
    if "*" not in resources and resource not in resources:
        base, _, sub = resource.partition("/")
        if not sub or (f"{base}/*" not in resources and f"*/{sub}" not in resources):
            return False
    names = rule.get("resourceNames") or []
    if names and (name is None or name not in names):
        return False
    return True


@dataclass
class _TenantIndex:
    # subject key ("User:alice", "Group:g") -> list of (namespace or None, role ref (kind, name, ns))
    grants: dict[str, list[tuple[str | None, tuple[str, str, str]]]]
    roles: dict[tuple[str, str, str], list[dict[str, Any]]]  # (kind, name, ns) -> rules


class RBAC:
    def __init__(self, cache: WatchCache) -> None:
        self.cache = cache
        self._kinds = [
            kinds.by_resource(f"{RBAC_GROUP}/v1", p)
            for p in ("roles", "rolebindings", "clusterroles", "clusterrolebindings")
        ]
        self._index: dict[str, _TenantIndex] = {}
        self._stamp: tuple[int, ...] = ()

    def _current_stamp(self) -> tuple[int, ...]:
        out = []
        for k in self._kinds:
            assert k is not None
            c = self.cache.cache(k)
            out += [c.events[-1].revision if c.events else 0, c.window_start, len(c.objects)]
        return tuple(out)

    def _tenant_index(self, tenant: str) -> _TenantIndex:
        stamp = self._current_stamp()
        if stamp != self._stamp:
            self._index.clear()
            self._stamp = stamp
        idx = self._index.get(tenant)
        if idx is None:
            idx = self._build(tenant)
            self._index[tenant] = idx
        return idx

    def _build(self, tenant: str) -> _TenantIndex:
        roles_k, rb_k, cr_k, crb_k = self._kinds
        assert roles_k and rb_k and cr_k and crb_k
        roles: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for o in self.cache.list(roles_k, roles_k.prefix(tenant)):
            md = o["metadata"]
            roles[("Role", md["name"], md.get("namespace") or "")] = list(o.get("rules") or [])
        for o in self.cache.list(cr_k, cr_k.prefix(tenant)):
            roles[("ClusterRole", o["metadata"]["name"], "")] = list(o.get("rules") or [])
        grants: dict[str, list[tuple[str | None, tuple[str, str, str]]]] = defaultdict(list)
        for k, namespaced in ((crb_k, False), (rb_k, True)):
            for o in self.cache.list(k, k.prefix(tenant)):
                ns = o["metadata"].get("namespace") if namespaced else None
                ref = o.get("roleRef") or {}
                rkind = ref.get("kind", "ClusterRole")
                if not namespaced and rkind != "ClusterRole":
                    continue
                target = (rkind, ref.get("name", ""), ns or "" if rkind == "Role" else "")
                for s in o.get("subjects") or []:
                    skind = s.get("kind")
                    if skind == "ServiceAccount":
                        key = f"User:system:serviceaccount:{s.get('namespace') or ns or 'default'}:{s.get('name')}"
                    elif skind in ("User", "Group"):
                        key = f"{skind}:{s.get('name')}"
                    else:
                        continue
                    grants[key].append((ns, target))
        return _TenantIndex(dict(grants), roles)

    def allowed(
        self,
        ident: Identity,
        tenant: str,
        verb: str,
        group: str,
        resource: str,
        namespace: str | None,
        name: str | None,
    ) -> bool:
        """Whether the tenant's roles let ``ident`` do ``verb`` on ``resource`` (in ``namespace``)."""
        return any(rule_allows(r, verb, group, resource, name) for r in self.rules(ident, tenant, namespace))

    def rules(self, ident: Identity, tenant: str, namespace: str | None) -> Iterator[dict[str, Any]]:
        """Every rule granted to ``ident`` that applies in ``namespace`` (None: tenant-wide only)."""
        idx = self._tenant_index(tenant)
        for key in (f"User:{ident.user}", *(f"Group:{g}" for g in ident.groups)):
            for ns, ref in idx.grants.get(key, ()):
                if ns is None or ns == namespace:
                    yield from idx.roles.get(ref, ())

    def url_allowed(self, ident: Identity, verb: str, path: str) -> bool:
        """Whether ``ident`` may ``verb`` the non-resource URL ``path`` (``/metrics``, ``/debug/...``).

        These URLs show the whole cluster, so only the system tenant's ClusterRoles can grant
        them, and only to the system tenant's identities; ``system:masters`` holds them all.
        """
        if ident.is_cluster_admin:
            return True
        if not ident.is_system:
            return False
        return any(url_rule_allows(r, verb, path) for r in self.rules(ident, SYSTEM_TENANT, None))

    def role_rules(self, tenant: str, ref: tuple[str, str, str]) -> list[dict[str, Any]] | None:
        """The rules of a role (kind, name, namespace); None when it does not exist."""
        return self._tenant_index(tenant).roles.get(ref)


def missing_rules(held: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> list[str]:
    """The parts of ``wanted`` that ``held`` does not cover, as ``verb group/resource[/name]``."""
    out: list[str] = []
    for rule in wanted:
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                for verb in rule.get("verbs") or []:
                    for name in rule.get("resourceNames") or [None]:
                        if not any(rule_allows(h, verb, group, resource, name) for h in held):
                            what = f"{group}/{resource}" if group else resource
                            out.append(f"{verb} {what}" + (f" {name!r}" if name else ""))
        for url in rule.get("nonResourceURLs") or []:
            for verb in rule.get("verbs") or []:
                if not any(url_rule_allows(h, verb, str(url)) for h in held):
                    out.append(f"{verb} {url}")
    return out


def _listing(missing: list[str], most: int = 10) -> str:
    more = f" (and {len(missing) - most} more)" if len(missing) > most else ""
    return "; ".join(missing[:most]) + more


def _check_nonresource_scope(kind: Kind, md: dict[str, Any], rules: list[Any]) -> None:
    """``nonResourceURLs`` only in ClusterRoles (as Kubernetes validates) and only in the system tenant.

    Elsewhere they could never take effect (:meth:`RBAC.url_allowed`), so they are refused
    rather than stored as a grant that silently does nothing.
    """
    if not any(isinstance(r, dict) and r.get("nonResourceURLs") for r in rules):
        return
    name = md.get("name") or ""
    if kind.kind != "ClusterRole":
        raise st.APIError(
            422,
            f'{kind.kind} "{name}" is invalid: rules.nonResourceURLs: Invalid value: namespaced rules cannot '
            "apply to non-resource URLs",
            "Invalid",
        )
    tenant = md.get("tenant") or SYSTEM_TENANT
    if tenant != SYSTEM_TENANT:
        raise st.forbidden(
            f'clusterroles.{RBAC_GROUP} "{name}" is forbidden: nonResourceURLs (such as /metrics) show the '
            f'whole cluster and can be granted only in the system tenant, not in tenant "{tenant}"'
        )


class EscalationCheck:
    """Admission: no RBAC object may grant more than its author holds (module docstring)."""

    ROLE_KINDS = {"Role": "roles", "ClusterRole": "clusterroles"}
    BINDING_KINDS = {"RoleBinding", "ClusterRoleBinding"}

    def __init__(self, rbac: RBAC) -> None:
        self.rbac = rbac

    async def __call__(self, verb: str, kind: Kind, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        if verb not in ("create", "update") or kind.group != RBAC_GROUP:
            return
        md = obj.get("metadata") or {}
        if kind.kind in self.ROLE_KINDS:
            _check_nonresource_scope(kind, md, list(obj.get("rules") or []))
        ident = current_identity.get()
        if ident is None or ident.is_cluster_admin:
            return
        tenant = SYSTEM_TENANT if ident.is_system else ident.tenant
        namespace = md.get("namespace") or None
        name = md.get("name") or ""
        if kind.kind in self.ROLE_KINDS:
            self._check_role(ident, tenant, kind, namespace, name, list(obj.get("rules") or []))
        elif kind.kind in self.BINDING_KINDS:
            role_tenant = md.get("tenant") or tenant  # the role bound lives with the binding
            self._check_binding(ident, tenant, role_tenant, kind, namespace, name, obj.get("roleRef") or {})

    def _allowed(
        self, ident: Identity, tenant: str, verb: str, resource: str, namespace: str | None, name: str
    ) -> bool:
        return self.rbac.allowed(ident, tenant, verb, RBAC_GROUP, resource, namespace, name)

    def _check_role(
        self,
        ident: Identity,
        tenant: str,
        kind: Kind,
        namespace: str | None,
        name: str,
        rules: list[dict[str, Any]],
    ) -> None:
        missing = missing_rules(list(self.rbac.rules(ident, tenant, namespace)), rules)
        if not missing or self._allowed(ident, tenant, "escalate", kind.plural, namespace, name):
            return
        raise st.forbidden(
            f'{kind.plural}.{RBAC_GROUP} "{name}" is forbidden: user "{ident.user}" is attempting to grant '
            f"RBAC permissions not currently held: {_listing(missing)}"
        )

    def _check_binding(
        self,
        ident: Identity,
        tenant: str,
        role_tenant: str,
        kind: Kind,
        namespace: str | None,
        name: str,
        ref: dict[str, Any],
    ) -> None:
        rkind = ref.get("kind") or "ClusterRole"
        rname = str(ref.get("name") or "")
        resource = self.ROLE_KINDS.get(rkind)
        if resource is None:
            return  # validation reports an unknown roleRef kind
        if self._allowed(ident, tenant, "bind", resource, namespace, rname):
            return
        rules = self.rbac.role_rules(role_tenant, (rkind, rname, namespace or "" if rkind == "Role" else ""))
        prefix = f'{kind.plural}.{RBAC_GROUP} "{name}" is forbidden: user "{ident.user}"'
        if rules is None:
            raise st.forbidden(
                f'{prefix} may not bind {rkind} "{rname}": it does not exist, and binding a role that '
                f"does not exist yet needs the bind permission on it"
            )
        missing = missing_rules(list(self.rbac.rules(ident, tenant, namespace)), rules)
        if missing:
            raise st.forbidden(
                f'{prefix} is attempting to grant RBAC permissions not currently held by binding {rkind} "{rname}": '
                + _listing(missing)
            )
