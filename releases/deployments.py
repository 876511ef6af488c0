"""Deployment requests: start, approve or reject, withdraw, expire, and start what waits.

A request to a protected environment waits for a lead (`awaiting_approval`) and holds
nothing; the environment's slot (one running deployment per service and environment,
a partial unique index) is taken only when it starts. The automatic deployment after a
build waits its turn (`queued`) when the environment is busy.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import IntegrityError, transaction

from doors.registry import RegistryError, RegistryUnreachable, image_check
from portal.access.choices import Role
from portal.access.permissions import has_role
from portal.audit.actions import Catalog
from portal.audit.chain import Actor, RequestContext, audit_record
from portal.catalog.freezes import active_freeze, describe
from portal.catalog.models import DeploymentTarget, Environment
from portal.catalog.registries import registry_access
from portal.core import sizes
from releases import dispatch
from releases.actions import DEPLOYMENT_REQUEST, Engine
from releases.changes import change_open, change_start_refusal, ticket_record
from releases.choices import (
    DEPLOYMENT_RUNNING,
    DEPLOYMENT_WAITING,
    DeploymentKind,
    DeploymentStatus,
)
from releases.errors import Conflict, DeploymentBusy, NotPermitted, ReleaseRefused
from releases.gates import gates_enforce
from releases.live import live_changed, live_decisions_changed
from releases.models import Approval, Deployment, Release, TargetRollout
from releases.policies import meets_all, missing_after, policy_for, vote_rule
from releases.policy_models import ApprovalVote
from releases.promotion import check_deployable, needs_approval, withdrawal_refusal
from releases.transitions import deployment_transition

# How a rejection's reason starts (the timeline tells a rejection from a withdrawal by it).
REJECTED_BY = "rejected by"
RUNNING_CONSTRAINT = "deployment_one_running_per_service_environment"
WAITING_CONSTRAINT = "deployment_one_waiting_per_release_environment"
VOTE_CONSTRAINT = "approval_vote_once"


def _violated(exc: IntegrityError) -> str:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", "") or ""


def _who(deployment: Deployment) -> str:
    return deployment.requested_by.get_username() if deployment.requested_by else "Slipway"


def busy_message(service_id: int, environment: Environment) -> str:
    """Name the deployment that holds the environment: who, what, since when."""
    running = (
        Deployment.objects.select_related("requested_by")
        .filter(service_id=service_id, environment=environment, status__in=DEPLOYMENT_RUNNING)
        .first()
    )
    if running is None:
        return f"{environment.name} was busy; try again."
    since = running.started_at or running.created_at
    return (
        f"{environment.name} is busy with deployment #{running.pk} (release "
        f"#{running.release_id}) by {_who(running)}, "
        f"{running.get_status_display().lower()} since {since:%H:%M:%S} UTC. "
        "Try again when it has finished."
    )


def _waiting_message(release: Release, environment: Environment) -> str:
    waiting = (
        Deployment.objects.select_related("requested_by")
        .filter(release=release, environment=environment, status__in=DEPLOYMENT_WAITING)
        .first()
    )
    if waiting is None:
        return f"Release #{release.pk} already has a request waiting for {environment.name}."
    return (
        f"Release #{release.pk} already waits for {environment.name}: deployment "
        f"#{waiting.pk} requested by {_who(waiting)} at {waiting.created_at:%H:%M:%S} UTC "
        f"is {waiting.get_status_display().lower()}."
    )


def freeze_check(
    *, service, environment: Environment, user, override_reason: str = ""
) -> dict | None:
    """Refuse a deployment into a frozen environment, unless a lead overrides the freeze
    with a reason; returns the override to record, or None when nothing is frozen."""
    freeze = active_freeze(service, environment)
    if freeze is None:
        return None
    reason = (override_reason or "").strip()
    if not reason:
        raise Conflict(f"{describe(freeze)}. A lead may override it with a reason.")
    if user is None or not has_role(user, service, Role.LEAD):
        raise NotPermitted("Only a lead may override a freeze.")
    return {"freeze": freeze.pk, "reason": reason[: sizes.LINE], "by": user.get_username()}


def _one_transaction(work: Callable[[], Deployment]) -> Deployment:
    """Run an action's checks and writes in one transaction. A refusal still commits what
    its checks recorded (each gate's result, shown on the release page) and is raised
    after; any other error undoes everything."""
    with transaction.atomic():
        try:
            return work()
        except ReleaseRefused as exc:
            refusal = exc
    raise refusal


def deployment_start(
    *,
    release: Release,
    environment: Environment,
    actor: Actor,
    user=None,
    kind: str = DeploymentKind.DEPLOY,
    context: RequestContext | None = None,
    wait_if_busy: bool = False,
    freeze_override: str = "",
    gate_override: str = "",
    targets: list[DeploymentTarget] | None = None,
    continues: Deployment | None = None,
    emergency_reason: str = "",
    train=None,
) -> Deployment:
    """Deploy a built release to an environment: the same image digest, never a rebuild;
    to each of the service's targets there (its clusters), wave after wave.

    The path rule (promotion.py), freezes, the registry and the gates are checked in the
    transaction that records the request, again on approval and again when the worker
    starts. `wait_if_busy`: queue behind a running deployment instead of refusing.
    `freeze_override`, `gate_override`: a lead's reason to deploy anyway. `targets` and
    `continues`: a lead's retry or skip goes on with some clusters of a deployment that
    stopped (releases/waves.py); it needs no other approval. Where the environment has a
    change system, the change request is opened last (releases/changes.py);
    `emergency_reason`: a lead's emergency change. `train`: started by an approved release
    train (releases/trains.py), whose approval stands for this one.
    """

    def start() -> Deployment:
        check_deployable(release=release, environment=environment, kind=kind)
        override = freeze_check(
            service=release.service,
            environment=environment,
            user=user,
            override_reason=freeze_override,
        )
        waves = targets if targets is not None else environment_targets(release, environment)
        if not waves:
            raise ReleaseRefused(f"{release.service.name} has no target in {environment.name}.")
        if kind != DeploymentKind.DEPLOY:
            _image_in_registry(release)
        gates = gates_enforce(
            release=release,
            environment=environment,
            kind=kind,
            user=user,
            override_reason=gate_override,
        )
        status = (
            DeploymentStatus.AWAITING_APPROVAL
            if needs_approval(environment, kind) and continues is None and train is None
            else DeploymentStatus.PENDING
        )
        opened = None
        if continues is None:
            opened = change_open(release=release, environment=environment, kind=kind, user=user,
                                 emergency_reason=emergency_reason)  # fmt: skip
        request = {"kind": kind, "actor": actor, "user": user, "context": context,
                   "override": override, "gates": gates, "continues": continues,
                   "opened": opened, "train": train}  # fmt: skip
        try:
            return _create(release, environment, waves, status, **request)
        except IntegrityError as exc:
            if _violated(exc) == WAITING_CONSTRAINT:
                raise Conflict(_waiting_message(release, environment)) from exc
            if not wait_if_busy:
                raise DeploymentBusy(busy_message(release.service_id, environment)) from exc
        try:
            return _create(release, environment, waves, DeploymentStatus.QUEUED, **request)
        except IntegrityError as exc:
            raise Conflict(_waiting_message(release, environment)) from exc

    return _one_transaction(start)


def _image_in_registry(release: Release) -> None:
    """A promotion or rollback is refused at once when its image is gone from the registry;
    a registry that does not answer now does not refuse it (the worker checks again, with
    retries, before deploying)."""
    registry = release.service.registry
    if registry is None:
        return
    try:
        image_check(
            registry=registry_access(registry),
            image_repository=release.image_repository,
            digest=release.image_digest,
        )
    except RegistryUnreachable:
        return
    except RegistryError as exc:
        raise ReleaseRefused(f"{str(exc)[0].upper()}{str(exc)[1:]}.") from exc


def environment_targets(release: Release, environment: Environment) -> list[DeploymentTarget]:
    """The service's targets in the environment, in wave order."""
    return list(
        DeploymentTarget.objects.select_related("cluster")
        .filter(service=release.service_id, environment=environment)
        .order_by("wave", "id")
    )


def _create(
    release, environment, targets, status, *, kind, actor, user, context, override, gates,
    continues, opened, train,
) -> Deployment:  # fmt: skip
    with transaction.atomic():
        deployment = Deployment.objects.create(
            release=release,
            environment=environment,
            service_id=release.service_id,
            requested_by=user,
            kind=kind,
            image=release.image,
            status=status,
            freeze_override=override,
            gate_override=gates,
            approval_policy=(
                policy_for(service=release.service, environment=environment)
                if status == DeploymentStatus.AWAITING_APPROVAL
                else None
            ),
        )
        TargetRollout.objects.bulk_create(
            TargetRollout(deployment=deployment, target=target, wave=target.wave)
            for target in targets
        )
        audit_record(
            actor=actor,
            action=DEPLOYMENT_REQUEST[kind],
            target=deployment,
            context=context,
            after={
                "release": release.pk,
                "environment": environment.slug,
                "image": release.image,
                "status": status,
                "clusters": [target.cluster.name for target in targets],
                **({"continues": continues.pk} if continues else {}),
                **({"train": train.pk} if train else {}),
            },
        )
        if opened is not None:
            ticket_record(deployment=deployment, opened=opened, actor=actor, context=context)
        for action, value in ((Catalog.FREEZE_OVERRIDE, override), (Engine.GATE_OVERRIDE, gates)):
            if value:
                audit_record(
                    actor=actor, action=action, target=deployment, context=context, after=value
                )
        if status == DeploymentStatus.PENDING:
            dispatch.advance_deployment(deployment)
    return deployment


def _record_override(deployment: Deployment, field: str, value: dict, action, **who) -> None:
    """Store a lead's override on the deployment and audit it."""
    Deployment.objects.filter(pk=deployment.pk).update(**{field: value})
    setattr(deployment, field, value)
    audit_record(action=action, target=deployment, after=value, **who)


def deployment_decide(
    *,
    deployment: Deployment,
    user,
    approve: bool,
    actor: Actor,
    comment: str = "",
    context: RequestContext | None = None,
    freeze_override: str = "",
    gate_override: str = "",
    represented_as: str = "",
) -> Deployment:
    """Someone the request's approval policy counts approves or rejects it. An approval
    counts for one rule (`represented_as`, or the first unmet rule they count for); the one
    that meets the last rule starts the deployment (it takes the environment's slot). A
    rejection cancels it. The path, freeze and gate checks run again, in the transaction of
    the approval that starts it: approving a busy or frozen environment is refused and the
    request waits on (a lead may override a freeze or the gates with a reason)."""

    def decide() -> Deployment:
        rule, state = vote_rule(
            deployment=deployment, user=user, approve=approve, represented_as=represented_as
        )
        said = comment[: sizes.PARAGRAPH]
        vote = {"deployment": deployment, "user": user, "rule_id": rule.id,
                "represented_as": rule.name, "approved": approve, "comment": said}  # fmt: skip
        who = {"actor": actor, "context": context}
        if approve and not meets_all(state, rule):
            ApprovalVote.objects.create(**vote)
            live_decisions_changed()
            live_changed(service_id=deployment.service_id, release_id=deployment.release_id,
                         deployment_id=deployment.pk)  # fmt: skip
            audit_record(
                action=Engine.APPROVAL_COUNTED,
                target=deployment,
                after={
                    "rule": rule.name,
                    "by": user.get_username(),
                    "comment": said,
                    "policy": state.policy.name,
                    "still_missing": missing_after(state, rule),
                },
                **who,
            )
            return deployment
        override = gates = None
        if approve:
            check_deployable(
                release=deployment.release,
                environment=deployment.environment,
                kind=deployment.kind,
            )
            if deployment.freeze_override is None:
                override = freeze_check(
                    service=deployment.service,
                    environment=deployment.environment,
                    user=user,
                    override_reason=freeze_override,
                )
            if deployment.gate_override is None:
                # The gates are checked again: Beta may have gone bad since the request.
                gates = gates_enforce(
                    release=deployment.release,
                    environment=deployment.environment,
                    kind=deployment.kind,
                    user=user,
                    override_reason=gate_override,
                )
            waits_for_change = change_start_refusal(deployment)
            if waits_for_change:
                raise Conflict(waits_for_change)
        to = DeploymentStatus.PENDING if approve else DeploymentStatus.CANCELLED
        reason = "" if approve else f"{REJECTED_BY} {user.get_username()}: {comment}".strip(": ")
        note = {"comment": said} if comment else {}
        if state.policy.id is not None:
            note |= {"rule": rule.name, "policy": state.policy.name}
        with transaction.atomic():  # a savepoint: a busy environment undoes only this
            if not deployment_transition(
                deployment=deployment,
                to=to,
                actor=actor,
                reason=reason,
                context=context,
                note=note or None,
            ):
                raise Conflict(f"Deployment #{deployment.pk} was decided or withdrawn meanwhile.")
            ApprovalVote.objects.create(**vote)
            Approval.objects.create(
                deployment=deployment, decided_by=user, approved=approve, comment=said
            )
            if gates:
                _record_override(deployment, "gate_override", gates, Engine.GATE_OVERRIDE, **who)
            if override:
                _record_override(
                    deployment, "freeze_override", override, Catalog.FREEZE_OVERRIDE, **who
                )
            if approve:
                dispatch.advance_deployment(deployment)
        return deployment

    try:
        return _one_transaction(decide)
    except IntegrityError as exc:
        if _violated(exc) == VOTE_CONSTRAINT:
            raise Conflict(
                f"You already decided on deployment #{deployment.pk}; each person counts once."
            ) from exc
        deployment.status = DeploymentStatus.AWAITING_APPROVAL
        raise DeploymentBusy(
            busy_message(deployment.service_id, deployment.environment)
            + " The request keeps waiting for approval."
        ) from exc


def deployment_withdraw(
    *, deployment: Deployment, user, actor: Actor, context: RequestContext | None = None
) -> Deployment:
    """The requester or a lead withdraws a request that has not touched the cluster."""
    refusal = withdrawal_refusal(deployment=deployment, user=user)
    if refusal:
        raise refusal
    if not deployment_transition(
        deployment=deployment,
        to=DeploymentStatus.CANCELLED,
        actor=actor,
        reason=f"withdrawn by {user.get_username()}",
        context=context,
    ):
        deployment.refresh_from_db()
        raise Conflict(
            f"Deployment #{deployment.pk} is {deployment.get_status_display().lower()}; "
            "only a waiting or pending deployment can be withdrawn."
        )
    return deployment
