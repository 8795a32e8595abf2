"""Fixtures for the multi-tenancy tests: a real API server with real tokens, the tenant controller, three tenants.

The API server runs without ``--anonymous``: the system administrator's bearer token
is written to its ``tokens.json`` as ``centaurusctl init`` does, and tenants ``a`` and
``b`` are created through the API. Their administrators' tokens are the ones the tenant
controller (a real process) issued and stored in each tenant's
``kube-system/tenant-admin-token`` Secret. :class:`Caller` sends raw HTTP so that tests
address exactly the path they mean (short, explicit, ``/tenants/all``).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ctl.apiserver.auth import SYSTEM_MASTERS, TokenFile
from tests.cluster import ROOT, ApiServerProcess
from tests.helpers import eventually_sync

ADMIN_TOKEN = "test-system-admin-token-0123456789"


@dataclass
class Caller:
    url: str
    token: str | None

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        params: str = "",
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        if method == "PATCH" and content_type == "application/json":
            content_type = "application/merge-patch+json"
        req = urllib.request.Request(
            self.url + path + (("?" + params) if params else ""), data=data, method=method
        )
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=15) as r:
                raw = r.read()
                code = r.status
        except urllib.error.HTTPError as e:
            raw = e.read()
            code = e.code
        try:
            return code, json.loads(raw) if raw else None
        except ValueError:
            return code, raw.decode(errors="replace")

    def get(self, path: str, params: str = "") -> tuple[int, Any]:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return self.call("POST", path, body)

    def ok(self, method: str, path: str, body: Any = None, params: str = "") -> Any:
        code, out = self.call(method, path, body, params=params)
        assert code < 300, f"{method} {path} -> {code}: {out}"
        return out


@dataclass
class Tenancy:
    api: ApiServerProcess
    controller: subprocess.Popen[bytes]
    admin: Caller
    a: Caller
    b: Caller

    def caller(self, token: str | None) -> Caller:
        return Caller(self.api.url, token)

    def wait_admin_token(self, tenant: str, timeout: float = 20.0) -> str:
        path = f"/api/v1/tenants/{tenant}/namespaces/kube-system/secrets/tenant-admin-token"

        def issued() -> Any:
            code, s = self.admin.get(path)
            return s if code == 200 else None

        s = eventually_sync(
            issued, timeout, 0.1, f"the tenant controller to issue an admin token for {tenant}"
        )
        return base64.b64decode(s["data"]["token"]).decode()

    def create_tenant(self, name: str) -> str:
        self.admin.ok("POST", "/api/v1/tenants", {"metadata": {"name": name}})
        return self.wait_admin_token(name)

    def issue(
        self, caller: Caller, user: str, tenant: str | None = None, groups: list[str] | None = None
    ) -> tuple[int, Any]:
        path = "/apis/auth.centaurus.io/v1" + (f"/tenants/{tenant}" if tenant else "") + "/tokenrequests"
        return caller.post(path, {"kind": "TokenRequest", "spec": {"user": user, "groups": groups or []}})


def wait_until(fn: Any, timeout: float = 20.0, what: str = "condition") -> Any:
    return eventually_sync(fn, timeout, 0.1, what)


@pytest.fixture(scope="package")
def tenancy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenancy]:
    d: Path = tmp_path_factory.mktemp("tenancy")
    TokenFile(d / "tokens.json").add(
        ADMIN_TOKEN, "system:admin", "system", [SYSTEM_MASTERS, "system:authenticated"]
    )
    api = ApiServerProcess(d, anonymous=False).start()
    log = open(d / "tenant-controller.log", "ab")
    ctrl = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ctl",
            "serve",
            "controllers",
            "--controllers",
            "tenant,namespace",
            "--server",
            api.url,
            "--token",
            ADMIN_TOKEN,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env=os.environ.copy(),
        start_new_session=True,
    )
    admin = Caller(api.url, ADMIN_TOKEN)
    t = Tenancy(api, ctrl, admin, Caller(api.url, None), Caller(api.url, None))
    try:
        t.a.token = t.create_tenant("a")
        t.b.token = t.create_tenant("b")
        yield t
    finally:
        ctrl.terminate()
        try:
            ctrl.wait(10)
        except subprocess.TimeoutExpired:
            ctrl.kill()
            ctrl.wait()
        log.close()
        api.stop()
        text = (d / "tenant-controller.log").read_text(errors="replace")
        if "Traceback" in text:
            print(text[-5000:])


def tenant_admin_by_hand(admin: Caller, tenant: str, user: str) -> None:
    """Create ``tenant`` with its ``default`` namespace and make ``user`` its administrator.

    What the tenant controller does, done through the API by the cluster administrator, for
    tests that start their own API server (with special flags) and no controller; the
    user's token is put in ``tokens.json`` by the test.
    """
    admin.ok("POST", "/api/v1/tenants", {"metadata": {"name": tenant}})
    admin.ok("POST", f"/api/v1/tenants/{tenant}/namespaces", {"metadata": {"name": "default"}})
    rbac = f"/apis/rbac.authorization.k8s.io/v1/tenants/{tenant}"
    rules = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    admin.ok("POST", f"{rbac}/clusterroles", {"metadata": {"name": "admin"}, "rules": rules})
    admin.ok(
        "POST",
        f"{rbac}/clusterrolebindings",
        {
            "metadata": {"name": f"{user}-admin"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"kind": "User", "name": user}],
        },
    )


@contextmanager
def api_with_tenant_admins(
    d: Path, extra: list[str], admins: dict[str, tuple[str, str]]
) -> Iterator[ApiServerProcess]:
    """A real API server started with ``extra`` flags; ``admins`` maps a token to (user, tenant).

    The system administrator's token is :data:`ADMIN_TOKEN`; each listed user administers
    its tenant (:func:`tenant_admin_by_hand`). The server is stopped on exit.
    """
    tokens = TokenFile(d / "tokens.json")
    tokens.add(ADMIN_TOKEN, "system:admin", "system", [SYSTEM_MASTERS, "system:authenticated"])
    for token, (user, tenant) in admins.items():
        tokens.add(token, user, tenant, ["system:authenticated"])
    api = ApiServerProcess(d, anonymous=False, extra=extra).start()
    try:
        admin = Caller(api.url, ADMIN_TOKEN)
        for user, tenant in admins.values():
            tenant_admin_by_hand(admin, tenant, user)
        yield api
    finally:
        api.stop()
