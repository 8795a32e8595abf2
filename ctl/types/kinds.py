"""The kinds the API serves, declared once.

Each :class:`Kind` names its group/version, resource (plural), singular and short
names and scope. Scope is one of:

* ``cluster``   - one object per cluster (Node, Tenant): ``/api/v1/nodes/NAME``
* ``tenant``    - one per tenant (Namespace, Network, ClusterRole ...):
  ``/api/v1/tenants/T/namespaces/NAME``
* ``namespace`` - one per namespace of a tenant (Pod, Deployment ...):
  ``/api/v1/tenants/T/namespaces/NS/pods/NAME``

Store keys leave out the segments a scope does not have:
``/registry/{resource}/{name}``, ``/registry/{resource}/{tenant}/{name}`` and
``/registry/{resource}/{tenant}/{namespace}/{name}``.

Adding a kind is one :func:`declare` call here plus, if it needs one, a validator
in :mod:`ctl.types.validation`.
"""

from __future__ import annotations

from dataclasses import dataclass

CLUSTER, TENANT, NAMESPACE = "cluster", "tenant", "namespace"
SYSTEM_TENANT = "system"
# Where node agents keep their heartbeat Leases (as in Kubernetes).
NODE_LEASE_NAMESPACE = "kube-node-lease"
# The namespaces every tenant starts with.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", NODE_LEASE_NAMESPACE)


@dataclass(frozen=True)
class Kind:
    kind: str
    group: str
    version: str
    plural: str
    singular: str
    scope: str
    short: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ("status",)
    verbs: tuple[str, ...] = (
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    )
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def namespaced(self) -> bool:
        return self.scope == NAMESPACE

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def key(self, tenant: str, namespace: str, name: str) -> str:
        if self.scope == CLUSTER:
            return f"/registry/{self.plural}/{name}"
        if self.scope == TENANT:
            return f"/registry/{self.plural}/{tenant}/{name}"
        return f"/registry/{self.plural}/{tenant}/{namespace}/{name}"

    def prefix(self, tenant: str | None = None, namespace: str | None = None) -> str:
        """Store prefix for a list: all, one tenant, or one namespace of a tenant."""
        p = f"/registry/{self.plural}/"
        if self.scope == CLUSTER or tenant is None:
            return p
        p += tenant + "/"
        if self.scope == NAMESPACE and namespace is not None:
            p += namespace + "/"
        return p


KINDS: list[Kind] = []
_BY_RESOURCE: dict[tuple[str, str], Kind] = {}
_BY_KIND: dict[tuple[str, str], Kind] = {}
_ALIASES: dict[str, Kind] = {}


def declare(kind: Kind) -> Kind:
    KINDS.append(kind)
    _BY_RESOURCE[(kind.api_version, kind.plural)] = kind
    _BY_KIND[(kind.api_version, kind.kind)] = kind
    for alias in (kind.plural, kind.singular, kind.kind.lower(), *kind.short):
        _ALIASES.setdefault(alias, kind)
        if kind.group:
            _ALIASES.setdefault(f"{alias}.{kind.group}", kind)
    return kind


def by_resource(api_version: str, plural: str) -> Kind | None:
    return _BY_RESOURCE.get((api_version, plural))


def by_kind(api_version: str, kind: str) -> Kind | None:
    return _BY_KIND.get((api_version, kind))


def resolve(name: str) -> Kind | None:
    """Kind from a user's word: plural, singular, short name, Kind, or ``plural.group``."""
    return _ALIASES.get(name.lower())


def groups() -> dict[str, list[str]]:
    """group -> versions ("" is the core group)."""
    out: dict[str, list[str]] = {}
    for k in KINDS:
        vs = out.setdefault(k.group, [])
        if k.version not in vs:
            vs.append(k.version)
    return out


_ALL = ("all",)
declare(Kind("Tenant", "", "v1", "tenants", "tenant", CLUSTER, ("te",), subresources=("status",)))
declare(
    Kind(
        "Namespace", "", "v1", "namespaces", "namespace", TENANT, ("ns",), subresources=("status", "finalize")
    )
)
declare(Kind("Node", "", "v1", "nodes", "node", CLUSTER, ("no",)))
declare(
    Kind(
        "Pod",
        "",
        "v1",
        "pods",
        "pod",
        NAMESPACE,
        ("po",),
        subresources=("status", "binding", "log", "exec", "attach", "portforward", "action", "eviction"),
        categories=_ALL,
    )
)
declare(Kind("Event", "", "v1", "events", "event", NAMESPACE, ("ev",), subresources=()))
declare(Kind("ConfigMap", "", "v1", "configmaps", "configmap", NAMESPACE, ("cm",), subresources=()))
declare(Kind("Secret", "", "v1", "secrets", "secret", NAMESPACE, (), subresources=()))
declare(
    Kind("ServiceAccount", "", "v1", "serviceaccounts", "serviceaccount", NAMESPACE, ("sa",), subresources=())
)
declare(Kind("Action", "", "v1", "actions", "action", NAMESPACE, ()))
declare(Kind("ResourceQuota", "", "v1", "resourcequotas", "resourcequota", NAMESPACE, ("quota",)))
declare(
    Kind(
        "ReplicaSet",
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        NAMESPACE,
        ("rs",),
        ("status", "scale"),
        categories=_ALL,
    )
)
declare(
    Kind(
        "Deployment",
        "apps",
        "v1",
        "deployments",
        "deployment",
        NAMESPACE,
        ("deploy",),
        ("status", "scale"),
        categories=_ALL,
    )
)
# batch/v1 (issue #14): run-to-completion pods and their schedules (ctl/controllers/job.py, cronjob.py).
declare(Kind("Job", "batch", "v1", "jobs", "job", NAMESPACE, (), categories=_ALL))
declare(Kind("CronJob", "batch", "v1", "cronjobs", "cronjob", NAMESPACE, ("cj",), categories=_ALL))
# DaemonSet, StatefulSet and their ControllerRevision history (issue #14); the
# PersistentVolumeClaim a StatefulSet's volumeClaimTemplates create, unless the storage
# kinds declared it already.
declare(Kind("DaemonSet", "apps", "v1", "daemonsets", "daemonset", NAMESPACE, ("ds",), categories=_ALL))
declare(
    Kind(
        "StatefulSet",
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        NAMESPACE,
        ("sts",),
        ("status", "scale"),
        categories=_ALL,
    )
)
declare(
    Kind("ControllerRevision", "apps", "v1", "controllerrevisions", "controllerrevision", NAMESPACE, (), ())
)
if by_kind("v1", "PersistentVolumeClaim") is None:
    declare(
        Kind(
            "PersistentVolumeClaim",
            "",
            "v1",
            "persistentvolumeclaims",
            "persistentvolumeclaim",
            NAMESPACE,
            ("pvc",),
        )
    )
declare(Kind("Lease", "coordination.k8s.io", "v1", "leases", "lease", NAMESPACE, (), subresources=()))
_RBAC = "rbac.authorization.k8s.io"
declare(Kind("Role", _RBAC, "v1", "roles", "role", NAMESPACE, (), subresources=()))
declare(Kind("RoleBinding", _RBAC, "v1", "rolebindings", "rolebinding", NAMESPACE, (), subresources=()))
declare(Kind("ClusterRole", _RBAC, "v1", "clusterroles", "clusterrole", TENANT, (), subresources=()))
declare(
    Kind(
        "ClusterRoleBinding",
        _RBAC,
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        TENANT,
        (),
        subresources=(),
    )
)
declare(
    Kind(
        "PodDisruptionBudget",
        "policy",
        "v1",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        NAMESPACE,
        ("pdb",),
    )
)
# The network kinds (issue #18, DESIGN.md §7): the operator (ctl/network) writes their
# status through the status subresource. The Mizar Endpoint's short name is ``mep``:
# ``ep`` stays the core v1 Endpoints' short name.
_NET = ("network",)
declare(
    Kind("Network", "arktos.centaurus.io", "v1", "networks", "network", TENANT, ("net",), categories=_NET)
)
_MIZAR = "mizar.centaurus.io"
declare(Kind("VPC", _MIZAR, "v1", "vpcs", "vpc", TENANT, (), categories=_NET))
declare(Kind("Subnet", _MIZAR, "v1", "subnets", "subnet", TENANT, ("sn",), categories=_NET))
declare(Kind("Endpoint", _MIZAR, "v1", "endpoints", "endpoint", NAMESPACE, ("mep",), categories=_NET))
declare(Kind("Droplet", _MIZAR, "v1", "droplets", "droplet", CLUSTER, ("drop",), categories=_NET))
declare(Kind("Bouncer", _MIZAR, "v1", "bouncers", "bouncer", TENANT, ("bnc",), categories=_NET))
declare(Kind("Divider", _MIZAR, "v1", "dividers", "divider", TENANT, ("div",), categories=_NET))

# Kinds that are questions, not stored objects (access and token reviews): a create is
# answered at once by ctl.apiserver.reviews and nothing is stored, so they stay out of
# KINDS (nothing lists, watches, caches or garbage-collects them); discovery shows them.
VIRTUAL_KINDS: list[Kind] = []


def declare_virtual(kind: Kind) -> Kind:
    VIRTUAL_KINDS.append(kind)
    return kind


_AUTHZ, _AUTHN, _CREATE = "authorization.k8s.io", "authentication.k8s.io", ("create",)
for _kind, _group in (
    ("SelfSubjectAccessReview", _AUTHZ),
    ("SelfSubjectRulesReview", _AUTHZ),
    ("SubjectAccessReview", _AUTHZ),
    ("SelfSubjectReview", _AUTHN),
    ("TokenReview", _AUTHN),
):
    declare_virtual(
        Kind(_kind, _group, "v1", _kind.lower() + "s", _kind.lower(), CLUSTER, subresources=(), verbs=_CREATE)
    )

# The resource metrics API (kubectl top): read-only views the API server computes from the
# node agents' summaries (ctl.apiserver.metrics_api); nothing is stored.
METRICS_GROUP, METRICS_VERSION = "metrics.k8s.io", "v1beta1"
NODE_METRICS = declare_virtual(
    Kind(
        "NodeMetrics",
        METRICS_GROUP,
        METRICS_VERSION,
        "nodes",
        "",
        CLUSTER,
        subresources=(),
        verbs=("get", "list"),
    )
)
POD_METRICS = declare_virtual(
    Kind(
        "PodMetrics",
        METRICS_GROUP,
        METRICS_VERSION,
        "pods",
        "",
        NAMESPACE,
        subresources=(),
        verbs=("get", "list"),
    )
)
