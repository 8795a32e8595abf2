"""A Job made from a CronJob's ``jobTemplate``: what the CronJob controller creates on schedule and
``create job --from=cronjob/X`` posts by hand.

Shared by the controller and the CLI (which may not import a controller), so both make the
same Job: the template's labels and annotations, an owner reference to the CronJob, and
either the scheduled time (``batch.kubernetes.io/cronjob-scheduled-timestamp``) or
kubectl's ``cronjob.kubernetes.io/instantiate: manual`` mark.
"""

from __future__ import annotations

import copy
from typing import Any

from ctl.types import meta

SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def job_from_template(cj: dict[str, Any], name: str, scheduled: float | None = None) -> dict[str, Any]:
    """A Job from a CronJob's ``jobTemplate`` (also what ``create job --from=cronjob/X`` posts)."""
    jt = (cj.get("spec") or {}).get("jobTemplate") or {}
    jmd = jt.get("metadata") or {}
    md: dict[str, Any] = {
        "name": name,
        "labels": dict(jmd.get("labels") or {}),
        "annotations": dict(jmd.get("annotations") or {}),
    }
    if scheduled is not None:
        md["annotations"][SCHEDULED_ANNOTATION] = meta.rfc3339(scheduled)
    else:  # a manual run: kubectl marks it so, and the CronJob owns it as it owns its own runs
        md["annotations"]["cronjob.kubernetes.io/instantiate"] = "manual"
    md["ownerReferences"] = [meta.owner_reference(cj)]
    if not md["annotations"]:
        del md["annotations"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": md,
        "spec": copy.deepcopy(jt.get("spec") or {}),
    }
