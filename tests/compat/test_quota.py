"""ResourceQuota for object counts and for requests/limits, enforced at admission as Kubernetes does,
with ``status.used`` for every tracked resource (the quota controller), through kubectl and the Python client."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat.conftest import Compat, needs_kubectl
from tests.helpers import eventually_sync

pytestmark = [pytest.mark.slow, needs_kubectl]
OBJECTS_USED = {
    "count/configmaps": "2",
    "secrets": "1",
    "count/deployments.apps": "1",
    "count/poddisruptionbudgets.policy": "0",
    "resourcequotas": "2",
}


def _used(c: Compat, ns: str, name: str, want: dict[str, str]) -> dict[str, Any]:
    last: list[Any] = [None]

    def exact() -> dict[str, Any] | None:
        st = c.ok("GET", f"/api/v1/namespaces/{ns}/resourcequotas/{name}").get("status") or {}
        last[0] = st
        return st if st.get("used") == want else None

    return eventually_sync(exact, 30, 0.2, f"quota {name} to show used {want} (last {last})")


def test_object_count_quota(compat: Compat, ns: str) -> None:
    c = compat
    c.kubectl(
        "create",
        "quota",
        "objects",
        "--hard=count/configmaps=2,secrets=1,count/deployments.apps=1,count/poddisruptionbudgets.policy=1,"
        "resourcequotas=2,services=5",
        "-n",
        ns,
    )
    c.kubectl("create", "configmap", "one", "-n", ns)
    c.kubectl("create", "configmap", "two", "-n", ns)
    r = c.kubectl("create", "configmap", "three", "-n", ns, check=False)
    assert r.returncode != 0
    assert (
        'configmaps "three" is forbidden: exceeded quota: objects, requested: count/configmaps=1, '
        "used: count/configmaps=2, limited: count/configmaps=2"
    ) in r.stderr, r.stderr
    c.kubectl("create", "secret", "generic", "s1", "--from-literal=a=b", "-n", ns)
    r = c.kubectl("create", "secret", "generic", "s2", "--from-literal=a=b", "-n", ns, check=False)
    assert r.returncode != 0 and "exceeded quota: objects" in r.stderr and "secrets=1" in r.stderr, r.stderr
    c.kubectl("create", "deployment", "d1", "--image=nginx", "-n", ns)
    r = c.kubectl("create", "deployment", "d2", "--image=nginx", "-n", ns, check=False)
    assert r.returncode != 0 and 'deployments.apps "d2" is forbidden: exceeded quota' in r.stderr, r.stderr
    c.kubectl("create", "quota", "second", "--hard=pods=10", "-n", ns)
    r = c.kubectl("create", "quota", "third", "--hard=pods=10", "-n", ns, check=False)
    assert r.returncode != 0 and "resourcequotas=2" in r.stderr, r.stderr
    # status.used for every tracked key; services (no such kind yet) only in hard
    _used(
        c,
        ns,
        "objects",
        OBJECTS_USED,
    )
    out = c.kubectl("describe", "quota", "objects", "-n", ns).stdout
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()}
    assert rows["count/configmaps"] == ["2", "2"] and rows["secrets"] == ["1", "1"], out
    assert rows["count/deployments.apps"] == ["1", "1"], out
    # deleting frees the count
    c.kubectl("delete", "configmap", "one", "-n", ns)
    c.kubectl("create", "configmap", "three", "-n", ns)
    _used(
        c,
        ns,
        "objects",
        OBJECTS_USED,
    )


def test_compute_quota_requests_and_limits(compat: Compat, ns: str) -> None:
    pytest.importorskip("kubernetes")
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    c = compat
    c.kubectl(
        "create",
        "quota",
        "compute",
        "--hard=pods=3,requests.cpu=1,limits.cpu=2,limits.memory=1Gi,requests.memory=512Mi",
        "-n",
        ns,
    )
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(c.kubeconfig)))

    def pod(name: str, req: dict[str, str] | None, lim: dict[str, str] | None) -> client.V1Pod:
        res = client.V1ResourceRequirements(requests=req, limits=lim)
        return client.V1Pod(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox", resources=res)]),
        )

    # limits only: the request defaults to the limit, as the API's defaulting does
    api.create_namespaced_pod(ns, pod("a", None, {"cpu": "500m", "memory": "256Mi"}))
    api.create_namespaced_pod(
        ns, pod("b", {"cpu": "250m", "memory": "128Mi"}, {"cpu": "1", "memory": "512Mi"})
    )
    with pytest.raises(ApiException) as e:  # limits.memory: 768Mi used + 512Mi > 1Gi
        api.create_namespaced_pod(
            ns, pod("c", {"cpu": "100m", "memory": "64Mi"}, {"cpu": "100m", "memory": "512Mi"})
        )
    assert e.value.status == 403
    assert (
        "exceeded quota: compute, requested: limits.memory=512Mi, used: limits.memory=768Mi" in e.value.body
    )
    with pytest.raises(ApiException) as e:  # no limits: must be stated when a quota tracks them
        api.create_namespaced_pod(ns, pod("d", {"cpu": "100m", "memory": "64Mi"}, None))
    assert e.value.status == 403 and "must specify cpu limits" in e.value.body, e.value.body
    with pytest.raises(ApiException) as e:  # requests.cpu: 750m + 500m > 1
        api.create_namespaced_pod(
            ns, pod("e", {"cpu": "500m", "memory": "1Mi"}, {"cpu": "500m", "memory": "1Mi"})
        )
    assert e.value.status == 403 and "requests.cpu=500m" in e.value.body
    api.create_namespaced_pod(
        ns, pod("f", {"cpu": "200m", "memory": "64Mi"}, {"cpu": "200m", "memory": "64Mi"})
    )
    st = _used(
        c,
        ns,
        "compute",
        {
            "pods": "3",
            "requests.cpu": "950m",
            "limits.cpu": "1700m",
            "limits.memory": "832Mi",
            "requests.memory": "448Mi",
        },
    )
    assert st["hard"]["limits.memory"] == "1Gi"
    q = api.read_namespaced_resource_quota(namespace=ns, name="compute")
    assert q.status.used["limits.cpu"] == "1700m"
