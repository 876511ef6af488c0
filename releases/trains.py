"""Release trains: several services' releases promoted to one environment together, in
order, with one approval; the train stops at the first failure and says what ran where.

A train is checked when it is made (each release built, each service once, each allowed
to go there now) and approved once, under the environment's policy for every team (a
policy without a team), its role rules counted per team of the train; without one, a
lead of each team. Once approved it starts each release's deployment in turn (without a
second approval: the train's stands for it), waits for it to end, and goes on only if it
succeeded. Each deployment is checked again when it starts (path, freeze, gates).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from portal.access.choices import Role
from portal.access.permissions import has_role, team_roles
from portal.audit.chain import Actor, RequestContext, audit_record
from portal.catalog.models import Environment
from portal.core import sizes
from releases import dispatch
from releases.actions import Engine
from releases.choices import DEPLOYMENT_TERMINAL, DeploymentKind, DeploymentStatus, ReleaseStatus
from releases.deployments import deployment_start
from releases.errors import Conflict, NotPermitted, ReleaseRefused, Unknown
from releases.live import live_decisions_changed
from releases.models import (
    ApprovalPolicy,
    ApprovalVote,
    ChangeSystem,
    Release,
    ReleaseTrain,
    TrainMember,
)
from releases.policies import (
    DEFAULT_POLICY,
    Approvable,
    Policy,
    PolicyState,
    Rule,
    awaiting_voter,
    choose_rule,
    may_vote,
    meets_all,
    missing_after,
    saved_policy,
    state_of,
)
from releases.promotion import promotion_refusal
from releases.train_models import TRAIN_OPEN, TrainMemberStatus, TrainStatus

MAX_RELEASES = 20
TRAIN = Actor.system("release train")


def _members(train: ReleaseTrain) -> list[TrainMember]:
    return list(
        train.members.select_related("release__service__team", "deployment").order_by("position")
    )


def train_policy(train: ReleaseTrain, members: list[TrainMember] | None = None) -> Policy:
    """The environment-wide policy (or the default), each role rule once per team."""
    base = saved_policy(train.approval_policy) if train.approval_policy_id else DEFAULT_POLICY
    teams = {}
    for member in members if members is not None else _members(train):
        team = member.release.service.team
        teams[team.pk] = team
    rules: list[Rule] = []
    for rule in base.rules:
        if not rule.role:
            rules.append(rule)
            continue
        for team in sorted(teams.values(), key=lambda t: t.name):
            rules.append(
                Rule(id=None, name=f"{rule.name} ({team.name})", required=rule.required,
                     role=rule.role, role_team_id=team.pk, role_team_name=team.name,
                     group_id=rule.group_id, group_name=rule.group_name)
            )  # fmt: skip
    return Policy(base.id, base.name, base.requester_may_approve, tuple(rules))


def of_train(train: ReleaseTrain) -> Approvable:
    return Approvable(
        label=f"train #{train.pk}",
        waiting=train.status == TrainStatus.AWAITING_APPROVAL,
        status=train.get_status_display().lower(),
        requested_by_id=train.requested_by_id,
        policy=train_policy(train),
        team_id=None,
        team_name="each team of the train",
        votes=list(train.votes.select_related("user")),
    )


def train_state(train: ReleaseTrain, *, candidates: bool = False) -> PolicyState:
    return state_of(of_train(train), candidates=candidates)


def train_create(
    *,
    name: str,
    environment: Environment,
    releases: list[int],
    user,
    actor: Actor,
    context: RequestContext | None = None,
) -> ReleaseTrain:
    """Make a train of `releases` (ids, in the order they go) to `environment`."""
    name = name.strip()
    if not name:
        raise ReleaseRefused("Give the train a name.")
    if not 2 <= len(releases) <= MAX_RELEASES:
        raise ReleaseRefused(f"A train carries 2 to {MAX_RELEASES} releases; got {len(releases)}.")
    if len(set(releases)) != len(releases):
        raise ReleaseRefused("A release appears twice in the train.")
    found = {
        r.pk: r for r in Release.objects.select_related("service__team").filter(pk__in=releases)
    }
    missing = [str(pk) for pk in releases if pk not in found]
    if missing:
        raise Unknown(f"No release {', '.join('#' + m for m in missing)}.")
    ordered = [found[pk] for pk in releases]
    services = [r.service_id for r in ordered]
    if len(set(services)) != len(services):
        raise ReleaseRefused("A train carries one release per service.")
    for release in ordered:
        if not has_role(user, release.service, Role.DEVELOPER):
            raise NotPermitted(
                f"You need the developer role in {release.service.team} to put "
                f"{release.service.name} on a train."
            )
        if release.status != ReleaseStatus.BUILT:
            raise ReleaseRefused(f"Release #{release.pk} ({release.service.name}) is not built.")
        refusal = promotion_refusal(release=release, environment=environment)
        if refusal:
            raise Conflict(f"{release.service.name}: {refusal}")
    system = ChangeSystem.objects.filter(environment=environment, enabled=True).first()
    if system is not None and system.require_approved:
        raise ReleaseRefused(
            f"{environment.name} requires an approved change per deployment ({system.name}); "
            "a train cannot wait for each of them. Promote these releases one by one."
        )
    with transaction.atomic():
        train = ReleaseTrain.objects.create(
            name=name[:100],
            environment=environment,
            requested_by=user,
            status=TrainStatus.AWAITING_APPROVAL
            if environment.requires_approval
            else TrainStatus.RUNNING,
            approval_policy=ApprovalPolicy.objects.filter(
                environment=environment, team__isnull=True
            ).first(),
        )
        if train.status == TrainStatus.AWAITING_APPROVAL:
            live_decisions_changed()
        TrainMember.objects.bulk_create(
            TrainMember(train=train, release=release, position=i)
            for i, release in enumerate(ordered, start=1)
        )
        audit_record(
            actor=actor,
            action=Engine.TRAIN_CREATE,
            target=train,
            context=context,
            after={
                "name": train.name,
                "environment": environment.slug,
                "releases": [
                    {"service": r.service.slug, "release": r.pk, "digest": r.image_digest}
                    for r in ordered
                ],
                "status": train.status,
            },
        )
        if train.status == TrainStatus.RUNNING:
            _start(train)
    return train


def _start(train: ReleaseTrain) -> None:
    ReleaseTrain.objects.filter(pk=train.pk).update(started_at=timezone.now())
    dispatch.advance_train(train)


def train_decide(
    *,
    train: ReleaseTrain,
    user,
    approve: bool,
    actor: Actor,
    comment: str = "",
    represented_as: str = "",
    context: RequestContext | None = None,
) -> ReleaseTrain:
    """One approval (counted for one rule) or a rejection; the approval that meets the
    last rule starts the train."""
    with transaction.atomic():
        train = ReleaseTrain.objects.select_for_update().get(pk=train.pk)
        rule, state = choose_rule(
            of_train(train), user=user, approve=approve, represented_as=represented_as
        )
        said = comment[: sizes.PARAGRAPH]
        ApprovalVote.objects.create(
            train=train, user=user, rule_id=rule.id, represented_as=rule.name,
            approved=approve, comment=said,
        )  # fmt: skip
        live_decisions_changed()
        who = {"actor": actor, "context": context, "target": train}
        if approve and not meets_all(state, rule):
            after = {"rule": rule.name, "by": user.get_username(), "comment": said,
                     "still_missing": missing_after(state, rule)}  # fmt: skip
            audit_record(action=Engine.TRAIN_APPROVAL_COUNTED, after=after, **who)
            return train
        if approve:
            train.status = TrainStatus.RUNNING
            train.save(update_fields=["status"])
            audit_record(action=Engine.TRAIN_APPROVED, after={"by": user.get_username(),
                         "rule": rule.name, "comment": said}, **who)  # fmt: skip
            _start(train)
        else:
            reason = f"rejected by {user.get_username()}: {said}".strip(": ")
            _finish(train, TrainStatus.CANCELLED, reason, actor=actor, context=context)
    return train


def train_cancel(
    *, train: ReleaseTrain, user, actor: Actor, context: RequestContext | None = None
) -> ReleaseTrain:
    """The requester or a lead of one of its teams stops a train: what runs now ends on
    its own; nothing after it starts."""
    members = _members(train)
    leads = any(has_role(user, m.release.service, Role.LEAD) for m in members)
    if train.requested_by_id != user.pk and not leads:
        raise NotPermitted("Only whoever made the train or a lead of one of its teams may stop it.")
    with transaction.atomic():
        train = ReleaseTrain.objects.select_for_update().get(pk=train.pk)
        if train.status not in TRAIN_OPEN:
            raise Conflict(f"Train #{train.pk} has already ended ({train.get_status_display()}).")
        _finish(train, TrainStatus.CANCELLED, f"stopped by {user.get_username()}", actor=actor,
                context=context)  # fmt: skip
    return train


def _finish(train: ReleaseTrain, status: str, reason: str, *, actor: Actor = TRAIN,
            context: RequestContext | None = None) -> None:  # fmt: skip
    train.status, train.status_reason = status, reason[: sizes.PARAGRAPH]
    train.finished_at = timezone.now()
    train.save(update_fields=["status", "status_reason", "finished_at"])
    TrainMember.objects.filter(train=train, status=TrainMemberStatus.WAITING).update(
        status=TrainMemberStatus.NOT_STARTED
    )
    action = {
        TrainStatus.SUCCEEDED: Engine.TRAIN_SUCCEEDED,
        TrainStatus.FAILED: Engine.TRAIN_FAILED,
    }
    audit_record(
        actor=actor,
        action=action.get(status, Engine.TRAIN_CANCELLED),
        target=train,
        context=context,
        after={"status": status, "reason": train.status_reason},
    )


_ENDED = {
    DeploymentStatus.SUCCEEDED: TrainMemberStatus.SUCCEEDED,
    DeploymentStatus.FAILED: TrainMemberStatus.FAILED,
    DeploymentStatus.ROLLED_BACK: TrainMemberStatus.FAILED,
    DeploymentStatus.CANCELLED: TrainMemberStatus.FAILED,
}


def train_advance(train_id: int) -> str:
    """The train's next step: note how the running deployment ended; stop at a failure;
    start the next release; or end, every release having gone. Safe to run twice (the
    train's row is locked, a member starts at most once)."""
    with transaction.atomic():
        train = ReleaseTrain.objects.select_for_update().filter(pk=train_id).first()
        if train is None or train.status != TrainStatus.RUNNING:
            return "not running"
        members = _members(train)
        for member in members:
            if member.status == TrainMemberStatus.DEPLOYING:
                deployment = member.deployment
                if deployment.status not in DEPLOYMENT_TERMINAL:
                    return f"waiting for deployment #{deployment.pk}"
                member.status = _ENDED[deployment.status]
                member.reason = deployment.status_reason[: sizes.PARAGRAPH]
                member.save(update_fields=["status", "reason"])
            if member.status == TrainMemberStatus.FAILED:
                service = member.release.service.name
                _finish(train, TrainStatus.FAILED,
                        f"Stopped at {service} ({member.position} of {len(members)}): "
                        f"{member.reason or 'its deployment failed'}")  # fmt: skip
                return "failed"
            if member.status == TrainMemberStatus.WAITING:
                try:
                    with transaction.atomic():
                        deployment = deployment_start(
                            release=member.release,
                            environment=train.environment,
                            kind=DeploymentKind.PROMOTE,
                            user=train.requested_by,
                            actor=TRAIN,
                            train=train,
                            # The service busy there: it waits its turn (queued), and so
                            # does the train.
                            wait_if_busy=True,
                        )
                except ReleaseRefused as exc:
                    member.status, member.reason = TrainMemberStatus.FAILED, str(exc)[:500]
                    member.save(update_fields=["status", "reason"])
                    _finish(train, TrainStatus.FAILED,
                            f"Stopped at {member.release.service.name} ({member.position} of "
                            f"{len(members)}): {exc}")  # fmt: skip
                    return "failed"
                member.deployment, member.status = deployment, TrainMemberStatus.DEPLOYING
                member.save(update_fields=["deployment", "status"])
                return f"started deployment #{deployment.pk}"
        _finish(train, TrainStatus.SUCCEEDED, f"All {len(members)} releases went out in order.")
        return "succeeded"


def trains_waiting_query(user):
    """Trains awaiting approval that a rule may count the user for, not decided by them
    (one query: the inbox badge; a role rule counts per team of the train)."""
    return awaiting_voter(
        ReleaseTrain.objects.filter(status=TrainStatus.AWAITING_APPROVAL),
        user,
        of_teams=lambda teams: Exists(
            TrainMember.objects.filter(train=OuterRef("pk"), release__service__team_id__in=teams)
        ),
    )


def trains_waiting_for(user) -> list[ReleaseTrain]:
    """The trains waiting for the user, with where each stands (the inbox)."""
    mine = []
    for train in trains_waiting_query(user).select_related("environment", "requested_by"):
        subject = of_train(train)
        if may_vote(subject, user):
            train.policy = state_of(subject, candidates=True)
            mine.append(train)
    return mine


def visible_trains(user):
    """Trains with at least one release of a team the user is in (every train: superuser)."""
    trains = ReleaseTrain.objects.select_related("environment", "requested_by")
    if user.is_superuser:
        return trains
    return trains.filter(
        Q(members__release__service__team_id__in=list(team_roles(user))) | Q(votes__user=user)
    ).distinct()
