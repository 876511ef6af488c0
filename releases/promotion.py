"""The rules of the path to Prod: what an environment runs now, what may go where next,
who may roll back, and who may approve.

Promotion rule: a release may be deployed to an environment only while it is what the
environment before it (by order) runs **now**: its latest deployment there that changed
what runs, succeeded, and was not followed by another one since. It is checked when a
deployment is requested, again when a lead approves it, and again when the worker starts
it. A rollback instead redeploys a release that once succeeded in that environment.
"""

from __future__ import annotations

from django.db.models import F, Q

from portal.access.choices import Role
from portal.access.permissions import has_role
from portal.catalog.models import Environment, Service
from releases.choices import DeploymentKind, DeploymentStatus, ReleaseStatus
from releases.errors import Conflict, NotPermitted, PromotionRefused, ReleaseRefused
from releases.models import Deployment, Release

# Deployments that changed what an environment runs: a success, or a failure after helm
# upgraded it (the environment then runs a broken release). A rolled-back deployment
# restored what ran before, and one that failed before helm changed nothing.
CHANGED_WHAT_RUNS = Q(status=DeploymentStatus.SUCCEEDED) | Q(
    status=DeploymentStatus.FAILED, helm_revision__isnull=False
)


def environment_last_change(*, service: Service | int, environment: Environment | int):
    """The deployment that last changed what runs there, or None if none ever did."""
    return (
        Deployment.objects.select_related("release", "requested_by")
        .filter(CHANGED_WHAT_RUNS, service=service, environment=environment)
        .order_by(F("finished_at").desc(nulls_last=True), "-id")
        .first()
    )


def environment_current_deployment(
    *, service: Service | int, environment: Environment | int
) -> Deployment | None:
    """The deployment whose release runs there now (None: nothing, or a failed one)."""
    last = environment_last_change(service=service, environment=environment)
    return last if last is not None and last.status == DeploymentStatus.SUCCEEDED else None


def previous_environment(service: Service, environment: Environment) -> Environment | None:
    """The environment before this one on the service's path (by order), if any."""
    return (
        Environment.objects.filter(targets__service=service, order__lt=environment.order)
        .order_by("-order")
        .first()
    )


def _short(digest: str) -> str:
    return digest[:19] + "…" if digest else "no digest"


def promotion_refusal(*, release: Release, environment: Environment) -> str | None:
    """Why `release` may not go to `environment` now, or None when it may."""
    before = previous_environment(release.service, environment)
    if before is None:
        return None
    last = environment_last_change(service=release.service_id, environment=before)
    if last is None:
        return (
            f"Release #{release.pk} cannot go to {environment.name}: nothing runs in "
            f"{before.name} yet. Deploy it to {before.name} first."
        )
    if last.status != DeploymentStatus.SUCCEEDED:
        return (
            f"Release #{release.pk} cannot go to {environment.name}: {before.name}'s last "
            f"deployment #{last.pk} (release #{last.release_id}) failed, so {before.name} runs "
            f"no good release now."
        )
    if last.release_id != release.pk:
        since = last.finished_at.strftime("%Y-%m-%d %H:%M UTC") if last.finished_at else "?"
        return (
            f"Release #{release.pk} is not what {before.name} runs now: {before.name} runs "
            f"release #{last.release_id} ({last.release.ref}, {_short(last.release.image_digest)})"
            f" since {since}. Promote that one, or deploy #{release.pk} to {before.name} first."
        )
    return None


def rollback_refusal(*, release: Release, environment: Environment) -> str | None:
    """Why `release` may not be rolled back to in `environment`, or None when it may."""
    if not Deployment.objects.filter(
        release=release, environment=environment, status=DeploymentStatus.SUCCEEDED
    ).exists():
        return (
            f"Release #{release.pk} never succeeded in {environment.name}; "
            "a rollback goes back to a release that did."
        )
    return None


def deployment_refusal(*, release: Release, environment: Environment, kind: str) -> str | None:
    """The path rule for this kind of deployment: promotion order, or rollback history."""
    if kind == DeploymentKind.ROLLBACK:
        return rollback_refusal(release=release, environment=environment)
    return promotion_refusal(release=release, environment=environment)


def check_deployable(*, release: Release, environment: Environment, kind: str) -> None:
    """Raise the refusal of deploying `release` to `environment` as `kind`, if any."""
    if release.status != ReleaseStatus.BUILT:
        raise ReleaseRefused(
            f"Release #{release.pk} is {release.get_status_display().lower()}, "
            "not built: only a built release can be deployed."
        )
    refusal = deployment_refusal(release=release, environment=environment, kind=kind)
    if refusal:
        raise PromotionRefused(refusal)


def release_promotion_target(*, release: Release) -> Environment | None:
    """Where a built release may go next: the first environment on its service's path it
    does not run in, provided the environment before that one runs it now."""
    if release.status != ReleaseStatus.BUILT:
        return None
    for environment in Environment.objects.filter(targets__service=release.service_id).order_by(
        "order"
    ):
        current = environment_current_deployment(
            service=release.service_id, environment=environment
        )
        if current is not None and current.release_id == release.pk:
            continue
        if promotion_refusal(release=release, environment=environment) is None:
            return environment
        return None
    return None


def deployment_role_needed(kind: str) -> str:
    """Developers deploy and promote; rolling an environment back is a lead's call."""
    return Role.LEAD if kind == DeploymentKind.ROLLBACK else Role.DEVELOPER


def needs_approval(environment: Environment, kind: str) -> bool:
    """Protected environments wait for a lead; a lead's rollback does not."""
    return environment.requires_approval and kind != DeploymentKind.ROLLBACK


def decision_refusal(*, deployment: Deployment, user) -> ReleaseRefused | None:
    """Why `user` may not approve or reject this deployment, or None if they may."""
    if not has_role(user, deployment.service, Role.LEAD):
        return NotPermitted(f"Only a lead of {deployment.service.team} may approve or reject.")
    if deployment.requested_by_id == user.pk:
        return NotPermitted("A lead other than the requester must approve.")
    if deployment.status != DeploymentStatus.AWAITING_APPROVAL:
        return Conflict(
            f"Deployment #{deployment.pk} is {deployment.get_status_display().lower()}, "
            "not awaiting approval."
        )
    return None


def withdrawal_refusal(*, deployment: Deployment, user) -> ReleaseRefused | None:
    """Why `user` may not withdraw this deployment, or None if they may: the requester or
    a lead, while it waits or is pending (nothing has touched the cluster)."""
    if deployment.requested_by_id != user.pk and not has_role(user, deployment.service, Role.LEAD):
        return NotPermitted(
            f"Only whoever requested it or a lead of {deployment.service.team} may withdraw it."
        )
    return None
