"""Whether a release is *verified* in an environment (see releases/verifying.py): its
latest verification run there ended successful, was skipped by a lead, or was judged good
by a lead when inconclusive. Promotion asks `refusal`; a rollback after a failed run goes
to `last_verified_release`."""

from __future__ import annotations

from django.db.models import Q

from portal.catalog.models import Environment
from portal.core import sizes
from releases.choices import VERIFIED, Judgement, VerificationStatus
from releases.models import AnalysisMetric, AnalysisTemplate, Release, VerificationRun

# A run counts as verified: ended well, skipped by a lead, or judged good by one.
VERIFIED_RUN = Q(status__in=VERIFIED) | Q(
    status=VerificationStatus.INCONCLUSIVE, judgement=Judgement.CONTINUE
)


def templates_for(service_id: int, environment: Environment | int) -> list[AnalysisTemplate]:
    """The enabled templates measuring this service in this environment."""
    return list(
        AnalysisTemplate.objects.filter(environment=environment, enabled=True)
        .filter(Q(service__isnull=True) | Q(service=service_id))
        .prefetch_related("metrics")
        .order_by("name", "id")
    )


def template_metrics(
    templates: list[AnalysisTemplate],
) -> list[tuple[AnalysisTemplate, AnalysisMetric]]:
    return [(t, m) for t in templates for m in t.metrics.all()]


def is_configured(service_id: int, environment: Environment | int) -> bool:
    return any(t.metrics.all() for t in templates_for(service_id, environment))


def latest_run(release: Release | int, environment: Environment | int) -> VerificationRun | None:
    return (
        VerificationRun.objects.filter(
            release=release, environment=environment, canary_step__isnull=True
        )
        .order_by("-id")
        .first()
    )


def is_verified(run: VerificationRun | None) -> bool:
    """Whether the run makes its release verified in its environment (a canary step's
    analysis never does: the release did not run there in full)."""
    return (
        run is not None
        and run.canary_step is None
        and (
            run.status in VERIFIED
            or (
                run.status == VerificationStatus.INCONCLUSIVE
                and run.judgement == Judgement.CONTINUE
            )
        )
    )


def refusal(*, release: Release, environment: Environment) -> str | None:
    """Why `release` may not leave `environment` for lack of verification, or None."""
    if not is_configured(release.service_id, environment):
        return None
    run = latest_run(release, environment)
    if is_verified(run):
        return None
    if run is None:
        said = "has not been verified there"
    elif run.status == VerificationStatus.RUNNING:
        said = f"is still being verified there (run #{run.pk})"
    elif run.status == VerificationStatus.INCONCLUSIVE:
        said = f"has an inconclusive verification there (run #{run.pk}) that a lead has not judged"
    else:
        said = f"failed its verification there (run #{run.pk}: {run.reason[: sizes.QUOTE]})"
    return (
        f"Release #{release.pk} {said}; only a release verified in {environment.name} may be "
        "promoted from it. A lead may re-run or skip the verification."
    )


def last_verified_release(
    *, service_id: int, environment: Environment, besides: int
) -> Release | None:
    """The release most recently verified in the environment, other than `besides`."""
    run = (
        VerificationRun.objects.filter(
            VERIFIED_RUN, service=service_id, environment=environment, canary_step__isnull=True
        )
        .exclude(release=besides)
        .select_related("release")
        .order_by("-id")
        .first()
    )
    return run.release if run else None
