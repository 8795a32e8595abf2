"""Fixtures for the kubectl / client-library compatibility suite: one real ``init``-started cluster.

``compat`` is a cluster started by ``centaurusctl init --detach`` with every component
(API server, scheduler, controllers, a hollow local node agent and one more hollow node, so
pods get bound and deleted as on real nodes and a drained node's pods have somewhere to go),
shared by the whole package. :class:`Compat` drives it:

* ``kubectl(*args)`` runs the real kubectl (v1.32 on these machines) with the admin
  kubeconfig, or with another kubeconfig (``as_kubeconfig``);
* ``http`` is raw HTTPS with the admin token and the cluster CA, for what kubectl cannot show;
* ``tenant(name)`` creates a tenant and returns its administrator's token (issued by the
  tenant controller), ``token(user, tenant, groups)`` issues a token for any user through
  the TokenRequest API, and ``kubeconfig_for(token)`` writes a kubeconfig for that token.

Where kubectl is missing, the tests that need it skip with the reason.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.api.conftest import InitCluster
from tests.helpers import eventually_sync

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
HAVE_KUBECTL = os.access(KUBECTL, os.X_OK)
needs_kubectl = pytest.mark.skipif(not HAVE_KUBECTL, reason="kubectl is not installed")


class Compat(InitCluster):
    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self._cfg: dict[str, Any] = {}
        self.http = requests.Session()
        self.http.trust_env = False  # REQUESTS_CA_BUNDLE would override the cluster CA

    def load(self) -> None:
        self._cfg = yaml.safe_load(self.kubeconfig.read_text())
        cluster = self._cfg["clusters"][0]["cluster"]
        self.server = cluster["server"]
        self.ca = self.data_dir / "compat-ca.crt"
        self.ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        user = self._cfg["users"][0]["user"]
        self.admin_token = user["token"]
        self.http.verify = str(self.ca)
        self.http.headers["Authorization"] = f"Bearer {self.admin_token}"

    def url(self, path: str) -> str:
        return self.server + path

    def req(self, method: str, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        headers = dict(kw.pop("headers", {}) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.url(path), headers=headers, timeout=30, **kw)

    def ok(self, method: str, path: str, **kw: Any) -> Any:
        r = self.req(method, path, **kw)
        assert r.status_code < 300, f"{method} {path} -> {r.status_code}: {r.text}"
        return r.json()

    def kubectl(
        self, *args: str, kubeconfig: Path | None = None, timeout: float = 60, check: bool = True, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [KUBECTL, "--kubeconfig", str(kubeconfig or self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            **kw,
        )
        if check:
            assert r.returncode == 0, f"kubectl {' '.join(args)}: {r.stderr}{r.stdout}"
        return r

    def kubeconfig_for(self, token: str, name: str, extra: dict[str, Any] | None = None) -> Path:
        """A kubeconfig like the admin's with ``token`` (and ``extra`` user fields, e.g. as-user-extra)."""
        cfg = yaml.safe_load(self.kubeconfig.read_text())
        cfg["users"][0]["user"] = {"token": token, **(extra or {})}
        p = self.data_dir / f"{name}-{uuid.uuid4().hex[:6]}.kubeconfig"
        p.write_text(yaml.safe_dump(cfg))
        p.chmod(0o600)
        return p

    def tenant(self, name: str) -> str:
        """Create tenant ``name``; its administrator's token (issued by the tenant controller)."""
        self.ok("POST", "/api/v1/tenants", json={"metadata": {"name": name}})
        path = f"/api/v1/tenants/{name}/namespaces/kube-system/secrets/tenant-admin-token"

        def issued() -> Any:
            r = self.req("GET", path)
            return r.json() if r.status_code == 200 else None

        s = eventually_sync(issued, 30, 0.2, f"the tenant controller to issue an admin token for {name}")
        return base64.b64decode(s["data"]["token"]).decode()

    def token(self, user: str, tenant: str | None = None, groups: list[str] | None = None) -> str:
        """A token for ``user`` in ``tenant`` (the admin's own tenant when None), issued by the admin."""
        path = "/apis/auth.centaurus.io/v1" + (f"/tenants/{tenant}" if tenant else "") + "/tokenrequests"
        out = self.ok(
            "POST", path, json={"kind": "TokenRequest", "spec": {"user": user, "groups": groups or []}}
        )
        return str(out["status"]["token"])

    def namespace(self, tenant: str | None = None) -> str:
        name = "c-" + uuid.uuid4().hex[:8]
        base = f"/api/v1/tenants/{tenant}" if tenant else "/api/v1"
        self.ok("POST", f"{base}/namespaces", json={"metadata": {"name": name}})
        return name


@pytest.fixture(scope="package")
def compat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Compat]:
    c = Compat(tmp_path_factory.mktemp("compat") / "data")
    flags = "--detach --port 0 --runtime hollow --hollow-nodes 1".split()
    r = c.ctl("init", *flags, "--data-dir", str(c.data_dir), timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    try:
        c.load()
        yield c
    finally:
        c.ctl("down", "--data-dir", str(c.data_dir))
        for log in sorted(c.data_dir.glob("*.log")):
            text = log.read_text(errors="replace")
            if "Traceback" in text:
                print(f"--- {log.name}\n{text[-4000:]}")


@pytest.fixture()
def ns(compat: Compat) -> str:
    return compat.namespace()
