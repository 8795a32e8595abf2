"""Schemas of the RBAC kinds (rbac.authorization.k8s.io/v1): Role, ClusterRole and their bindings.

As in Arktos, ClusterRole and ClusterRoleBinding are tenant-scoped: "cluster" means the tenant.
"""

from __future__ import annotations

from ctl.types.schema.build import array, define, free_object, obj, resource, string, strings

R = "io.k8s.api.rbac.v1."

POLICY_RULE = define(
    R + "PolicyRule",
    obj(
        {
            "verbs": strings("Verbs allowed (get, list, watch, create, update, patch, delete, ... or *)."),
            "apiGroups": strings('API groups of the resources ("" is the core group).'),
            "resources": strings("Resources (pods, pods/log, ... or *)."),
            "resourceNames": strings("Names the rule is limited to."),
            "nonResourceURLs": strings("Non-resource paths (/metrics, /healthz ...)."),
        },
        required=["verbs"],
        description="One grant: verbs on resources.",
    ),
)

SUBJECT = define(
    R + "Subject",
    obj(
        {
            "kind": string("User, Group or ServiceAccount."),
            "apiGroup": string(),
            "name": string(),
            "namespace": string(),
        },
        required=["kind", "name"],
    ),
)

ROLE_REF = define(
    R + "RoleRef",
    obj({"apiGroup": string(), "kind": string(), "name": string()}, required=["kind", "name"]),
)

resource(
    R + "Role", "rbac.authorization.k8s.io/v1", "Role", {"rules": array(POLICY_RULE)}, "Rules in a namespace."
)
resource(
    R + "ClusterRole",
    "rbac.authorization.k8s.io/v1",
    "ClusterRole",
    {"rules": array(POLICY_RULE), "aggregationRule": free_object()},
    "Rules across a tenant.",
)
for _kind, _what in (("RoleBinding", "in a namespace"), ("ClusterRoleBinding", "across a tenant")):
    resource(
        R + _kind,
        "rbac.authorization.k8s.io/v1",
        _kind,
        {"subjects": array(SUBJECT), "roleRef": ROLE_REF},
        f"Grants a role's rules to subjects {_what}.",
        required=["roleRef"],
    )
