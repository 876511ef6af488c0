"""Statuses of releases and deployments, and the transitions allowed between them."""

from django.db import models


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
RELEASE_ACTIVE = (ReleaseStatus.REQUESTED, ReleaseStatus.QUEUED, ReleaseStatus.BUILDING)


class DeploymentStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    PENDING = "pending", "Pending"
    DEPLOYING = "deploying", "Running helm upgrade"
    ROLLING_OUT = "rolling_out", "Rolling out"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Failed, rolled back"
    CANCELLED = "cancelled", "Cancelled"


DEPLOYMENT_TRANSITIONS: dict[str, set[str]] = {
    DeploymentStatus.AWAITING_APPROVAL: {DeploymentStatus.PENDING, DeploymentStatus.CANCELLED},
    DeploymentStatus.PENDING: {
        DeploymentStatus.DEPLOYING,
        DeploymentStatus.FAILED,
        DeploymentStatus.CANCELLED,
    },
    DeploymentStatus.DEPLOYING: {DeploymentStatus.ROLLING_OUT, DeploymentStatus.FAILED},
    DeploymentStatus.ROLLING_OUT: {
        DeploymentStatus.SUCCEEDED,
        DeploymentStatus.FAILED,
        DeploymentStatus.ROLLED_BACK,
    },
    DeploymentStatus.SUCCEEDED: set(),
    DeploymentStatus.FAILED: set(),
    DeploymentStatus.ROLLED_BACK: set(),
    DeploymentStatus.CANCELLED: set(),
}
# In flight: holds the service+environment slot (one at a time).
DEPLOYMENT_ACTIVE = (
    DeploymentStatus.AWAITING_APPROVAL,
    DeploymentStatus.PENDING,
    DeploymentStatus.DEPLOYING,
    DeploymentStatus.ROLLING_OUT,
)
# Running: a worker owns it, so a silent one is resumed.
DEPLOYMENT_RUNNING = (
    DeploymentStatus.PENDING,
    DeploymentStatus.DEPLOYING,
    DeploymentStatus.ROLLING_OUT,
)


def allowed_sources(transitions: dict[str, set[str]], target: str) -> list[str]:
    """The statuses from which `target` may be reached."""
    return [source for source, targets in transitions.items() if target in targets]
