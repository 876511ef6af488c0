"""Statuses of releases and deployments, the transitions allowed between them, and the
sets the rest of the code derives from those tables (never spelled again elsewhere)."""

from django.db import models


def terminal(transitions: dict[str, set[str]]) -> frozenset[str]:
    """The statuses nothing leaves."""
    return frozenset(status for status, targets in transitions.items() if not targets)


def allowed_sources(transitions: dict[str, set[str]], target: str) -> list[str]:
    """The statuses from which `target` may be reached."""
    return [source for source, targets in transitions.items() if target in targets]


class ReleaseStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    QUEUED = "queued", "Queued in Jenkins"
    BUILDING = "building", "Building"
    BUILT = "built", "Built"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


RELEASE_TRANSITIONS: dict[str, set[str]] = {
    ReleaseStatus.REQUESTED: {
        ReleaseStatus.QUEUED,
        ReleaseStatus.BUILDING,
        ReleaseStatus.FAILED,
        ReleaseStatus.CANCELLED,
    },
    ReleaseStatus.QUEUED: {ReleaseStatus.BUILDING, ReleaseStatus.FAILED, ReleaseStatus.CANCELLED},
    ReleaseStatus.BUILDING: {ReleaseStatus.BUILT, ReleaseStatus.FAILED, ReleaseStatus.CANCELLED},
    ReleaseStatus.BUILT: set(),
    ReleaseStatus.FAILED: set(),
    ReleaseStatus.CANCELLED: set(),
}
RELEASE_TERMINAL = terminal(RELEASE_TRANSITIONS)
# Being built: a worker owns it, so a silent one is resumed.
RELEASE_ACTIVE = tuple(s for s in ReleaseStatus.values if s not in RELEASE_TERMINAL)


class DeploymentStatus(models.TextChoices):
    QUEUED = "queued", "Waiting for the environment"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    PENDING = "pending", "Pending"
    DEPLOYING = "deploying", "Running helm upgrade"
    ROLLING_OUT = "rolling_out", "Rolling out"
    CANARY = "canary", "Canary: part of the traffic"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Failed, rolled back"
    CANCELLED = "cancelled", "Cancelled"


# A deployment in these waits on the cluster (the rollouts queue's threads); in the steps
# before them it runs helm (the deploys queue's processes).
DEPLOYMENT_WATCHING = (DeploymentStatus.ROLLING_OUT, DeploymentStatus.CANARY)

DEPLOYMENT_TRANSITIONS: dict[str, set[str]] = {
    DeploymentStatus.QUEUED: {DeploymentStatus.PENDING, DeploymentStatus.CANCELLED},
    DeploymentStatus.AWAITING_APPROVAL: {DeploymentStatus.PENDING, DeploymentStatus.CANCELLED},
    DeploymentStatus.PENDING: {
        DeploymentStatus.DEPLOYING,
        DeploymentStatus.FAILED,
        DeploymentStatus.CANCELLED,
    },
    DeploymentStatus.DEPLOYING: {
        DeploymentStatus.ROLLING_OUT,
        DeploymentStatus.CANARY,  # canary steps: the new digest beside the stable release
        DeploymentStatus.FAILED,
    },
    DeploymentStatus.ROLLING_OUT: {
        DeploymentStatus.DEPLOYING,  # the next wave: another cluster
        DeploymentStatus.SUCCEEDED,
        DeploymentStatus.FAILED,
        DeploymentStatus.ROLLED_BACK,
    },
    DeploymentStatus.CANARY: {
        DeploymentStatus.DEPLOYING,  # the last step: the stable release gets the digest
        DeploymentStatus.FAILED,
        DeploymentStatus.ROLLED_BACK,  # a failed step or a lead's abort: canary removed
    },
    DeploymentStatus.SUCCEEDED: set(),
    DeploymentStatus.FAILED: set(),
    DeploymentStatus.ROLLED_BACK: set(),
    DeploymentStatus.CANCELLED: set(),
}
DEPLOYMENT_TERMINAL = terminal(DEPLOYMENT_TRANSITIONS)
# Waiting for a lead's decision or for the environment to free up: holds nothing.
DEPLOYMENT_WAITING = (DeploymentStatus.QUEUED, DeploymentStatus.AWAITING_APPROVAL)
# Running: holds the service+environment slot (one at a time), a worker owns it, and a
# silent one is resumed.
DEPLOYMENT_RUNNING = tuple(
    s
    for s in DeploymentStatus.values
    if s not in DEPLOYMENT_TERMINAL and s not in DEPLOYMENT_WAITING
)
# Not finished: waiting or running.
DEPLOYMENT_OPEN = DEPLOYMENT_WAITING + DEPLOYMENT_RUNNING
# What the requester or a lead may still withdraw: nothing has touched the cluster yet.
DEPLOYMENT_WITHDRAWABLE = tuple(allowed_sources(DEPLOYMENT_TRANSITIONS, DeploymentStatus.CANCELLED))


class RolloutStatus(models.TextChoices):
    """A deployment's rollout to one target (one cluster)."""

    WAITING = "waiting", "Waiting for its wave"
    DEPLOYING = "deploying", "Running helm upgrade"
    ROLLING_OUT = "rolling_out", "Rolling out"
    CANARY = "canary", "Canary: part of the traffic"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Failed, rolled back"
    SKIPPED = "skipped", "Skipped"


# A rollout that is over; SKIPPED when a wave before it failed (or a lead skipped it).
ROLLOUT_DONE = (
    RolloutStatus.SUCCEEDED,
    RolloutStatus.FAILED,
    RolloutStatus.ROLLED_BACK,
    RolloutStatus.SKIPPED,
)


class DeploymentKind(models.TextChoices):
    DEPLOY = "deploy", "Deploy"
    PROMOTE = "promote", "Promote"
    ROLLBACK = "rollback", "Roll back"


class GateKind(models.TextChoices):
    SOAK = "soak", "Soak time"
    PROMETHEUS = "prometheus", "Prometheus query"
    CHECKLIST = "checklist", "Checklist item"


class VerificationStatus(models.TextChoices):
    """A verification run of one deployment (docs/verification.md)."""

    RUNNING = "running", "Measuring"
    SUCCESSFUL = "successful", "Successful"
    FAILED = "failed", "Failed"
    INCONCLUSIVE = "inconclusive", "Inconclusive"
    SKIPPED = "skipped", "Skipped by a lead"


# The runs that make their digest "verified" in their environment; an inconclusive one
# does too once a lead judged it good ("continue").
VERIFIED = (VerificationStatus.SUCCESSFUL, VerificationStatus.SKIPPED)


class Judgement(models.TextChoices):
    """A lead's word on an inconclusive verification."""

    CONTINUE = "continue", "Continue"
    ROLLBACK = "rollback", "Roll back"


class MeasurementPhase(models.TextChoices):
    SUCCESSFUL = "successful", "Successful"
    FAILED = "failed", "Failed"
    INCONCLUSIVE = "inconclusive", "Inconclusive"
    ERROR = "error", "No value"


class CanaryPhase:
    """Where a canary step stands (a target rollout's `canary.phase`, releases/canary.py)."""

    ROLLING = "rolling"  # its pods roll out
    ANALYSING = "analysing"  # the step's verification run measures
    PAUSED = "paused"  # the step's pause, or a lead's word
    PROMOTING = "promoting"  # all traffic on the canary while the stable release upgrades
    PROMOTED = "promoted"  # the stable runs the digest; the canary is gone
    ABORTED = "aborted"  # weight 0, the canary is gone


# A canary still installed in the cluster.
CANARY_LIVE = (
    CanaryPhase.ROLLING,
    CanaryPhase.ANALYSING,
    CanaryPhase.PAUSED,
    CanaryPhase.PROMOTING,
)
