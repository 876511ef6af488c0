"""The release engine's audit actions (see portal/audit/actions.py): a release's and a
deployment's every status change, derived from the status tables, and the engine's other
acts, each with the words a timeline shows and the notification it announces."""

from __future__ import annotations

from portal.audit.actions import Action, Notify
from releases.choices import DeploymentKind, DeploymentStatus, ReleaseStatus, VerificationStatus

# What a release's move to each status is called on its timeline.
_RELEASE_LABELS = {
    ReleaseStatus.QUEUED: "Queued in Jenkins",
    ReleaseStatus.BUILDING: "Build started",
    ReleaseStatus.BUILT: "Built",
    ReleaseStatus.FAILED: "Build failed",
    ReleaseStatus.CANCELLED: "Build cancelled",
}
RELEASE_STATUS = {
    status: Action(
        f"release.{status}",
        _RELEASE_LABELS.get(status, ReleaseStatus(status).label),
        failed=status in (ReleaseStatus.FAILED, ReleaseStatus.CANCELLED),
        notify=Notify.BUILD_FAILED if status == ReleaseStatus.FAILED else "",
    )
    for status in ReleaseStatus.values
}

_DEPLOYMENT_LABELS = {
    DeploymentStatus.PENDING: "Pending",
    DeploymentStatus.DEPLOYING: "helm upgrade started",
    DeploymentStatus.ROLLING_OUT: "Rolling out",
    DeploymentStatus.CANARY: "Canary started beside the stable release",
    DeploymentStatus.SUCCEEDED: "Rolled out",
    DeploymentStatus.FAILED: "Failed",
    DeploymentStatus.ROLLED_BACK: "Failed, rolled back",
    DeploymentStatus.CANCELLED: "Cancelled",
}
_DEPLOYMENT_NOTIFY = {
    DeploymentStatus.SUCCEEDED: Notify.DEPLOYED,
    DeploymentStatus.FAILED: Notify.ROLLOUT_FAILED,
    DeploymentStatus.ROLLED_BACK: Notify.ROLLOUT_FAILED,
}
DEPLOYMENT_STATUS = {
    status: Action(
        f"deployment.{status}",
        _DEPLOYMENT_LABELS.get(status, DeploymentStatus(status).label),
        failed=status
        in (DeploymentStatus.FAILED, DeploymentStatus.ROLLED_BACK, DeploymentStatus.CANCELLED),
        notify=_DEPLOYMENT_NOTIFY.get(status, ""),
    )
    for status in DeploymentStatus.values
}
# A request for a deployment, by kind (`deployment.promote`); waiting for approval, it
# announces `awaiting_approval` (notifications/events.py reads its status).
DEPLOYMENT_REQUEST = {
    kind: Action(f"deployment.{kind}", f"{DeploymentKind(kind).label} requested")
    for kind in DeploymentKind.values
}

# A verification run's end, by status (its audit target is the deployment it verifies).
VERIFICATION_STATUS = {
    VerificationStatus.SUCCESSFUL: Action("verification.successful", "Verification successful"),
    VerificationStatus.FAILED: Action(
        "verification.failed", "Verification failed", failed=True,
        notify=Notify.VERIFICATION_FAILED,
    ),
    VerificationStatus.INCONCLUSIVE: Action(
        "verification.inconclusive", "Verification inconclusive: a lead decides",
        notify=Notify.JUDGEMENT,
    ),
    VerificationStatus.SKIPPED: Action("verification.skipped", "Verification skipped by a lead"),
}  # fmt: skip


class Engine:
    RELEASE_CREATE = Action("release.create", "Build requested")
    RELEASE_CANCEL_REQUESTED = Action("release.cancel_requested", "Cancel requested")
    RELEASE_RESUME = Action("release.resume", "Worker lost; resumed")
    DEPLOY_SKIPPED = Action(
        "release.deploy_skipped", "Deployment after the build skipped", failed=True
    )
    DEPLOYMENT_RESUME = Action("deployment.resume", "Worker lost; resumed")
    CLUSTER_ROLLED_OUT = Action("deployment.cluster_rolled_out", "Rolled out on a cluster")
    CLUSTER_RETRIED = Action("deployment.cluster_retried", "A lead retried a cluster")
    CLUSTER_SKIPPED = Action("deployment.cluster_skipped", "A lead skipped a cluster")
    HELM_RECOVERED = Action("helm.recovered", "Stuck Helm release recovered")
    APPROVAL_COUNTED = Action("deployment.approval_counted", "Approval counted for a rule")
    CHANGE_OPENED = Action("change.opened", "Change request opened")
    CHANGE_EMERGENCY = Action("change.emergency", "Emergency change")
    CHANGE_CLOSED = Action("change.closed", "Change request closed")
    TRAIN_CREATE = Action("train.create", "Release train made")
    TRAIN_APPROVAL_COUNTED = Action("train.approval_counted", "Train approval counted for a rule")
    TRAIN_APPROVED = Action("train.approved", "Release train approved")
    TRAIN_SUCCEEDED = Action("train.succeeded", "Release train went out")
    TRAIN_FAILED = Action("train.failed", "Release train stopped at a failure", failed=True)
    TRAIN_CANCELLED = Action("train.cancelled", "Release train cancelled", failed=True)
    GATE_OVERRIDE = Action("gate.override", "Promotion gates overridden")
    CHECKLIST_TICKED = Action("gate.checklist_ticked", "Checklist item ticked")
    DRIFT_DETECTED = Action("drift.detected", "Drift detected", failed=True, notify=Notify.DRIFT)
    DRIFT_RESOLVED = Action("drift.resolved", "Drift resolved")
    CANARY_STEP = Action("canary.step", "Canary traffic weight set")
    CANARY_PROMOTED = Action("canary.promoted", "A lead promoted the canary")
    CANARY_ABORTED = Action("canary.aborted", "Canary aborted", failed=True)
    CANARY_ABORT_ASKED = Action("canary.abort_requested", "A lead aborted the canary")
    CANARY_REMOVED = Action("canary.removed", "Canary Helm release removed")
    VERIFICATION_STARTED = Action("verification.started", "Verification started")
    VERIFICATION_RERUN = Action("verification.rerun", "Verification re-run by a lead")
    VERIFICATION_JUDGED = Action(
        "verification.judged", "A lead judged an inconclusive verification"
    )
    AUTO_ROLLBACK = Action(
        "verification.rollback",
        "Rolled back to the last verified release",
        failed=True,
        notify=Notify.ROLLED_BACK,
    )
