"""Approval policies: which rules a request to a protected environment must meet, who
counts for each, which rule an approval counts for, and what is still missing.

A request is approved when every rule of its policy has its number of approvals, each
person's approval counted for one rule (the one they name, or the first unmet rule they
count for). One rejection by anyone who counts for a rule ends the request. Where no
policy is configured, `DEFAULT_POLICY` keeps Slipway's first rule: one lead of the
service's team, not the requester.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from portal.access.choices import Role
from portal.access.permissions import role_in_team, team_roles, teams_with_role
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
    role_team_id: int | None = None  # a role in this team (a train's rule per team)
    role_team_name: str = ""

    @property
    def key(self) -> int | str:
        return self.id if self.id is not None else self.name

    def who(self) -> str:
        parts = []
        if self.role:
            of = self.role_team_name or "the team"
            parts.append(f"a {Role(self.role).label.lower()} of {of}")
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


def saved_policy(saved: ApprovalPolicy) -> Policy:
    rules = saved.rules.select_related("group", "team").prefetch_related("users")
    return Policy(saved.pk, saved.name, saved.requester_may_approve, tuple(map(_rule, rules)))


def policy_of(deployment: Deployment) -> Policy:
    """The rules the request was made under (recorded when it began to wait)."""
    saved = deployment.approval_policy
    return DEFAULT_POLICY if saved is None else saved_policy(saved)


@dataclass
class Approvable:
    """What is approved (a deployment, or a release train), as the counting sees it."""

    label: str  # "deployment #5", "train #2"
    waiting: bool
    status: str  # in words, for "is …, not awaiting approval"
    requested_by_id: int | None
    policy: Policy
    team_id: int | None  # whose roles a role rule counts (unless the rule names its own)
    team_name: str
    votes: list[ApprovalVote]


def of_deployment(deployment: Deployment) -> Approvable:
    return Approvable(
        label=f"deployment #{deployment.pk}",
        waiting=deployment.status == DeploymentStatus.AWAITING_APPROVAL,
        status=deployment.get_status_display().lower(),
        requested_by_id=deployment.requested_by_id,
        policy=policy_of(deployment),
        team_id=deployment.service.team_id,
        team_name=str(deployment.service.team),
        votes=list(deployment.votes.select_related("user")),
    )


def counts_for(rule: Rule, user, team_id: int | None) -> bool:
    """Whether `user` is one of the people the rule counts (role rules: in `team_id`, or
    the team the rule's role is scoped to)."""
    role_team = rule.role_team_id or team_id
    if rule.role and role_team is not None:
        role = role_in_team(user, role_team)
        if role is not None and role in _AT_LEAST[rule.role]:
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


def state_of(subject: Approvable, *, candidates: bool = False) -> PolicyState:
    """The rules, the approvals counted for each, and (with `candidates`) who may still
    approve each unmet rule."""
    policy = subject.policy
    states = [RuleState(rule) for rule in policy.rules]
    by_key = {state.rule.key: state for state in states}
    by_name = {state.rule.name: state for state in states}
    state = PolicyState(policy, states, voted={v.user_id for v in subject.votes})
    for vote in subject.votes:
        if not vote.approved:
            state.rejection = vote
            continue
        counted = (by_key.get(vote.rule_id) if vote.rule_id else None) or by_name.get(
            vote.represented_as
        )
        if counted is not None:
            counted.approvals.append(vote)
    if candidates:
        excluded = set(state.voted)
        if not policy.requester_may_approve and subject.requested_by_id:
            excluded.add(subject.requested_by_id)
        for rule_state in states:
            if not rule_state.met:
                rule_state.may_approve = _people(rule_state.rule, subject.team_id, excluded)
    return state


def policy_state(deployment: Deployment, *, candidates: bool = False) -> PolicyState:
    return state_of(of_deployment(deployment), candidates=candidates)


def _people(rule: Rule, team_id: int | None, excluded: set[int]) -> list[str]:
    """Usernames of the people the rule counts (superusers aside: they are break-glass)."""
    who = Q(pk__in=rule.user_ids)
    role_team = rule.role_team_id or team_id
    if rule.role and role_team is not None:
        who |= Q(memberships__team=role_team, memberships__role__in=_AT_LEAST[rule.role])
    if rule.group_id is not None:
        who |= Q(groups=rule.group_id)
    if rule.team_id is not None:
        who |= Q(memberships__team=rule.team_id) & ~Q(memberships__role=Role.VIEWER)
    people = get_user_model().objects.filter(who, is_active=True).exclude(pk__in=excluded)
    return sorted(set(people.values_list("username", flat=True)))


def _requester_refusal(subject: Approvable, user) -> NotPermitted | None:
    policy = subject.policy
    if subject.requested_by_id == user.pk and not policy.requester_may_approve:
        lead_only = policy.rules == DEFAULT_POLICY.rules
        return NotPermitted(
            ("A lead" if lead_only else "Someone")
            + " other than the requester must approve: the policy "
            f"'{policy.name}' does not let the requester approve their own request."
        )
    return None


def choose_rule(
    subject: Approvable, *, user, approve: bool, represented_as: str = ""
) -> tuple[Rule, PolicyState]:
    """The rule `user`'s approval (or rejection) counts for, or the refusal: not waiting,
    not among the people any rule counts, the requester, already voted, a rule named that
    does not exist or is already met."""
    state = state_of(subject)
    policy = state.policy
    if not subject.waiting:
        raise Conflict(f"{subject.label[0].upper()}{subject.label[1:]} is {subject.status}, "
                       "not awaiting approval.")  # fmt: skip
    eligible = [s for s in state.rules if counts_for(s.rule, user, subject.team_id)]
    if not eligible:
        if policy is DEFAULT_POLICY:
            raise NotPermitted(f"Only a lead of {subject.team_name} may approve or reject.")
        rules = "; ".join(f"{s.rule.name}: {s.rule.who()}" for s in state.rules)
        raise NotPermitted(
            f"You count for no rule of the policy '{policy.name}' ({rules}), so you may not "
            "approve or reject this request."
        )
    refusal = _requester_refusal(subject, user)
    if refusal:
        raise refusal
    if user.pk in state.voted:
        raise Conflict(f"You already decided on {subject.label}; each person counts once.")
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


def vote_rule(
    *, deployment: Deployment, user, approve: bool, represented_as: str = ""
) -> tuple[Rule, PolicyState]:
    return choose_rule(
        of_deployment(deployment), user=user, approve=approve, represented_as=represented_as
    )


def meets_all(state: PolicyState, rule: Rule) -> bool:
    """Whether one more approval for `rule` meets every rule of the policy."""
    return all(len(s.approvals) + (s.rule.key == rule.key) >= s.rule.required for s in state.rules)


def missing_after(state: PolicyState, rule: Rule) -> str:
    return "; ".join(
        f"{s.rule.name} {len(s.approvals) + (s.rule.key == rule.key)}/{s.rule.required}"
        for s in state.rules
        if len(s.approvals) + (s.rule.key == rule.key) < s.rule.required
    )


def may_vote(subject: Approvable, user) -> bool:
    """Whether the user counts for any rule and has not decided (pages: show the buttons)."""
    if not subject.waiting or _requester_refusal(subject, user):
        return False
    if user.pk in {v.user_id for v in subject.votes}:
        return False
    return any(counts_for(rule, user, subject.team_id) for rule in subject.policy.rules)


def may_decide(deployment: Deployment, user) -> bool:
    if deployment.status != DeploymentStatus.AWAITING_APPROVAL:
        return False
    return may_vote(of_deployment(deployment), user)


def awaiting_voter(
    waiting: QuerySet, user, *, of_teams: Callable[[list[int]], Q | Exists]
) -> QuerySet:
    """From `waiting` (deployments or trains awaiting approval, with `votes`,
    `requested_by` and `approval_policy`), those a rule counts `user` for and they have
    not decided on yet; `of_teams(ids)` says that one belongs to one of those teams. One
    query (the inbox badge)."""
    waiting = waiting.exclude(votes__user=user).exclude(
        Q(requested_by=user) & ~Q(approval_policy__requester_may_approve=True)
    )
    leads = teams_with_role(user, Role.LEAD)
    default = Q(approval_policy__isnull=True) & (Q() if leads is None else of_teams(leads))
    rules = ApprovalRule.objects.filter(policy=OuterRef("approval_policy"))
    groups = list(user.groups.values_list("pk", flat=True))
    roles = team_roles(user)
    members = [team for team, role in roles.items() if role != Role.VIEWER]
    counted = Exists(rules.filter(Q(users=user) | Q(group__in=groups) | Q(team__in=members)))
    if user.is_superuser:
        counted |= Exists(rules.exclude(role=""))
    # One clause per role the user holds somewhere (not per team: a lead of forty teams
    # made a query with eighty subplans, whose planning alone took the top bar 70 ms).
    teams_by_role: dict[str, list[int]] = {}
    for team, role in roles.items():
        teams_by_role.setdefault(role, []).append(team)
    for role, teams in sorted(teams_by_role.items()):
        by_role = Exists(rules.filter(role__in=[r for r in Role if role in _AT_LEAST[r]]))
        counted |= of_teams(teams) & by_role
    return waiting.filter(default | (Q(approval_policy__isnull=False) & counted))


def waiting_for(user) -> QuerySet[Deployment]:
    """Requests awaiting approval that `user` counts for and has not decided on yet."""
    return awaiting_voter(
        Deployment.objects.filter(status=DeploymentStatus.AWAITING_APPROVAL),
        user,
        of_teams=lambda teams: Q(service__team_id__in=teams),
    )


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
