"""Approval policies: which rules a request to a protected environment must meet, who
counts for each, which rule an approval counts for, and what is still missing.

A request is approved when every rule of its policy has its number of approvals, each
person's approval counted for one rule (the one they name, or the first unmet rule they
count for). One rejection by anyone who counts for a rule ends the request. Where no
policy is configured, `DEFAULT_POLICY` keeps Slipway's first rule: one lead of the
service's team, not the requester.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from portal.access.choices import Role
from portal.access.permissions import has_role, team_roles, teams_with_role
from portal.catalog.models import Environment, Service
from releases.choices import DeploymentStatus
from releases.errors import Conflict, NotPermitted, ReleaseRefused
from releases.models import Deployment
from releases.policy_models import ApprovalPolicy, ApprovalRule, ApprovalVote

# Roles that count for a rule naming `role`: that one and every higher one.
_AT_LEAST = {role: [r for r in Role.values if Role.rank(r) >= Role.rank(role)] for role in Role}


@dataclass(frozen=True)
class Rule:
    """A rule as the counting reads it (a saved ApprovalRule, or the default's)."""

    id: int | None
    name: str
    required: int
    role: str = ""
    group_id: int | None = None
    group_name: str = ""
    team_id: int | None = None
    team_name: str = ""
    user_ids: frozenset[int] = frozenset()
    user_names: tuple[str, ...] = ()

    @property
    def key(self) -> int | str:
        return self.id if self.id is not None else self.name

    def who(self) -> str:
        parts = []
        if self.role:
            parts.append(f"a {Role(self.role).label.lower()} of the team")
        if self.group_name:
            parts.append(f"a member of group {self.group_name}")
        if self.team_name:
            parts.append(f"a member of team {self.team_name}")
        if self.user_names:
            parts.append(", ".join(self.user_names))
        return " or ".join(parts) or "nobody"


@dataclass(frozen=True)
class Policy:
    id: int | None
    name: str
    requester_may_approve: bool
    rules: tuple[Rule, ...]


DEFAULT_POLICY = Policy(
    id=None,
    name="Default: a lead of the team, not the requester",
    requester_may_approve=False,
    rules=(Rule(id=None, name="Team lead", required=1, role=Role.LEAD),),
)


def _rule(rule: ApprovalRule) -> Rule:
    users = list(rule.users.all())
    return Rule(
        id=rule.pk,
        name=rule.name,
        required=rule.required_approvals,
        role=rule.role,
        group_id=rule.group_id,
        group_name=rule.group.name if rule.group_id else "",
        team_id=rule.team_id,
        team_name=rule.team.name if rule.team_id else "",
        user_ids=frozenset(u.pk for u in users),
        user_names=tuple(sorted(u.get_username() for u in users)),
    )


def policy_for(*, service: Service, environment: Environment) -> ApprovalPolicy | None:
    """The team's own policy for the environment, else the environment's policy for every
    team, else None (the default)."""
    policies = ApprovalPolicy.objects.filter(
        Q(team=service.team_id) | Q(team__isnull=True), environment=environment
    )
    return min(policies, key=lambda p: p.team_id is None, default=None)


def policy_of(deployment: Deployment) -> Policy:
    """The rules the request was made under (recorded when it began to wait)."""
    saved = deployment.approval_policy
    if saved is None:
        return DEFAULT_POLICY
    rules = saved.rules.select_related("group", "team").prefetch_related("users")
    return Policy(saved.pk, saved.name, saved.requester_may_approve, tuple(map(_rule, rules)))


def counts_for(rule: Rule, user, service: Service) -> bool:
    """Whether `user` is one of the people the rule counts."""
    if rule.role and has_role(user, service, rule.role):
        return True
    if rule.group_id is not None and user.groups.filter(pk=rule.group_id).exists():
        return True
    if rule.team_id is not None and team_roles(user).get(rule.team_id) not in (None, Role.VIEWER):
        return True
    return user.pk in rule.user_ids


@dataclass
class RuleState:
    rule: Rule
    approvals: list[ApprovalVote] = field(default_factory=list)
    may_approve: list[str] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return len(self.approvals) >= self.rule.required

    @property
    def missing(self) -> int:
        return max(self.rule.required - len(self.approvals), 0)


@dataclass
class PolicyState:
    """Where a request stands against its policy."""

    policy: Policy
    rules: list[RuleState]
    rejection: ApprovalVote | None = None
    voted: set[int] = field(default_factory=set)

    @property
    def met(self) -> bool:
        return self.rejection is None and all(state.met for state in self.rules)

    def summary(self) -> str:
        return "; ".join(f"{s.rule.name} {len(s.approvals)}/{s.rule.required}" for s in self.rules)


def policy_state(deployment: Deployment, *, candidates: bool = False) -> PolicyState:
    """The rules, the approvals counted for each, and (with `candidates`) who may still
    approve each unmet rule."""
    policy = policy_of(deployment)
    states = [RuleState(rule) for rule in policy.rules]
    by_key = {state.rule.key: state for state in states}
    by_name = {state.rule.name: state for state in states}
    votes = list(deployment.votes.select_related("user"))
    state = PolicyState(policy, states, voted={v.user_id for v in votes})
    for vote in votes:
        if not vote.approved:
            state.rejection = vote
            continue
        counted = by_key.get(vote.rule_id) or by_name.get(vote.represented_as)
        if counted is not None:
            counted.approvals.append(vote)
    if candidates:
        excluded = set(state.voted)
        if not policy.requester_may_approve and deployment.requested_by_id:
            excluded.add(deployment.requested_by_id)
        for rule_state in states:
            if not rule_state.met:
                rule_state.may_approve = _people(rule_state.rule, deployment.service, excluded)
    return state


def _people(rule: Rule, service: Service, excluded: set[int]) -> list[str]:
    """Usernames of the people the rule counts (superusers aside: they are break-glass)."""
    who = Q(pk__in=rule.user_ids)
    if rule.role:
        who |= Q(memberships__team=service.team_id, memberships__role__in=_AT_LEAST[rule.role])
    if rule.group_id is not None:
        who |= Q(groups=rule.group_id)
    if rule.team_id is not None:
        who |= Q(memberships__team=rule.team_id) & ~Q(memberships__role=Role.VIEWER)
    people = get_user_model().objects.filter(who, is_active=True).exclude(pk__in=excluded)
    return sorted(set(people.values_list("username", flat=True)))


def _requester_refusal(deployment: Deployment, policy: Policy, user) -> NotPermitted | None:
    if deployment.requested_by_id == user.pk and not policy.requester_may_approve:
        lead_only = policy.rules == DEFAULT_POLICY.rules
        return NotPermitted(
            ("A lead" if lead_only else "Someone")
            + " other than the requester must approve: the policy "
            f"'{policy.name}' does not let the requester approve their own request."
        )
    return None


def vote_rule(
    *, deployment: Deployment, user, approve: bool, represented_as: str = ""
) -> tuple[Rule, PolicyState]:
    """The rule `user`'s approval (or rejection) counts for, or the refusal: not waiting,
    not among the people any rule counts, the requester, already voted, a rule named that
    does not exist or is already met."""
    state = policy_state(deployment)
    policy = state.policy
    if deployment.status != DeploymentStatus.AWAITING_APPROVAL:
        raise Conflict(
            f"Deployment #{deployment.pk} is {deployment.get_status_display().lower()}, "
            "not awaiting approval."
        )
    eligible = [s for s in state.rules if counts_for(s.rule, user, deployment.service)]
    if not eligible:
        if policy is DEFAULT_POLICY:
            raise NotPermitted(f"Only a lead of {deployment.service.team} may approve or reject.")
        rules = "; ".join(f"{s.rule.name}: {s.rule.who()}" for s in state.rules)
        raise NotPermitted(
            f"You count for no rule of the policy '{policy.name}' ({rules}), so you may not "
            "approve or reject this request."
        )
    refusal = _requester_refusal(deployment, policy, user)
    if refusal:
        raise refusal
    if user.pk in state.voted:
        raise Conflict(
            f"You already decided on deployment #{deployment.pk}; each person counts once."
        )
    if represented_as:
        named = next((s for s in state.rules if s.rule.name == represented_as), None)
        if named is None:
            names = ", ".join(f"'{s.rule.name}'" for s in state.rules)
            raise ReleaseRefused(f"No rule is named '{represented_as}'; the rules are {names}.")
        if named not in eligible:
            raise NotPermitted(f"You do not count for '{named.rule.name}' ({named.rule.who()}).")
        if approve and named.met:
            raise Conflict(f"'{named.rule.name}' already has its approvals.")
        return named.rule, state
    if not approve:
        return eligible[0].rule, state
    unmet = [s for s in eligible if not s.met]
    if not unmet:
        raise Conflict(
            "Every rule you count for already has its approvals: "
            + ", ".join(s.rule.name for s in eligible)
            + f". Still missing: {state.summary()}."
        )
    return unmet[0].rule, state


def may_decide(deployment: Deployment, user) -> bool:
    """Whether the user counts for any rule of the request (for pages: show the buttons)."""
    if deployment.status != DeploymentStatus.AWAITING_APPROVAL:
        return False
    policy = policy_of(deployment)
    if _requester_refusal(deployment, policy, user):
        return False
    return any(counts_for(rule, user, deployment.service) for rule in policy.rules)


def waiting_for(user) -> QuerySet[Deployment]:
    """Requests awaiting approval that `user` counts for and has not decided on yet; one
    query (the inbox and its badge)."""
    waiting = Deployment.objects.filter(status=DeploymentStatus.AWAITING_APPROVAL)
    waiting = waiting.exclude(votes__user=user).exclude(
        Q(requested_by=user) & ~Q(approval_policy__requester_may_approve=True)
    )
    leads = teams_with_role(user, Role.LEAD)
    default = Q(approval_policy__isnull=True) & (
        Q() if leads is None else Q(service__team_id__in=leads)
    )
    rules = ApprovalRule.objects.filter(policy=OuterRef("approval_policy"))
    groups = list(user.groups.values_list("pk", flat=True))
    roles = team_roles(user)
    members = [team for team, role in roles.items() if role != Role.VIEWER]
    counted = Exists(rules.filter(Q(users=user) | Q(group__in=groups) | Q(team__in=members)))
    if user.is_superuser:
        counted |= Exists(rules.exclude(role=""))
    for team, role in roles.items():
        by_role = Exists(rules.filter(role__in=[r for r in Role if role in _AT_LEAST[r]]))
        counted |= Q(service__team_id=team) & by_role
    return waiting.filter(default | (Q(approval_policy__isnull=False) & counted))


def decidable_or_404(queryset: QuerySet[Deployment], user, pk: int) -> Deployment:
    """From `queryset` (what the caller may see), or else among the requests waiting for
    the caller's approval or decided by them: a rule may count people outside the team
    (QA, security)."""
    found = queryset.filter(pk=pk).first()
    if found is None:
        unseen = queryset.model.objects.select_related("service__team", "environment", "release")
        mine = Q(pk__in=waiting_for(user).values("pk")) | Q(votes__user=user)
        found = unseen.filter(mine, pk=pk).first()
    if found is None:
        raise Http404(f"No deployment #{pk} you may see or decide.")
    return found
