"""HTTPS with the cluster CA, client certificates carrying the tenant, kubectl / the official client, and the CLI.

One API server serves TLS with a CA made by :mod:`ctl.cluster.pki`, as ``centaurusctl
init`` runs it; kubeconfigs carry ``certificate-authority-data``. The tenant commands
of the CLI run as real subprocesses against it.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctl.apiserver.auth import SYSTEM_MASTERS, TokenFile
from ctl.client import kubeconfig as kc
from ctl.cluster import pki
from tests.cluster import ROOT, ApiServerProcess, free_port

pytestmark = pytest.mark.slow  # starts API server / role / etcd processes

TOKEN = "tls-test-admin-token-abcdefghijkl"


class TLSApiServer(ApiServerProcess):
    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 20.0) -> None:
        ctx = ssl.create_default_context(cafile=str(pki.paths(self.data_dir).ca_cert))
        self.wait_http(self.url + "/readyz", timeout, context=ctx)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSApiServer]:
    d: Path = tmp_path_factory.mktemp("tls")
    p = pki.ensure_pki(d)
    TokenFile(d / "tokens.json").add(TOKEN, "system:admin", "system", [SYSTEM_MASTERS])
    srv = TLSApiServer(
        d,
        anonymous=False,
        extra=[
            "--tls-cert",
            str(p.server_cert),
            "--tls-key",
            str(p.server_key),
            "--client-ca",
            str(p.ca_cert),
        ],
    )
    srv.start()
    kc.add_context(
        d / "kubeconfig",
        "centaurus",
        srv.url,
        "system-admin",
        token=TOKEN,
        ca_pem=p.ca_cert.read_bytes(),
        tenant="system",
        make_current=True,
    )
    try:
        yield srv
    finally:
        srv.stop()


def _json(raw: bytes) -> dict:
    try:
        out: dict = json.loads(raw or b"null")
        return out
    except ValueError:
        return {"text": raw.decode(errors="replace")}


def _get(
    srv: TLSApiServer,
    path: str,
    token: str | None = None,
    cert: tuple[bytes, bytes] | None = None,
    tmp: Path | None = None,
) -> tuple[int, dict]:
    ctx = ssl.create_default_context(cafile=str(pki.paths(srv.data_dir).ca_cert))
    if cert:
        assert tmp is not None
        (tmp / "c.crt").write_bytes(cert[0])
        (tmp / "c.key").write_bytes(cert[1])
        ctx.load_cert_chain(tmp / "c.crt", tmp / "c.key")
    req = urllib.request.Request(srv.url + path)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            return r.status, _json(r.read())
    except urllib.error.HTTPError as e:
        return e.code, _json(e.read())


def ctl(srv: TLSApiServer, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(srv.data_dir / "kubeconfig")}
    r = subprocess.run(
        [sys.executable, "-m", "ctl", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )
    if check:
        assert r.returncode == 0, f"centaurusctl {' '.join(args)}: {r.stderr}"
    return r


def test_https_with_ca_and_401(tls: TLSApiServer) -> None:
    assert _get(tls, "/healthz")[0] == 200
    assert _get(tls, "/api/v1/namespaces")[0] == 401
    code, body = _get(tls, "/api/v1/namespaces", TOKEN)
    assert code == 200 and body["kind"] == "NamespaceList"
    with pytest.raises((ssl.SSLError, urllib.error.URLError)):  # a client that does not trust the cluster CA
        urllib.request.urlopen(tls.url + "/healthz", timeout=5, context=ssl.create_default_context())


def test_plain_tcp_needs_explicit_flag(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ctl",
            "serve",
            "apiserver",
            "--data-dir",
            str(tmp_path),
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert r.returncode == 1 and "--insecure-http" in r.stdout + r.stderr


def test_client_certificates_carry_the_tenant(tls: TLSApiServer, tmp_path: Path) -> None:
    ca = pki.paths(tls.data_dir)
    ca_c, ca_k = ca.ca_cert.read_bytes(), ca.ca_key.read_bytes()
    adm = ctl(tls, "create", "tenant", "certco", "--no-context")
    assert "created" in adm.stdout
    alice = pki.issue_client_cert(ca_c, ca_k, "alice", tenant="certco")
    code, _ = _get(tls, "/api/v1/namespaces", cert=alice, tmp=tmp_path)
    assert code == 403  # authenticated as alice@certco, but no role yet
    body = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "alice"},
        "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "alice"}],
    }
    req = urllib.request.Request(
        tls.url + "/apis/rbac.authorization.k8s.io/v1/tenants/certco/clusterrolebindings",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    urllib.request.urlopen(
        req, context=ssl.create_default_context(cafile=str(ca.ca_cert)), timeout=10
    ).close()
    code, out = _get(tls, "/api/v1/namespaces", cert=alice, tmp=tmp_path)
    assert code == 200 and {n["metadata"]["tenant"] for n in out["items"]} == {"certco"}
    assert _get(tls, "/api/v1/tenants/system/namespaces", cert=alice, tmp=tmp_path)[0] == 403
    # A certificate from another CA is not accepted.
    other_c, other_k = pki.make_ca("rogue")
    rogue = pki.issue_client_cert(other_c, other_k, "mallory", groups=[SYSTEM_MASTERS])
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        _get(tls, "/api/v1/namespaces", cert=rogue, tmp=tmp_path)


def test_cli_tenant_context_and_tokens(tls: TLSApiServer) -> None:
    out = ctl(tls, "create", "tenant", "acme")
    assert 'context "acme"' in out.stdout
    cfg = kc.load(tls.data_dir / "kubeconfig", "acme")
    assert (
        cfg.tenant == "acme"
        and cfg.user == "acme-admin"
        and cfg.ca_data
        and cfg.server.startswith("https://")
    )
    assert "default" in ctl(tls, "get", "ns", "--context", "acme").stdout
    ctl(tls, "create", "namespace", "shop", "--context", "acme")
    token = ctl(
        tls, "create", "token", "bob", "--context", "acme", "--role", "view", "-n", "shop"
    ).stdout.strip()
    assert _get(tls, "/api/v1/namespaces/shop/configmaps", token)[0] == 200
    assert _get(tls, "/api/v1/namespaces/default/configmaps", token)[0] == 403
    # System view of tenants and across tenants.
    assert "acme" in ctl(tls, "get", "tenants").stdout
    assert "Tenant" in ctl(tls, "describe", "tenant", "acme").stdout
    listing = ctl(tls, "get", "namespaces", "-T").stdout
    assert "TENANT" in listing.splitlines()[0] and "acme" in listing and "system" in listing
    denied = ctl(tls, "get", "namespaces", "-T", "--context", "acme", check=False)
    assert (
        denied.returncode == 1
        and "Forbidden" in denied.stderr
        and len(denied.stderr.strip().splitlines()) == 1
    )
    denied = ctl(tls, "get", "tenants", "--context", "acme", check=False)
    assert denied.returncode == 1 and "Forbidden" in denied.stderr
    # A tenant admin issues credentials for its own tenant, not for others.
    ctl(tls, "create", "token", "carol", "--context", "acme", "--role", "edit", "--add-context", "carol")
    assert kc.load(tls.data_dir / "kubeconfig", "carol").tenant == "acme"
    bad = ctl(tls, "create", "token", "eve", "--context", "acme", "--tenant", "system", check=False)
    assert bad.returncode == 1 and "Forbidden" in bad.stderr
    # ... lists them (never the token itself) and revokes one by a prefix of its name
    listing = ctl(tls, "token", "list", "--context", "acme").stdout
    rows = {ln.split()[1]: ln.split()[0] for ln in listing.splitlines()[1:]}
    assert listing.split()[:3] == ["NAME", "USER", "GROUPS"] and {"bob", "carol"} <= set(rows), listing
    assert token not in listing
    out = ctl(tls, "token", "revoke", rows["bob"], "--context", "acme").stdout
    assert out.strip() == f"token {rows['bob']} revoked"
    assert _get(tls, "/api/v1/namespaces/shop/configmaps", token)[0] == 401
    assert "bob" not in ctl(tls, "token", "list", "--context", "acme", "-o", "json").stdout
    bad = ctl(tls, "token", "revoke", "token-", "--context", "acme", check=False)  # ambiguous
    assert bad.returncode == 1 and "matches" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    bad = ctl(tls, "token", "revoke", "nosuch", "--context", "acme", check=False)
    assert bad.returncode == 1 and "matches no token" in bad.stderr, bad.stderr


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_with_https_kubeconfig(tls: TLSApiServer) -> None:
    ctl(tls, "create", "tenant", "kubeco")
    env = {**os.environ, "KUBECONFIG": str(tls.data_dir / "kubeconfig")}
    r = subprocess.run(
        ["kubectl", "get", "namespaces", "-o", "name"], capture_output=True, text=True, env=env, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert "namespace/kube-node-lease" in r.stdout  # the system tenant's
    r = subprocess.run(
        ["kubectl", "--context", "kubeco", "get", "namespaces", "-o", "name"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == ["namespace/default", "namespace/kube-public", "namespace/kube-system"]
    r = subprocess.run(
        ["kubectl", "--context", "kubeco", "get", "nodes"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode != 0 and "Forbidden" in r.stderr


def test_official_python_client(tls: TLSApiServer) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    api_client = kubernetes.config.new_client_from_config(str(tls.data_dir / "kubeconfig"))
    names = [n.metadata.name for n in kubernetes.client.CoreV1Api(api_client).list_namespace().items]
    assert "kube-system" in names
    cm = kubernetes.client.V1ConfigMap(
        metadata=kubernetes.client.V1ObjectMeta(name="from-k8s-client"), data={"a": "b"}
    )
    made = kubernetes.client.CoreV1Api(api_client).create_namespaced_config_map("default", cm)
    assert made.metadata.name == "from-k8s-client"
