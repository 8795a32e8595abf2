"""Jobs and a CronJob end to end on a real ``init`` cluster with real runc pods.

One cluster (runc node agent, no hollow nodes, the Job back-off base cut to 1 s through
``CENTAURUS_JOB_BACKOFF_BASE``, which the controllers inherit): a Job of two completions whose
containers really run ``sh -c`` and exit 0 completes (``Complete``, succeeded 2, its pods
``Succeeded`` with exit code 0 from runc); a Job whose container exits 3 fails past
``backoffLimit: 1`` (``Failed``/``BackoffLimitExceeded``, two pods, each ``Failed`` with exit
code 3); a CronJob on ``* * * * *`` fires on the real clock within about a minute and its Job
completes. Everything is deleted and the node is checked clean before ``down``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import (
    E2ECluster,
    cluster_factory,  # noqa: F401 - the fixture, used by name
    condition,
    require_root_runc,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.root]
NS = "batch-e2e"


@pytest.fixture()
def cluster(cluster_factory: Any) -> Iterator[E2ECluster]:  # noqa: F811 - the imported fixture
    require_root_runc()
    old = os.environ.get("CENTAURUS_JOB_BACKOFF_BASE")
    os.environ["CENTAURUS_JOB_BACKOFF_BASE"] = "1"
    try:
        c: E2ECluster = cluster_factory(["--runtime", "runc"])
    finally:
        if old is None:
            os.environ.pop("CENTAURUS_JOB_BACKOFF_BASE", None)
        else:
            os.environ["CENTAURUS_JOB_BACKOFF_BASE"] = old
    wait_for(
        lambda: any(
            (condition(n, "Ready") or {}).get("status") == "True" for n in c.api.list("nodes")["items"]
        ),
        60,
        "the node to be Ready",
    )
    c.ctl("create", "namespace", NS)
    yield c


def _job(name: str, script: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {"name": "main", "image": "busybox:latest", "command": ["sh", "-c", script]}
                    ],
                }
            },
            **spec,
        },
    }


def _finished(c: E2ECluster, name: str) -> dict[str, Any] | None:
    j = c.api.get("jobs", name, namespace=NS)
    for t in ("Complete", "Failed"):
        if (condition(j, t) or {}).get("status") == "True":
            return j
    return None


def _exit_codes(c: E2ECluster, job: str) -> list[int]:
    out = []
    for p in c.pods(NS, f"job-name={job}"):
        for cs in p["status"].get("containerStatuses") or []:
            out.append(int(cs["state"]["terminated"]["exitCode"]))
    return sorted(out)


def test_jobs_and_cronjob_on_runc(cluster: E2ECluster) -> None:
    c = cluster
    c.apply(
        _job("ok", "echo working; sleep 1; exit 0", completions=2, parallelism=2),
        _job("bad", "echo failing; exit 3", backoffLimit=1),
    )
    diag = lambda: c.ctl("get", "jobs,pods", "-n", NS, "-o", "wide", check=False).stdout  # noqa: E731
    j = wait_for(lambda: _finished(c, "ok"), 120, "job ok to finish", diag=diag)
    assert (condition(j, "Complete") or {}).get("status") == "True", j["status"]
    assert j["status"]["succeeded"] == 2 and j["status"]["completionTime"]
    assert _exit_codes(c, "ok") == [0, 0]
    assert all(p["status"]["phase"] == "Succeeded" for p in c.pods(NS, "job-name=ok"))
    pod = c.pods(NS, "job-name=ok")[0]["metadata"]["name"]
    assert "working" in c.ctl("logs", pod, "-n", NS).stdout
    j = wait_for(lambda: _finished(c, "bad"), 120, "job bad to fail", diag=diag)
    failed = condition(j, "Failed") or {}
    assert failed.get("status") == "True" and failed.get("reason") == "BackoffLimitExceeded", j["status"]
    assert j["status"]["failed"] == 2
    assert _exit_codes(c, "bad") == [3, 3]
    table = c.ctl("get", "jobs", "-n", NS).stdout
    assert "COMPLETIONS" in table and "2/2" in table and "0/1" in table, table

    # A CronJob on the real clock: fires at the next minute boundary.
    c.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "minutely", "namespace": NS},
            "spec": {
                "schedule": "* * * * *",
                "successfulJobsHistoryLimit": 1,
                "jobTemplate": {"spec": _job("x", "echo tick")["spec"]},
            },
        }
    )

    def fired() -> dict[str, Any] | None:
        cj = c.api.get("cronjobs", "minutely", namespace=NS)
        st = cj.get("status") or {}
        return cj if st.get("lastSuccessfulTime") else None

    cj = wait_for(fired, 150, "the CronJob to fire and its Job to complete", diag=diag)
    assert cj["status"]["lastScheduleTime"].endswith(":00Z")
    jobs = [x for x in c.api.list("jobs", NS)["items"] if x["metadata"]["name"].startswith("minutely-")]
    assert jobs and all(x["metadata"]["ownerReferences"][0]["kind"] == "CronJob" for x in jobs)

    c.delete_workloads()
    r = c.down()
    assert r.returncode == 0, r.stdout + r.stderr
    assert not c.leftovers()
