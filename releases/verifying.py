"""Watching an environment after the rollout: verification runs, "verified" per digest and
environment, automatic rollback to the last verified release, and a lead's word on it.

- Every deployment that rolls out where analysis templates apply starts a fresh run (in
  the transaction that records the success); its measurements are taken by the
  `releases.verify` task, one chain per run (its run token), each slot at most once.
- A release is *verified* in an environment when its latest run there ended successful,
  was skipped by a lead, or was judged good by a lead when inconclusive. A later failed
  run (a re-run) revokes it; a new deployment starts over. Promotion out of an environment
  with verification needs the release verified there (promotion.py asks `refusal`).
- A failed run, where the environment rolls back automatically, redeploys the last
  release verified there (not merely the one before); an inconclusive run asks a lead
  (approvals inbox): continue, or roll back the same way.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from doors.prometheus import PrometheusError, instant_value
from portal.access.choices import Role
from portal.access.permissions import has_role
from portal.audit.chain import Actor, RequestContext, audit_record
from portal.catalog.models import DeploymentTarget
from portal.core import sizes
from releases import dispatch
from releases.actions import VERIFICATION_STATUS, Engine
from releases.analysis import MetricTally, judge, run_outcome
from releases.choices import (
    DeploymentKind,
    Judgement,
    MeasurementPhase,
    VerificationStatus,
)
from releases.deployments import deployment_start
from releases.errors import Conflict, NotPermitted, ReleaseRefused
from releases.live import live_changed, live_decisions_changed, live_deployment_detail
from releases.models import (
    AnalysisMetric,
    AnalysisTemplate,
    Deployment,
    Measurement,
    VerificationRun,
)
from releases.promotion import environment_current_deployment
from releases.verified import last_verified_release, template_metrics, templates_for

VERIFIER = Actor.system("verification")
# What a lead may do to a run, by its status.
RERUN, SKIP = "rerun", "skip"
ACTIONS = (RERUN, SKIP, Judgement.CONTINUE, Judgement.ROLLBACK)


# -- a run's life ----------------------------------------------------------------------


def verification_begin(
    deployment: Deployment,
    *,
    actor: Actor = VERIFIER,
    context: RequestContext | None = None,
    canary_step: int | None = None,
    canary_weight: int | None = None,
) -> VerificationRun | None:
    """Start a fresh run for a deployment that rolled out, where templates apply. Call it
    in the transaction that records the success. With `canary_step`: the analysis of a
    canary step (releases/canary.py judges it; it never makes the release verified)."""
    templates = templates_for(deployment.service_id, deployment.environment_id)
    metrics = template_metrics(templates)
    if not metrics:
        return None
    now = timezone.now()
    first = min(m.initial_delay_seconds for _, m in metrics)
    run = VerificationRun.objects.create(
        deployment=deployment,
        release_id=deployment.release_id,
        environment_id=deployment.environment_id,
        service_id=deployment.service_id,
        next_at=now + timedelta(seconds=first),
        canary_step=canary_step,
        canary_weight=canary_weight,
    )
    audit_record(
        actor=actor,
        action=Engine.VERIFICATION_STARTED,
        target=deployment,
        context=context,
        after={
            "run": run.pk,
            "templates": [t.name for t in templates],
            "metrics": [m.name for _, m in metrics],
            **({"canary_step": canary_step, "weight": canary_weight} if canary_step else {}),
        },
    )
    dispatch.verify(run, countdown=first)
    return run


def _namespace(run: VerificationRun) -> str:
    target = (
        DeploymentTarget.objects.filter(service=run.service_id, environment=run.environment_id)
        .order_by("wave", "id")
        .first()
    )
    return target.namespace if target else ""


def fill(query: str, run: VerificationRun, namespace: str) -> str:
    """The query with its placeholders filled; PromQL's own braces stay as they are."""
    return (
        query.replace("{service}", run.service.slug)
        .replace("{namespace}", namespace)
        .replace("{release}", str(run.release_id))
        .replace("{digest}", run.release.image_digest)
    )


def _measure(run: VerificationRun, template: AnalysisTemplate, metric: AnalysisMetric, n: int):
    query = fill(metric.query, run, _namespace(run))
    try:
        value = instant_value(template.prometheus_url, query)
    except PrometheusError as exc:
        phase, value, detail = MeasurementPhase.ERROR, None, str(exc)
    else:
        phase = judge(value, metric.success_condition, metric.failure_condition)
        detail = f"value {value:g}"
    try:
        with transaction.atomic():
            Measurement.objects.create(
                run=run,
                metric=metric,
                metric_name=metric.name,
                sequence=n,
                query=query,
                phase=phase,
                value=value,
                detail=detail[: sizes.PARAGRAPH],
            )
            live_deployment_detail(deployment_id=run.deployment_id)
    except IntegrityError:
        pass  # a doubled task took this slot already


def _due(run: VerificationRun, metric: AnalysisMetric, taken: int) -> datetime:
    return run.created_at + timedelta(
        seconds=metric.initial_delay_seconds + taken * metric.interval_seconds
    )


def _tallies(run: VerificationRun, metrics) -> list[MetricTally]:
    phases: dict[int, list[str]] = {}
    for metric_id, phase in (
        Measurement.objects.filter(run=run).order_by("sequence").values_list("metric", "phase")
    ):
        phases.setdefault(metric_id, []).append(phase)
    return [
        MetricTally(
            name=m.name,
            count=m.count,
            failure_limit=m.failure_limit,
            inconclusive_limit=m.inconclusive_limit,
            phases=tuple(phases.get(m.pk, ())),
        )
        for _, m in metrics
    ]


def verification_step(run: VerificationRun) -> float | None:
    """Take the measurements that are due; end the run when its outcome is known. Returns
    the seconds until the next measurement is due, or None when the run is over."""
    if run.status != VerificationStatus.RUNNING:
        return None
    metrics = template_metrics(templates_for(run.service_id, run.environment_id))
    if not metrics:
        verification_end(run, VerificationStatus.SKIPPED, "No analysis template applies any more.")
        return None
    now = timezone.now()
    for template, metric in metrics:
        taken = Measurement.objects.filter(run=run, metric=metric).count()
        if taken < metric.count and _due(run, metric, taken) <= now:
            _measure(run, template, metric, taken + 1)
    tallies = _tallies(run, metrics)
    status, reason = run_outcome(tallies)
    if status != VerificationStatus.RUNNING:
        verification_end(run, status, reason)
        return None
    upcoming = [
        _due(run, metric, len(tally.phases))
        for (_, metric), tally in zip(metrics, tallies, strict=True)
        if len(tally.phases) < metric.count
    ]
    next_at = min(upcoming)
    VerificationRun.objects.filter(pk=run.pk).update(next_at=next_at)
    return max(0.0, (next_at - timezone.now()).total_seconds())


def verification_end(
    run: VerificationRun,
    status: str,
    reason: str,
    *,
    actor: Actor = VERIFIER,
    context: RequestContext | None = None,
    user=None,
) -> bool:
    """End a running run (once) and audit it; a failure rolls back where the environment
    says so. False when it had ended meanwhile."""
    with transaction.atomic():
        ended = VerificationRun.objects.filter(pk=run.pk, status=VerificationStatus.RUNNING).update(
            status=status,
            reason=reason[: sizes.PARAGRAPH * 2],
            finished_at=timezone.now(),
            next_at=None,
            decided_by=user,
        )
        if not ended:
            return False
        run.status, run.reason = status, reason
        audit_record(
            actor=actor,
            action=VERIFICATION_STATUS[status],
            target=run.deployment,
            context=context,
            after={"run": run.pk, "status": status, "reason": reason[: sizes.PARAGRAPH]},
        )
        if status == VerificationStatus.FAILED and run.canary_step is None:
            _roll_back_automatically(run)
    deployment = run.deployment
    live_changed(service_id=deployment.service_id, release_id=deployment.release_id,
                 deployment_id=deployment.pk)  # fmt: skip
    if status == VerificationStatus.INCONCLUSIVE:
        live_decisions_changed()
    return True


def _roll_back_automatically(run: VerificationRun) -> None:
    deployment = run.deployment
    environment = deployment.environment
    if not environment.auto_rollback:
        return
    if deployment.kind == DeploymentKind.ROLLBACK:
        # A rollback that fails its own verification is not rolled back again (no loop).
        return
    roll_back(run, actor=VERIFIER, why=f"verification run #{run.pk} failed: {run.reason}")


def roll_back(
    run: VerificationRun,
    *,
    actor: Actor,
    why: str,
    user=None,
    context: RequestContext | None = None,
) -> Deployment | None:
    """Redeploy the last release verified in the run's environment, audited on the run's
    deployment; None (said in the audit event) when there is none or it is refused."""
    deployment = run.deployment
    environment = deployment.environment
    target = last_verified_release(
        service_id=run.service_id, environment=environment, besides=run.release_id
    )
    after = {"run": run.pk, "reason": why[: sizes.PARAGRAPH]}
    rollback = None
    if target is None:
        after["outcome"] = f"No other release was ever verified in {environment.name}."
    else:
        try:
            with transaction.atomic():
                rollback = deployment_start(
                    release=target,
                    environment=environment,
                    actor=actor,
                    user=user,
                    kind=DeploymentKind.ROLLBACK,
                    context=context,
                    wait_if_busy=True,
                )
        except ReleaseRefused as exc:
            after["outcome"] = f"Rollback to release #{target.pk} refused: {exc}"
        else:
            after |= {"rollback": rollback.pk, "to_release": target.pk, "image": target.image}
            after["outcome"] = f"Rolling back to release #{target.pk} (deployment #{rollback.pk})."
            VerificationRun.objects.filter(pk=run.pk).update(rollback=rollback)
            run.rollback = rollback
    audit_record(
        actor=actor, action=Engine.AUTO_ROLLBACK, target=deployment, context=context, after=after
    )
    return rollback


def resume_stale() -> list[int]:
    """Periodic: a run whose measurement is overdue lost its chain (a worker died); start a
    new chain (a fresh token, so the old one, if alive, stops)."""
    overdue = timezone.now() - timedelta(seconds=settings.SLIPWAY_STALE_AFTER_SECONDS)
    resumed = []
    for run in VerificationRun.objects.filter(
        status=VerificationStatus.RUNNING, next_at__lt=overdue
    ):
        token = uuid.uuid4()
        if VerificationRun.objects.filter(pk=run.pk, run_token=run.run_token).update(
            run_token=token
        ):
            run.run_token = token
            with transaction.atomic():
                dispatch.verify(run)
            resumed.append(run.pk)
    return resumed


# -- a lead's word ------------------------------------------------------------------------


def _lead_refusal(run: VerificationRun, user) -> None:
    if not has_role(user, run.service, Role.LEAD):
        raise NotPermitted(f"Only a lead of {run.service.team} may decide on a verification.")
    newer = VerificationRun.objects.filter(
        service=run.service_id,
        environment=run.environment_id,
        pk__gt=run.pk,
        canary_step__isnull=True,
    ).first()
    if newer is not None:
        raise Conflict(
            f"Verification run #{newer.pk} came since in {run.environment.name}: decide on "
            "the latest run there."
        )


def _still_runs(run: VerificationRun) -> None:
    current = environment_current_deployment(service=run.service_id, environment=run.environment)
    if current is None or current.release_id != run.release_id:
        raise Conflict(
            f"Release #{run.release_id} does not run in {run.environment.name} now: "
            "there is nothing left to verify."
        )


def verification_decide(
    *,
    run: VerificationRun,
    action: str,
    reason: str,
    user,
    actor: Actor,
    context: RequestContext | None = None,
) -> VerificationRun:
    """A lead's word, with a reason (audited): `rerun` (a fresh run of the same
    deployment), `skip` (count it verified), or, on an inconclusive run, `continue`
    (verified) or `rollback` (to the last verified release)."""
    reason = (reason or "").strip()
    if action not in ACTIONS:
        raise ReleaseRefused(f"action must be one of {', '.join(ACTIONS)}")
    if run.canary_step is not None:
        raise Conflict(
            f"Verification run #{run.pk} analyses a canary step: promote or abort the canary "
            f"of deployment #{run.deployment_id} instead."
        )
    if not reason:
        raise ReleaseRefused("Say why: a reason is required.")
    _lead_refusal(run, user)
    reason = reason[: sizes.LINE]
    if action == RERUN:
        if run.status == VerificationStatus.RUNNING:
            raise Conflict(f"Verification run #{run.pk} is still measuring.")
        _still_runs(run)
        with transaction.atomic():
            audit_record(
                actor=actor,
                action=Engine.VERIFICATION_RERUN,
                target=run.deployment,
                context=context,
                after={"run": run.pk, "reason": reason},
            )
            fresh = verification_begin(run.deployment, actor=actor, context=context)
        if fresh is None:
            raise ReleaseRefused(f"No analysis template applies in {run.environment.name}.")
        return fresh
    if action == SKIP:
        if run.status not in (VerificationStatus.RUNNING, VerificationStatus.FAILED,
                              VerificationStatus.INCONCLUSIVE):  # fmt: skip
            raise Conflict(f"Verification run #{run.pk} is {run.get_status_display().lower()}.")
        _still_runs(run)
        with transaction.atomic():
            if run.status != VerificationStatus.RUNNING:
                # Skipping a finished run: a new run records the lead's word.
                run = VerificationRun.objects.create(
                    deployment=run.deployment,
                    release_id=run.release_id,
                    environment_id=run.environment_id,
                    service_id=run.service_id,
                )
            said = f"Skipped by {user.get_username()}: {reason}"
            ended = verification_end(
                run, VerificationStatus.SKIPPED, said, actor=actor, context=context, user=user
            )
            if not ended:
                raise Conflict(f"Verification run #{run.pk} ended meanwhile.")
        run.refresh_from_db()
        return run
    # continue / rollback: a judgement of an inconclusive run
    if run.status != VerificationStatus.INCONCLUSIVE or run.judgement:
        raise Conflict(
            f"Verification run #{run.pk} is {run.get_status_display().lower()}"
            + (f" and was judged already ({run.judgement})" if run.judgement else "")
            + ": only an inconclusive run awaits a judgement."
        )
    if action == Judgement.CONTINUE:
        _still_runs(run)
    with transaction.atomic():
        judged = VerificationRun.objects.filter(pk=run.pk, judgement="").update(
            judgement=action, decided_by=user
        )
        if not judged:
            raise Conflict(f"Verification run #{run.pk} was judged meanwhile.")
        live_decisions_changed()
        audit_record(
            actor=actor,
            action=Engine.VERIFICATION_JUDGED,
            target=run.deployment,
            context=context,
            after={"run": run.pk, "judgement": action, "reason": reason},
        )
        if action == Judgement.ROLLBACK:
            roll_back(run, actor=actor, user=user, context=context,
                      why=f"{user.get_username()} judged run #{run.pk}: {reason}")  # fmt: skip
    run.refresh_from_db()
    return run


def awaiting_judgement(user) -> list[VerificationRun]:
    """Inconclusive runs nobody judged, of the services where `user` is a lead."""
    runs = (
        VerificationRun.objects.filter(status=VerificationStatus.INCONCLUSIVE, judgement="")
        .select_related("service__team", "release", "environment", "deployment")
        .prefetch_related("measurements")
        .order_by("-id")
    )
    return [r for r in runs if has_role(user, r.service, Role.LEAD)]
