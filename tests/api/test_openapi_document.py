"""The OpenAPI documents are complete and valid for standard tooling.

``/openapi/v2`` and every ``/openapi/v3/...`` group/version document are loaded from a real
API server and checked with ``openapi-spec-validator``; every operation declares its path
parameters; the documents publish the very schemas validation uses; ``kubectl explain``
shows the real fields of a pod's containers.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from openapi_spec_validator import validate

from ctl.types import kinds, schema
from tests.api.conftest import Http
from tests.cluster import ApiServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> ApiServerProcess:
    srv = ApiServerProcess(tmp_path_factory.mktemp("openapi")).start()
    yield srv  # type: ignore[misc]
    srv.stop()


@pytest.fixture()
def http(api: ApiServerProcess) -> Http:
    return Http(api.url)


def test_v2_document_is_valid_and_complete(http: Http) -> None:
    doc = http.get("/openapi/v2").json()
    validate(doc)
    paths = doc["paths"]
    for k in kinds.KINDS:
        base = f"/api/{k.version}" if not k.group else f"/apis/{k.group}/{k.version}"
        if k.namespaced:
            coll = f"{base}/namespaces/{{namespace}}/{k.plural}"
            assert f"{base}/tenants/{{tenant}}/namespaces/{{namespace}}/{k.plural}/{{name}}" in paths
            assert f"{base}/{k.plural}" in paths  # all namespaces
        else:
            coll = f"{base}/{k.plural}"
            if k.scope == kinds.TENANT:
                assert f"{base}/tenants/{{tenant}}/{k.plural}/{{name}}" in paths
        assert set(paths[coll]) >= {"get", "post", "delete"}, k.kind
        assert set(paths[coll + "/{name}"]) >= {"get", "put", "patch", "delete"}, k.kind
        for sub in k.subresources:
            assert f"{coll}/{{name}}/{sub}" in paths, (k.kind, sub)
        gvk = paths[coll]["post"]["x-kubernetes-group-version-kind"]
        assert gvk == {"group": k.group, "version": k.version, "kind": k.kind}
    ops = 0
    for path, item in paths.items():
        declared = {p["name"] for p in item.get("parameters", [])}
        assert declared == set(re.findall(r"{(\w+)}", path)), path
        for method, op in item.items():
            if method == "parameters":
                continue
            ops += 1
            assert "Status" in op["responses"]["default"]["schema"]["$ref"]
            names = {p["name"] for p in op["parameters"]}
            if op["x-kubernetes-action"] == "list":
                assert names >= {
                    "labelSelector",
                    "fieldSelector",
                    "limit",
                    "continue",
                    "resourceVersion",
                    "watch",
                }
            if op["x-kubernetes-action"] in ("post", "put", "patch"):
                assert names >= {"dryRun", "fieldManager", "fieldValidation"}
            if op["x-kubernetes-action"] == "delete":
                assert names >= {"gracePeriodSeconds", "propagationPolicy", "dryRun"}
    assert ops > 400
    # One source of truth: the published definitions are the validation schemas.
    pod = doc["definitions"]["io.k8s.api.core.v1.Pod"]
    assert pod == schema.definitions()["io.k8s.api.core.v1.Pod"]
    container = doc["definitions"]["io.k8s.api.core.v1.Container"]["properties"]
    assert {"name", "image", "env", "resources", "livenessProbe", "volumeMounts"} <= set(container)
    assert doc["definitions"]["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"][
        "additionalProperties"
    ] == {"x-kubernetes-int-or-string": True, "format": "quantity"}


def test_v3_documents_are_valid(http: Http) -> None:
    index = http.get("/openapi/v3").json()["paths"]
    assert set(index) >= {"api/v1", "apis/apps/v1", "apis/mizar.centaurus.io/v1"}
    for gv, entry in index.items():
        doc = http.get(entry["serverRelativeURL"]).json()
        validate(doc)
        assert doc["paths"], gv
        for item in doc["paths"].values():
            for method, op in item.items():
                if method != "parameters":
                    assert op["responses"]["default"]["content"]["application/json"]["schema"][
                        "$ref"
                    ].endswith("meta.v1.Status")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kubectl_explain_shows_the_real_fields(api: ApiServerProcess, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "kubeconfig"
    cfg.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: '" + api.url + "'}}]\n"
        "users: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
        "current-context: c\n"
    )
    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(cfg), "explain", "pod.spec.containers"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    for field in ("image", "env", "resources", "livenessProbe"):
        assert field in out.stdout, out.stdout
