"""Semantic validation and defaults of the batch/v1 kinds (Job, CronJob; issue #14).

The schema (:mod:`ctl.types.schema.batch`) already checked every field's type; the rules
here are what a type cannot say, as Kubernetes' batch validation has them: counts are
non-negative, ``parallelism``/``completions`` fit, an Indexed Job names its
``completions``, the pod template's ``restartPolicy`` is ``Never`` or ``OnFailure``
(``Always`` would never finish), a ``podFailurePolicy`` rule names exit codes (a ``FailJob``
/``Ignore``/``Count`` action; with ``restartPolicy: Never`` only, as Kubernetes requires),
a CronJob's schedule parses (:mod:`ctl.types.cron`) in a known ``timeZone``.

Defaults: ``parallelism`` 1, ``completions`` 1 (when neither is given), ``backoffLimit``
6, ``completionMode`` NonIndexed, ``suspend`` false. The API server assigns the uid after
defaulting, so the ``controller-uid``/``job-name`` labels (and their ``batch.kubernetes.io/``
forms) are put on each pod by the Job controller, which finds its pods by their controller
ownerReference rather than by a selector. A CronJob defaults ``concurrencyPolicy`` Allow,
``suspend`` false, history limits 3 and 1.

The validators are registered with :func:`ctl.types.validation.validator` and
:func:`ctl.types.validation.defaulter`, so the API server runs them on every write.
"""

from __future__ import annotations

from typing import Any

from ctl.types.cron import CronError, parse
from ctl.types.schema import Cause
from ctl.types.selectors import LabelSelector, SelectorError
from ctl.types.validation import default_pod_spec, defaulter, pod_spec_causes, validator

JOB_NAME_LABEL = "job-name"
CONTROLLER_UID_LABEL = "controller-uid"
BATCH_JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
BATCH_CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
MAX_INDEXED_COMPLETIONS = 100_000


def _nonneg(spec: dict[str, Any], field: str, path: str, causes: list[Cause]) -> None:
    v = spec.get(field)
    if v is not None and v < 0:
        causes.append(Cause(f"{path}.{field}", f"Invalid value: {v}: must be greater than or equal to 0"))


def job_spec_causes(spec: Any, path: str, causes: list[Cause], job_md: dict[str, Any] | None = None) -> None:
    """The rules of a JobSpec at ``path`` (a Job's ``spec`` or a CronJob's ``spec.jobTemplate.spec``)."""
    if not isinstance(spec, dict):
        causes.append(Cause(path, "Required value"))
        return
    for f in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"):
        _nonneg(spec, f, path, causes)
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and ads <= 0:
        causes.append(Cause(f"{path}.activeDeadlineSeconds", f"Invalid value: {ads}: must be greater than 0"))
    mode = spec.get("completionMode") or "NonIndexed"
    if mode == "Indexed":
        c = spec.get("completions")
        if c is None:
            causes.append(Cause(f"{path}.completions", "Required value: when completion mode is Indexed"))
        elif c > MAX_INDEXED_COMPLETIONS:
            causes.append(Cause(f"{path}.completions", f"Invalid value: {c}: must be at most 100000"))
    tpl = spec.get("template")
    if not isinstance(tpl, dict):
        causes.append(Cause(f"{path}.template", "Required value"))
        return
    tspec = tpl.get("spec")
    pod_spec_causes(tspec, f"{path}.template.spec", causes, {"metadata": tpl.get("metadata") or {}})
    rp = (tspec or {}).get("restartPolicy") if isinstance(tspec, dict) else None
    if rp is None:
        causes.append(
            Cause(
                f"{path}.template.spec.restartPolicy",
                'Required value: a Job\'s pods need "OnFailure" or "Never"',
            )
        )
    elif rp not in ("Never", "OnFailure"):
        causes.append(
            Cause(
                f"{path}.template.spec.restartPolicy",
                f'Unsupported value: {rp!r}: supported values: "OnFailure", "Never"',
            )
        )
    pfp = spec.get("podFailurePolicy")
    if isinstance(pfp, dict):
        if rp != "Never":
            causes.append(
                Cause(
                    f"{path}.template.spec.restartPolicy",
                    'Invalid value: only "Never" is supported when podFailurePolicy is specified',
                )
            )
        for i, rule in enumerate(pfp.get("rules") or []):
            rp_ = f"{path}.podFailurePolicy.rules[{i}]"
            oec = rule.get("onExitCodes")
            if oec is None and not rule.get("onPodConditions"):
                causes.append(Cause(rp_, "Required value: specify one of onExitCodes and onPodConditions"))
            if isinstance(oec, dict):
                vals = oec.get("values") or []
                if not vals:
                    causes.append(Cause(f"{rp_}.onExitCodes.values", "Required value"))
                if oec.get("operator") == "In" and 0 in vals:
                    causes.append(
                        Cause(
                            f"{rp_}.onExitCodes.values", "Invalid value: 0: must not be 0 for the In operator"
                        )
                    )
    sel = spec.get("selector")
    if isinstance(sel, dict) and spec.get("manualSelector"):
        labels = (tpl.get("metadata") or {}).get("labels") or {}
        try:
            if not LabelSelector.from_spec(sel).matches(labels):
                causes.append(
                    Cause(
                        f"{path}.template.metadata.labels",
                        "Invalid value: `selector` does not match template `labels`",
                    )
                )
        except SelectorError as e:
            causes.append(Cause(f"{path}.selector", str(e)))


@validator("Job")
def _job(obj: dict[str, Any], causes: list[Cause]) -> None:
    job_spec_causes(obj.get("spec"), "spec", causes, obj.get("metadata"))


def default_job_spec(spec: dict[str, Any]) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 6
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    tpl = spec.get("template")
    if isinstance(tpl, dict) and isinstance(tpl.get("spec"), dict):
        rp = tpl["spec"].get("restartPolicy")
        default_pod_spec(tpl["spec"])
        if rp is None:
            del tpl["spec"]["restartPolicy"]  # a Job has no default: validation asks for one


@defaulter("Job")
def _default_job(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    default_job_spec(spec)


@validator("CronJob")
def _cronjob(obj: dict[str, Any], causes: list[Cause]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        causes.append(Cause("spec", "Required value"))
        return
    try:
        parse(spec.get("schedule") or "", spec.get("timeZone"))
    except CronError as e:
        field = "spec.timeZone" if "time zone" in str(e) else "spec.schedule"
        causes.append(Cause(field, f"Invalid value: {e}"))
    for f in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        _nonneg(spec, f, "spec", causes)
    name = (obj.get("metadata") or {}).get("name") or ""
    if len(name) > 52:
        causes.append(Cause("metadata.name", "Invalid value: must be no more than 52 characters"))
    jt = spec.get("jobTemplate")
    if not isinstance(jt, dict):
        causes.append(Cause("spec.jobTemplate", "Required value"))
        return
    job_spec_causes(jt.get("spec"), "spec.jobTemplate.spec", causes)


@defaulter("CronJob")
def _default_cronjob(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    for f, v in (
        ("concurrencyPolicy", "Allow"),
        ("suspend", False),
        ("successfulJobsHistoryLimit", 3),
        ("failedJobsHistoryLimit", 1),
    ):
        if spec.get(f) is None:
            spec[f] = v
    jt = spec.get("jobTemplate")
    if isinstance(jt, dict) and isinstance(jt.get("spec"), dict):
        js = jt["spec"]
        if js.get("backoffLimit") is None:
            js["backoffLimit"] = 6
