"""Tenant commands: ``create tenant NAME``, ``create token USER``, ``token list|revoke``.

``create tenant NAME`` (a system administrator's command) creates the Tenant, makes
sure its virtual cluster is set up - the same idempotent steps the tenant controller
takes (:func:`ctl.tenancy.provision.ensure_tenant`), so the command does not depend on
the controller having run yet - and adds a kubeconfig context ``NAME`` (user
``NAME-admin`` with the tenant administrator's token, tenant ``NAME``) pointing at the
same API server as the current context. ``kubectl --context NAME`` and
``centaurusctl --context NAME`` then act inside the tenant.

``create token USER [--tenant T] [--role R [-n NS]]`` issues another credential through
the TokenRequest API (a tenant administrator may do this for its own tenant), binds
the ClusterRole ``R`` (``admin``, ``edit``, ``view`` or one of the tenant's own) to the
user - tenant-wide, or in namespace ``NS`` with a RoleBinding - and prints the token,
or with ``--add-context NAME`` writes it into the client config.

``token list [--tenant T]`` shows the tokens issued in a tenant (user, groups, issuer,
expiry - never the token) and ``token revoke NAME...`` revokes them (a unique prefix of
the name is enough); both go through the TokenRequest API's GET and DELETE.

``get tenants``, ``describe tenant`` and ``delete tenant`` are the generic commands.
"""

from __future__ import annotations

import base64
import sys
from typing import Any

import typer

from ctl.cli import output as o
from ctl.cli.common import ContextOpt, KubeconfigOpt, TenantOpt, connect, run, tenant_for
from ctl.cli.errors import CLIError
from ctl.client import ApiError, Client
from ctl.client import kubeconfig as kc
from ctl.tenancy.provision import ADMIN_SECRET, admin_user, ensure_tenant, issue_token
from ctl.types import columns, meta
from ctl.types.meta import parse_duration


def _write_context(
    client: Client,
    kubeconfig: str | None,
    name: str,
    user: str,
    token: str,
    tenant: str,
    namespace: str | None = None,
) -> str:
    path = kc.kubeconfig_path(kubeconfig)
    doc = kc.read_doc(path)
    cur: dict[str, Any] = next(
        (c["context"] for c in doc["contexts"] if c.get("name") == client.config.context), {}
    )
    kc.add_context(
        path,
        name,
        client.config.server,
        user,
        token=token,
        ca_pem=client.config.ca_data,
        tenant=tenant,
        namespace=namespace,
        cluster=cur.get("cluster") or "centaurus",
    )
    return str(path)


async def _create_tenant(client: Client, name: str, storage_cluster: str | None) -> str:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": name}, "spec": {}}
    if storage_cluster:
        body["spec"]["storageClusterId"] = storage_cluster
    await client.create(body)
    await ensure_tenant(client, name)
    secret = await client.get("secrets", ADMIN_SECRET, "kube-system", name)
    return base64.b64decode(secret["data"]["token"]).decode()


async def _create_token(
    client: Client,
    user: str,
    tenant: str | None,
    role: str | None,
    namespace: str | None,
    groups: list[str],
    expiration: int | None,
) -> dict[str, Any]:
    if role:  # fail before issuing anything if the role does not exist
        await client.get("clusterroles", role, tenant=tenant)
    tr = await issue_token(client, tenant, user, groups, expiration)
    if role:
        ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}
        subj = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
        kind = "RoleBinding" if namespace else "ClusterRoleBinding"
        md: dict[str, Any] = {"name": f"{user.replace(':', '-')}-{role}"[:253]}
        if namespace:
            md["namespace"] = namespace
        try:
            await client.create(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": kind,
                    "metadata": md,
                    "roleRef": ref,
                    "subjects": subj,
                },
                namespace,
                tenant,
            )
        except ApiError as e:
            if e.code != 409:
                raise
    return tr


TOKEN_PREFIX = "token-"


def _token_path(tenant: str | None) -> str:
    return "/apis/auth.centaurus.io/v1" + (f"/tenants/{tenant}" if tenant else "") + "/tokenrequests"


async def _tokens(client: Client, tenant: str | None) -> list[dict[str, Any]]:
    out: dict[str, Any] = await client.request("GET", _token_path(tenant))
    return list(out.get("items") or [])


def _duration(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(parse_duration(text))
    except ValueError as e:
        raise CLIError(str(e)) from None


def register(app: typer.Typer) -> None:
    create_app = next((g.typer_instance for g in app.registered_groups if g.name == "create"), None)
    if create_app is None:
        create_app = typer.Typer(help="Create an object from the command line.", no_args_is_help=True)
        app.add_typer(create_app, name="create")

    @create_app.command("tenant")
    def create_tenant(
        name: str,
        storage_cluster: str = typer.Option(None, "--storage-cluster", help="spec.storageClusterId"),
        no_context: bool = typer.Option(False, "--no-context", help="do not add a kubeconfig context"),
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
    ) -> None:
        """Create a tenant and a kubeconfig context NAME for its administrator."""
        err = meta.dns1123_label_error(name)
        if err:
            raise CLIError(f"invalid tenant name {name!r}: {err}")
        client = connect(kubeconfig, context)

        async def go() -> str:
            try:
                return await _create_tenant(client, name, storage_cluster)
            finally:
                await client.close()

        token = run(go())
        print(f"tenant/{name} created")
        if not no_context:
            path = _write_context(client, kubeconfig, name, admin_user(name), token, name)
            print(
                f'context "{name}" (user {admin_user(name)}, tenant {name}) added to {path}; use --context {name}'
            )

    @create_app.command("token")
    def create_token(
        user: str,
        tenant: str = TenantOpt,
        role: str = typer.Option(
            None, "--role", help="bind this ClusterRole (admin, edit, view, ...) to the user"
        ),
        namespace: str = typer.Option(None, "-n", "--namespace", help="bind --role in this namespace only"),
        group: list[str] = typer.Option([], "--group", help="add the user to this group (repeatable)"),
        expiration: str = typer.Option(
            None, "--duration", help="token lifetime, e.g. 24h (default: no expiry)"
        ),
        add_context: str = typer.Option(
            None, "--add-context", help="write the token into a kubeconfig context of this name"
        ),
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
    ) -> None:
        """Issue a bearer token for USER in a tenant (and optionally bind a role)."""
        if namespace and not role:
            raise CLIError("-n/--namespace only applies with --role")
        exp = _duration(expiration)
        client = connect(kubeconfig, context)
        t = tenant_for(client, tenant)

        async def go() -> dict[str, Any]:
            try:
                return await _create_token(client, user, t, role, namespace, group, exp)
            finally:
                await client.close()

        tr = run(go())
        token = tr["status"]["token"]
        real_tenant = tr["metadata"]["tenant"]
        if add_context:
            path = _write_context(client, kubeconfig, add_context, user, token, real_tenant, namespace)
            print(f'context "{add_context}" (user {user}, tenant {real_tenant}) added to {path}')
        else:
            print(token)

    token_app = typer.Typer(
        help="The issued bearer tokens of a tenant: list and revoke.", no_args_is_help=True
    )
    app.add_typer(token_app, name="token")

    @token_app.command("list")
    def list_tokens(
        tenant: str = TenantOpt,
        output: str = o.output_option(o.DATA_FORMATS),
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
    ) -> None:
        """List the tokens issued in a tenant (user, groups, issuer, expiry; never the token)."""
        o.check_format(output, o.DATA_FORMATS)
        client = connect(kubeconfig, context)

        async def go() -> list[dict[str, Any]]:
            try:
                return await _tokens(client, tenant_for(client, tenant))
            finally:
                await client.close()

        items = run(go())
        if output != "table":
            doc = {"apiVersion": "auth.centaurus.io/v1", "kind": "TokenRequestList", "items": items}
            sys.stdout.write(o.dump(doc, output))
            return
        if not items:
            print("No tokens found.", file=sys.stderr)
            return
        rows = []
        for t in items:
            st = t.get("status") or {}
            expires = st.get("expirationTimestamp") or "<never>"
            rows.append(
                [
                    t["metadata"]["name"][: len(TOKEN_PREFIX) + 12],
                    t["spec"]["user"],
                    ",".join(g for g in t["spec"]["groups"] if g != "system:authenticated") or "<none>",
                    st.get("issuedBy") or "",
                    expires + (" (expired)" if st.get("expired") else ""),
                    columns.age(t["metadata"].get("creationTimestamp")),
                ]
            )
        print(o.plain_table(["NAME", "USER", "GROUPS", "ISSUED-BY", "EXPIRES", "AGE"], rows))

    @token_app.command("revoke")
    def revoke_tokens(
        names: list[str] = typer.Argument(
            ..., help="token names from 'token list' (a unique prefix is enough)"
        ),
        tenant: str = TenantOpt,
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
    ) -> None:
        """Revoke issued tokens: they stop authenticating at once."""
        client = connect(kubeconfig, context)
        t = tenant_for(client, tenant)

        async def go() -> list[str]:
            try:
                known = [x["metadata"]["name"] for x in await _tokens(client, t)]
                full = []
                for n in names:
                    hits = [k for k in known if k.startswith(n)]
                    if len(hits) != 1:
                        what = "matches no token" if not hits else f"matches {len(hits)} tokens"
                        raise CLIError(
                            f"{n!r} {what} of tenant {t or 'of this context'}; see 'centaurusctl token list'"
                        )
                    full.append(hits[0])
                for n in full:
                    await client.request("DELETE", _token_path(t) + "/" + n)
                return full
            finally:
                await client.close()

        for n in run(go()):
            print(f"token {n[: len(TOKEN_PREFIX) + 12]} revoked")
