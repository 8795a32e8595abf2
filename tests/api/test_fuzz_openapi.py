"""A bounded schemathesis run over the whole OpenAPI document against a real API server.

The server runs with real tokens: the system administrator's and a tenant user's (tenant
``fuzz``, granted everything inside its own tenant by a ClusterRoleBinding). For each token
every operation of ``/openapi/v2`` gets a few generated requests - positive ones (fitting
the schema: real-looking Pods, Deployments, selectors ...) and negative ones (wrong types,
missing fields, bad parameters) - with a fixed seed, so a run is reproducible and takes a
couple of minutes at most. Path parameters point at objects that exist half the time
(namespace ``default``, the caller's tenant), so requests reach the handlers.

Asserted for every response: no 5xx; every error is a Kubernetes ``Status`` whose code is
the HTTP status; no request hangs (a client timeout fails the test; watches are bounded by
``timeoutSeconds``); and the server is healthy afterwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis import GenerationMode

from ctl.types.tokens import SYSTEM_MASTERS, TokenFile
from tests.cluster import ApiServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
ADMIN = "fuzz-admin-token-0123456789abcdef"
TENANT_TOKEN = "fuzz-tenant-token-0123456789abcdef"
TENANT = "fuzz"
EXAMPLES = 2  # per operation, per generation mode, per token
REQUEST_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    d: Path = tmp_path_factory.mktemp("fuzz")
    tokens = TokenFile(d / "tokens.json")
    tokens.add(ADMIN, "system:admin", "system", [SYSTEM_MASTERS, "system:authenticated"])
    tokens.add(TENANT_TOKEN, "fuzzer", TENANT, ["system:authenticated"])
    srv = ApiServerProcess(d, anonymous=False).start()
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {ADMIN}"
    setup = [
        ("/api/v1/tenants", {"metadata": {"name": TENANT}}),
        (f"/api/v1/tenants/{TENANT}/namespaces", {"metadata": {"name": "default"}}),
        (
            f"/apis/rbac.authorization.k8s.io/v1/tenants/{TENANT}/clusterroles",
            {
                "metadata": {"name": "all"},
                "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
            },
        ),
        (
            f"/apis/rbac.authorization.k8s.io/v1/tenants/{TENANT}/clusterrolebindings",
            {
                "metadata": {"name": "fuzzer-all"},
                "subjects": [{"kind": "User", "name": "fuzzer"}],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "all"},
            },
        ),
    ]
    for path, body in setup:
        r = s.post(srv.url + path, json=body, timeout=10)
        assert r.status_code in (201, 409), (path, r.text)
    try:
        yield srv
    finally:
        srv.stop()
        log = srv.log()
        assert "Traceback" not in log, log[-5000:]


def _check(case: Any, resp: requests.Response) -> None:
    what = f"{case.method} {case.formatted_path} query={case.query} -> {resp.status_code}: {resp.text[:400]}"
    assert resp.status_code < 500, what
    if resp.status_code >= 400:
        try:
            body = resp.json()
        except ValueError:
            raise AssertionError(f"error without a JSON Status body: {what}") from None
        assert body.get("kind") == "Status" and body.get("status") == "Failure", what
        assert body.get("code") == resp.status_code and body.get("message"), what


def _fuzz(api: ApiServerProcess, token: str, tenant: str) -> dict[str, int]:
    doc = requests.get(
        api.url + "/openapi/v2", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
    ).json()
    schema = schemathesis.openapi.from_dict(doc)
    session = requests.Session()
    counts: dict[str, int] = {}
    for result in schema.get_all_operations():
        op = result.ok()
        fixed = {}
        if "{namespace}" in op.path:
            fixed["namespace"] = "default"
        if "{tenant}" in op.path:
            fixed["tenant"] = tenant
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = op.as_strategy(generation_mode=mode, path_parameters=fixed or None)

            @seed(20261204)
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case: Any) -> None:
                q = case.query if isinstance(case.query, dict) else None
                if q is not None and str(q.get("watch", "")).lower() not in ("", "false", "0"):
                    q["timeoutSeconds"] = 1  # a watch streams until its timeout: keep it short
                if q is not None and str(q.get("follow", "")).lower() not in ("", "false", "0"):
                    q["follow"] = "false"
                case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
                case.headers["Authorization"] = f"Bearer {token}"  # over whatever was generated
                t0 = time.monotonic()
                resp = case.call(session=session, base_url=api.url, timeout=REQUEST_TIMEOUT)
                assert time.monotonic() - t0 < REQUEST_TIMEOUT
                _check(case, resp)
                counts[str(resp.status_code)] = counts.get(str(resp.status_code), 0) + 1

            run()
    return counts


@pytest.mark.parametrize(
    ("token", "tenant"), [(ADMIN, "system"), (TENANT_TOKEN, TENANT)], ids=["admin", "tenant"]
)
def test_fuzz_whole_document(api: ApiServerProcess, token: str, tenant: str) -> None:
    counts = _fuzz(api, token, tenant)
    print(json.dumps(counts, sort_keys=True))
    assert sum(counts.values()) > 1000, counts
    assert counts.get("401", 0) == 0, counts  # every request carried the token
    assert any(c.startswith("2") for c in counts), counts  # some requests really did something
    r = requests.get(api.url + "/readyz", timeout=5)
    assert r.status_code == 200 and r.text == "ok"
