"""Client configuration: kubeconfig files, read and written.

Centaurus uses the standard kubeconfig format so that kubectl and the official
client libraries work with the file ``centaurusctl init`` writes. Two additions ride in
fields kubectl ignores: a context's tenant (``extensions`` entry
``centaurus.io/tenant``) and ``unix://`` server URLs (our own client only).

Resolution order for the file: ``--kubeconfig``, ``$KUBECONFIG`` (first path), then
``$CENTAURUS_DATA_DIR/kubeconfig`` or ``~/.centaurus/kubeconfig``.
"""

from __future__ import annotations

import base64
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TENANT_EXT = "centaurus.io/tenant"


class ConfigError(Exception):
    pass


def default_data_dir() -> Path:
    return Path(os.environ.get("CENTAURUS_DATA_DIR") or Path.home() / ".centaurus")


def kubeconfig_path(explicit: str | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0])
    return default_data_dir() / "kubeconfig"


@dataclass
class ClientConfig:
    server: str
    token: str | None = None
    ca_data: bytes | None = None
    cert_data: bytes | None = None
    key_data: bytes | None = None
    insecure: bool = False
    namespace: str = "default"
    tenant: str | None = None
    context: str = ""
    user: str = ""


def load(path: str | Path | None = None, context: str | None = None) -> ClientConfig:
    p = kubeconfig_path(str(path) if path else None)
    try:
        doc = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"no client config at {p}: run 'centaurusctl init' first, or pass --kubeconfig / set KUBECONFIG"
        ) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{p} is not valid YAML: {e}") from None
    return from_dict(doc or {}, context, str(p))


def _named(items: list[dict[str, Any]] | None, name: str, what: str, src: str) -> dict[str, Any]:
    for it in items or []:
        if it.get("name") == name:
            return it.get(what) or {}
    raise ConfigError(f"{src}: no {what} named {name!r}")


def _data(d: dict[str, Any], key: str) -> bytes | None:
    if d.get(key + "-data"):
        return base64.b64decode(d[key + "-data"])
    if d.get(key):
        return Path(d[key]).read_bytes()
    return None


def from_dict(doc: dict[str, Any], context: str | None = None, src: str = "kubeconfig") -> ClientConfig:
    ctx_name = context or doc.get("current-context")
    if not ctx_name:
        raise ConfigError(f"{src}: no current-context set; use 'centaurusctl config use-context NAME'")
    ctx = _named(doc.get("contexts"), ctx_name, "context", src)
    cluster = _named(doc.get("clusters"), ctx.get("cluster", ""), "cluster", src)
    user = _named(doc.get("users"), ctx.get("user", ""), "user", src) if ctx.get("user") else {}
    tenant = None
    for ext in ctx.get("extensions") or []:
        if ext.get("name") == TENANT_EXT:
            tenant = (ext.get("extension") or {}).get("tenant")
    server = cluster.get("server")
    if not server:
        raise ConfigError(f"{src}: cluster {ctx.get('cluster')!r} has no server")
    return ClientConfig(
        server=server.rstrip("/"),
        token=user.get("token"),
        ca_data=_data(cluster, "certificate-authority"),
        cert_data=_data(user, "client-certificate"),
        key_data=_data(user, "client-key"),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        namespace=ctx.get("namespace") or "default",
        tenant=tenant,
        context=ctx_name,
        user=ctx.get("user", ""),
    )


def read_doc(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        doc = {}
    doc.setdefault("apiVersion", "v1")
    doc.setdefault("kind", "Config")
    for k in ("clusters", "contexts", "users"):
        doc.setdefault(k, [])
    return doc


def _upsert(items: list[dict[str, Any]], name: str, key: str, value: dict[str, Any]) -> None:
    for it in items:
        if it.get("name") == name:
            it[key] = value
            return
    items.append({"name": name, key: value})


def add_context(
    path: Path,
    name: str,
    server: str,
    user: str,
    token: str | None = None,
    ca_pem: bytes | None = None,
    tenant: str | None = None,
    namespace: str | None = None,
    cluster: str = "centaurus",
    make_current: bool = False,
) -> None:
    doc = read_doc(path)
    cl: dict[str, Any] = {"server": server}
    if ca_pem:
        cl["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    _upsert(doc["clusters"], cluster, "cluster", cl)
    u: dict[str, Any] = {}
    if token:
        u["token"] = token
    _upsert(doc["users"], user, "user", u)
    ctx: dict[str, Any] = {"cluster": cluster, "user": user}
    if namespace:
        ctx["namespace"] = namespace
    if tenant:
        ctx["extensions"] = [{"name": TENANT_EXT, "extension": {"tenant": tenant}}]
    _upsert(doc["contexts"], name, "context", ctx)
    if make_current or not doc.get("current-context"):
        doc["current-context"] = name
    write_doc(path, doc)


def write_doc(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".kubeconfig")
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
