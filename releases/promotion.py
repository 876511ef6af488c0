"""The rules of the path to Prod: what an environment runs now, what may go where next,
who may roll back, and who may approve.

Promotion rule: a release may be deployed to an environment only while it is what the
environment before it (by order) runs **now**, on every one of its targets (clusters):
each target's latest rollout that changed what runs there succeeded with this release.
It is checked when a deployment is requested, again when a lead approves it, and again
when the worker starts it. A rollback instead redeploys a release that once succeeded in
that environment.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F, Q

from portal.access.choices import Role
from portal.access.permissions import has_role
from portal.catalog.models import DeploymentTarget, Environment, Service
from portal.catalog.service_file import orphan_refusal
from releases import verified
from releases.choices import DeploymentKind, ReleaseStatus, RolloutStatus
from releases.errors import Conflict, NotPermitted, PromotionRefused, ReleaseRefused
from releases.models import Deployment, Release, TargetRollout

# Rollouts that changed what a target runs: a success, or a failure after helm upgraded it
# (the cluster then runs a broken release). A rolled-back rollout restored what ran
# before; one that failed before helm, or was skipped, changed nothing.
CHANGED_WHAT_RUNS = Q(status=RolloutStatus.SUCCEEDED) | Q(
    status=RolloutStatus.FAILED, helm_revision__isnull=False
)


def target_last_change(target: DeploymentTarget | int) -> TargetRollout | None:
    """The rollout that last changed what runs on the target, or None if none ever did."""
    return (
        TargetRollout.objects.select_related("deployment__release", "deployment__requested_by")
        .filter(CHANGED_WHAT_RUNS, target=target)
        .order_by(F("finished_at").desc(nulls_last=True), "-id")
        .first()
    )


@dataclass
class EnvironmentRuns:
    """What a service runs in one environment, target by target (cluster by cluster)."""

    environment: Environment
    changes: list[tuple[DeploymentTarget, TargetRollout | None]]

    @property
    def several(self) -> bool:
        return len(self.changes) > 1

    def where(self, target: DeploymentTarget) -> str:
        return (
            f"{self.environment.name} on {target.cluster}"
            if self.several
            else (self.environment.name)
        )

    @property
    def current(self) -> Deployment | None:
        """The deployment whose release runs on every target now (the last to finish, when
        its waves went out in several deployments); None when a target runs nothing, a
        broken release, or another release."""
        if not self.changes or any(
            c is None or c.status != RolloutStatus.SUCCEEDED for _, c in self.changes
        ):
            return None
        releases = {c.deployment.release_id for _, c in self.changes}
        if len(releases) != 1:
            return None
        latest = max((c for _, c in self.changes), key=lambda c: (c.finished_at, c.pk))
        return latest.deployment


def environment_runs(*, service: Service | int, environment: Environment) -> EnvironmentRuns:
    """One lookup per target (an environment has a few)."""
    targets = DeploymentTarget.objects.select_related("cluster").filter(
        service=service, environment=environment
    )
    return EnvironmentRuns(
        environment, [(t, target_last_change(t)) for t in targets.order_by("wave", "id")]
    )


def environment_current_deployment(
    *, service: Service | int, environment: Environment
) -> Deployment | None:
    """The deployment whose release runs there now, on every target (None: nothing, a
    failed one, or the clusters run different releases)."""
    return environment_runs(service=service, environment=environment).current


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
    """Why `release` may not go to `environment` now, or None when it may: every target of
    the environment before must run it now."""
    before = previous_environment(release.service, environment)
    if before is None:
        return None
    runs = environment_runs(service=release.service_id, environment=before)
    for target, last in runs.changes:
        where = runs.where(target)
        if last is None:
            return (
                f"Release #{release.pk} cannot go to {environment.name}: nothing runs in "
                f"{where} yet. Deploy it to {before.name} first."
            )
        ran = last.deployment
        if last.status != RolloutStatus.SUCCEEDED:
            return (
                f"Release #{release.pk} cannot go to {environment.name}: {where}'s last "
                f"deployment #{ran.pk} (release #{ran.release_id}) failed, so {where} runs "
                "no good release now."
            )
        if ran.release_id != release.pk:
            since = last.finished_at.strftime("%Y-%m-%d %H:%M UTC") if last.finished_at else "?"
            return (
                f"Release #{release.pk} is not what {where} runs now: {where} runs release "
                f"#{ran.release_id} ({ran.release.ref}, {_short(ran.release.image_digest)}) "
                f"since {since}. Promote that one, or deploy #{release.pk} to {before.name} "
                "first."
            )
    return verified.refusal(release=release, environment=before)


def rollback_refusal(*, release: Release, environment: Environment) -> str | None:
    """Why `release` may not be rolled back to in `environment`, or None when it may."""
    if not TargetRollout.objects.filter(
        deployment__release=release,
        deployment__environment=environment,
        status=RolloutStatus.SUCCEEDED,
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
    if release.service.orphaned_at:
        raise Conflict(orphan_refusal(release.service))
    if release.status != ReleaseStatus.BUILT:
        raise Conflict(
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
    environments = Environment.objects.filter(targets__service=release.service_id).distinct()
    for environment in environments.order_by("order"):
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


def withdrawal_refusal(*, deployment: Deployment, user) -> ReleaseRefused | None:
    """Why `user` may not withdraw this deployment, or None if they may: the requester or
    a lead, while it waits or is pending (nothing has touched the cluster)."""
    if deployment.requested_by_id != user.pk and not has_role(user, deployment.service, Role.LEAD):
        return NotPermitted(
            f"Only whoever requested it or a lead of {deployment.service.team} may withdraw it."
        )
    return None
