"""On an ``init``-started hollow cluster: simulated figures for hollow nodes, and the built-in roles.

The hollow runtime has no processes to measure, so its agent reports stable simulated figures:
``kubectl top`` must still list every hollow node and running pod. The built-in ``edit`` and
``view`` roles of a new tenant are checked with ``kubectl auth can-i`` as Kubernetes grants
them: ``edit`` may evict pods and manage PodDisruptionBudgets, ``view`` may only read budgets,
and both read the resource metrics (``kubectl top``), which a user without a role may not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compat.conftest import Compat
from tests.helpers import eventually_sync
from tests.metrics.conftest import kubectl, needs_kubectl

TENANT = "tm-roles"
pytestmark = pytest.mark.slow  # an init-started cluster


@pytest.fixture(scope="module")
def hollow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Compat]:
    c = Compat(tmp_path_factory.mktemp("hollow-top") / "data")
    flags = "--detach --port 0 --runtime hollow --hollow-nodes 2".split()
    r = c.ctl("init", *flags, "--data-dir", str(c.data_dir), timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    try:
        c.load()
        yield c
    finally:
        c.ctl("down", "--data-dir", str(c.data_dir))


def _bind(c: Compat, role: str, user: str) -> Path:
    c.ok(
        "POST",
        f"/apis/rbac.authorization.k8s.io/v1/tenants/{TENANT}/namespaces/default/rolebindings",
        json={
            "metadata": {"name": f"{user}-{role}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )
    return c.kubeconfig_for(c.token(user, TENANT), user)


@needs_kubectl
def test_builtin_roles_evictions_budgets_and_metrics(hollow: Compat) -> None:
    hollow.tenant(TENANT)
    editor, viewer = _bind(hollow, "edit", "eddie"), _bind(hollow, "view", "vicky")
    nobody = hollow.kubeconfig_for(hollow.token("nobody", TENANT), "nobody")
    checks = [
        (("create", "pods", "--subresource=eviction"), "yes", "no", "no"),
        (("create", "poddisruptionbudgets.policy"), "yes", "no", "no"),
        (("delete", "poddisruptionbudgets.policy"), "yes", "no", "no"),
        (("list", "poddisruptionbudgets.policy"), "yes", "yes", "no"),
        (("list", "pods.metrics.k8s.io"), "yes", "yes", "no"),
        (("get", "pods.metrics.k8s.io"), "yes", "yes", "no"),
        (("create", "pods", "--subresource=exec"), "yes", "no", "no"),  # unchanged
    ]
    for args, *want in checks:
        for cfg, expect in zip((editor, viewer, nobody), want, strict=True):
            r = kubectl(cfg, "auth", "can-i", *args, "-n", "default")
            assert r.stdout.split()[:1] == [expect], (
                f"{cfg.name}: can-i {' '.join(args)} -> {r.stdout}{r.stderr}"
            )
    # and the grant works for real: the viewer's kubectl top pod answers (no pods yet), nobody's is refused
    r = kubectl(viewer, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods")
    assert r.returncode == 0 and json.loads(r.stdout)["items"] == [], r.stderr
    r = kubectl(nobody, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods")
    assert r.returncode != 0 and "forbidden" in r.stderr.lower()


@needs_kubectl
def test_hollow_nodes_and_pods_have_simulated_figures(hollow: Compat) -> None:
    nodes = [n["metadata"]["name"] for n in hollow.ok("GET", "/api/v1/nodes")["items"]]
    assert len(nodes) >= 3, nodes
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sim", "namespace": "default"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "busybox:1",
                    "resources": {"requests": {"cpu": "200m", "memory": "64Mi"}},
                }
            ]
        },
    }
    hollow.ok("POST", "/api/v1/namespaces/default/pods", json=pod)

    def top_pod() -> str | None:
        r = kubectl(hollow.kubeconfig, "top", "pod", "sim")
        return r.stdout if r.returncode == 0 else None

    out = eventually_sync(top_pod, 30, 0.5, "kubectl top pod sim to show the hollow pod")
    row = out.strip().splitlines()[1].split()
    assert row[0] == "sim" and row[1].endswith("m") and 0 < int(row[1][:-1]) <= 200, out
    r = kubectl(hollow.kubeconfig, "top", "node")
    assert r.returncode == 0, r.stderr
    shown = {line.split()[0] for line in r.stdout.strip().splitlines()[1:]}
    assert set(nodes) <= shown, r.stdout
    # stable figures: the same pod shows the same simulated CPU twice
    again = kubectl(hollow.kubeconfig, "top", "pod", "sim").stdout.strip().splitlines()[1].split()
    assert again[1] == row[1]
    hollow.ok("DELETE", "/api/v1/namespaces/default/pods/sim")
