"""Schemas of the batch/v1 kinds: Job (pods run to completion) and CronJob (Jobs on a schedule).

They model the fields the controllers in :mod:`ctl.controllers.job` and
:mod:`ctl.controllers.cronjob` act on: completions, parallelism, backoffLimit,
activeDeadlineSeconds, ttlSecondsAfterFinished, a basic podFailurePolicy (exit-code rules),
completionMode, suspend; and for a CronJob its schedule, timeZone, concurrencyPolicy,
startingDeadlineSeconds, history limits and the Job template. Statuses keep unknown fields
(``preserve``) so a newer client's status survives a round trip.
"""

from __future__ import annotations

from ctl.types.schema.build import array, boolean, define, integer, obj, resource, string, timestamp
from ctl.types.schema.core import POD_TEMPLATE_SPEC
from ctl.types.schema.meta import LABEL_SELECTOR, OBJECT_META

B = "io.k8s.api.batch.v1."

EXIT_CODES_REQUIREMENT = define(
    B + "PodFailurePolicyOnExitCodesRequirement",
    obj(
        {
            "containerName": string("Only this container's exit code counts (default: any container)."),
            "operator": string("In or NotIn.", enum=("In", "NotIn")),
            "values": array(integer(), "Exit codes."),
        },
        required=["operator", "values"],
    ),
)

POD_CONDITIONS_PATTERN = define(
    B + "PodFailurePolicyOnPodConditionsPattern",
    obj({"type": string(), "status": string()}, required=["type"]),
)

POD_FAILURE_POLICY = define(
    B + "PodFailurePolicy",
    obj(
        {
            "rules": array(
                define(
                    B + "PodFailurePolicyRule",
                    obj(
                        {
                            "action": string(
                                "FailJob, Ignore or Count.", enum=("FailJob", "Ignore", "Count")
                            ),
                            "onExitCodes": EXIT_CODES_REQUIREMENT,
                            "onPodConditions": array(POD_CONDITIONS_PATTERN),
                        },
                        required=["action"],
                    ),
                )
            )
        },
        required=["rules"],
        description="How failed pods count against the backoffLimit (first matching rule wins).",
    ),
)

JOB_SPEC = define(
    B + "JobSpec",
    obj(
        {
            "parallelism": integer("Pods running at once (default 1)."),
            "completions": integer("Successful pods needed (default 1; unset means any one success)."),
            "completionMode": string("NonIndexed (default) or Indexed.", enum=("NonIndexed", "Indexed")),
            "backoffLimit": integer("Failed pods before the Job is Failed (default 6)."),
            "activeDeadlineSeconds": integer("Seconds the Job may run before it is Failed.", fmt="int64"),
            "ttlSecondsAfterFinished": integer("Seconds after finishing before the Job is deleted."),
            "podFailurePolicy": POD_FAILURE_POLICY,
            "suspend": boolean("No pods run while true."),
            "manualSelector": boolean(),
            "selector": LABEL_SELECTOR,
            "template": POD_TEMPLATE_SPEC,
        },
        required=["template"],
    ),
)

JOB_CONDITION = obj(
    {
        "type": string(),
        "status": string(),
        "reason": string(),
        "message": string(),
        "lastProbeTime": timestamp(),
        "lastTransitionTime": timestamp(),
    },
    required=["type", "status"],
)

JOB_STATUS = define(
    B + "JobStatus",
    obj(
        {
            "active": integer(),
            "succeeded": integer(),
            "failed": integer(),
            "ready": integer(),
            "startTime": timestamp(),
            "completionTime": timestamp(),
            "completedIndexes": string("Indexes that succeeded, as ranges: 1,3-5."),
            "conditions": array(JOB_CONDITION),
        },
        preserve=True,
    ),
)

resource(
    B + "Job",
    "batch/v1",
    "Job",
    {"spec": JOB_SPEC, "status": JOB_STATUS},
    "Runs pods until a number of them succeed.",
)

JOB_TEMPLATE = define(
    B + "JobTemplateSpec",
    obj({"metadata": OBJECT_META, "spec": JOB_SPEC}, description="The Jobs a CronJob creates."),
)

OBJECT_REF = obj(
    {
        "apiVersion": string(),
        "kind": string(),
        "name": string(),
        "namespace": string(),
        "uid": string(),
        "resourceVersion": string(),
    }
)

CRONJOB_SPEC = define(
    B + "CronJobSpec",
    obj(
        {
            "schedule": string("Cron schedule: 5 fields (minute hour day month weekday) or @hourly etc."),
            "timeZone": string("IANA time zone of the schedule (default: UTC)."),
            "startingDeadlineSeconds": integer("A run missed by more than this is skipped.", fmt="int64"),
            "concurrencyPolicy": string(
                "Allow (default), Forbid or Replace.", enum=("Allow", "Forbid", "Replace")
            ),
            "suspend": boolean("No new Jobs while true."),
            "successfulJobsHistoryLimit": integer("Finished successful Jobs kept (default 3)."),
            "failedJobsHistoryLimit": integer("Failed Jobs kept (default 1)."),
            "jobTemplate": JOB_TEMPLATE,
        },
        required=["schedule", "jobTemplate"],
    ),
)

CRONJOB_STATUS = define(
    B + "CronJobStatus",
    obj(
        {
            "active": array(OBJECT_REF),
            "lastScheduleTime": timestamp(),
            "lastSuccessfulTime": timestamp(),
        },
        preserve=True,
    ),
)

resource(
    B + "CronJob",
    "batch/v1",
    "CronJob",
    {"spec": CRONJOB_SPEC, "status": CRONJOB_STATUS},
    "Creates Jobs on a cron schedule.",
)
