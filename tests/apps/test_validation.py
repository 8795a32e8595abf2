"""DaemonSet/StatefulSet/ControllerRevision validation and defaults through a real API server."""

from __future__ import annotations

from typing import Any

import pytest

from ctl.client import ApiError, Client
from tests.apps.test_daemonset import daemonset
from tests.apps.test_statefulset import statefulset


async def _invalid(client: Client, ns: str, body: dict[str, Any]) -> str:
    with pytest.raises(ApiError) as e:
        await client.create(body, namespace=ns)
    assert e.value.code == 422, e.value
    return str(e.value)


async def test_defaults(client: Client, ns: str) -> None:
    ds = await client.create(daemonset(ns, "d"), namespace=ns)
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert ds["spec"]["revisionHistoryLimit"] == 10
    sts = await client.create(statefulset("s", 2), namespace=ns)
    assert sts["spec"]["podManagementPolicy"] == "OrderedReady"
    assert sts["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["accessModes"] == ["ReadWriteOnce"]


async def test_rules(client: Client, ns: str) -> None:
    bad = daemonset(ns, "d1", updateStrategy={"type": "Recreate"})
    assert "spec.updateStrategy.type" in await _invalid(client, ns, bad)
    bad = daemonset(ns, "d2", updateStrategy={"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}})
    assert "may not be 0 when `maxSurge` is 0" in await _invalid(client, ns, bad)
    bad = daemonset(ns, "d3", pod={"restartPolicy": "Never"})
    assert "spec.template.spec.restartPolicy" in await _invalid(client, ns, bad)
    bad = daemonset(ns, "d4")
    bad["spec"]["template"]["metadata"]["labels"] = {"other": "x"}
    assert "does not match template" in await _invalid(client, ns, bad)
    bad = statefulset("s1", 1, podManagementPolicy="Random")
    assert "spec.podManagementPolicy" in await _invalid(client, ns, bad)
    bad = statefulset("s2", -1)
    assert "spec.replicas" in await _invalid(client, ns, bad)
    bad = statefulset("s3", 1, updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": -2}})
    assert "partition" in await _invalid(client, ns, bad)
    bad = statefulset("s4", 1)
    bad["spec"]["volumeClaimTemplates"] = [{"metadata": {"name": "Bad_Name"}, "spec": {}}]
    msg = await _invalid(client, ns, bad)
    assert "volumeClaimTemplates[0].metadata.name" in msg and "requests[storage]" in msg
    rev = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"}, "revision": -1}
    assert "revision" in await _invalid(client, ns, rev)
