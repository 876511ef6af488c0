"""Approval policies (who must approve a deployment to a protected environment, and how
many of them) and the approvals people gave, each counted for one rule."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from portal.access.choices import Role
from portal.core import sizes


class ApprovalPolicy(models.Model):
    """The rules a request to a protected environment must meet before it starts.

    One per environment and team; a policy without a team applies to every team that has
    none of its own. Where there is none at all, the default applies: one lead of the
    service's team other than the requester (releases/policies.py, DEFAULT_POLICY).
    """

    environment = models.ForeignKey(
        "portal.Environment", on_delete=models.CASCADE, related_name="approval_policies"
    )
    team = models.ForeignKey(
        "portal.Team",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="approval_policies",
        help_text="Empty: every team without a policy of its own in this environment.",
    )
    name = models.CharField(max_length=100)
    requester_may_approve = models.BooleanField(
        default=False,
        help_text="Whether whoever asked for the deployment may count as one of its approvals.",
    )

    class Meta:
        ordering = ["environment__order", "team__name", "id"]
        verbose_name_plural = "approval policies"
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "team"],
                nulls_distinct=False,
                name="approval_policy_one_per_environment_team",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.environment}, {self.team or 'every team'})"


class ApprovalRule(models.Model):
    """Who counts for this rule and how many of them must approve. Someone counts when they
    match any of what is set: a role (or higher) in the service's team, a group (LDAP
    groups are mirrored into Slipway's groups at sign-in), a team's members, named users."""

    policy = models.ForeignKey(ApprovalPolicy, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(max_length=100, help_text="e.g. 'Team lead', 'QA', 'Security'.")
    required_approvals = models.PositiveSmallIntegerField(default=1)
    role = models.CharField(
        max_length=16,
        choices=Role.choices,
        blank=True,
        help_text="Members of the service's team with this role or a higher one.",
    )
    group = models.ForeignKey(
        "auth.Group",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Members of this group (LDAP groups appear here by their name).",
    )
    team = models.ForeignKey(
        "portal.Team",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Members of this team (any role but viewer), e.g. a QA team.",
    )
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "name"], name="approval_rule_unique_name"),
            models.CheckConstraint(
                condition=models.Q(required_approvals__gte=1), name="approval_rule_needs_one"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.required_approvals} of {self.who()}"

    def who(self) -> str:
        """Who counts, in words (users need a saved rule)."""
        parts = []
        if self.role:
            parts.append(f"{Role(self.role).label.lower()}s of the team")
        if self.group_id:
            parts.append(f"group {self.group.name}")
        if self.team_id:
            parts.append(f"team {self.team.name}")
        if self.pk:
            names = [u.get_username() for u in self.users.all()]
            if names:
                parts.append(", ".join(names))
        return " or ".join(parts) or "nobody"

    def clean(self) -> None:
        if not (self.role or self.group_id or self.team_id):
            # Named users are saved after the rule (a many-to-many), so the admin form
            # checks them; here a rule without any other kind of approver is allowed.
            return
        if self.role == Role.VIEWER:
            raise ValidationError({"role": "Viewers may not approve; choose developer or above."})


class ApprovalVote(models.Model):
    """One person's approval (or rejection) of one request, counted for one rule. The
    rule's name is kept as it was (`represented_as`) so a renamed or deleted rule leaves
    the record readable."""

    deployment = models.ForeignKey(
        "releases.Deployment", on_delete=models.CASCADE, related_name="votes", null=True, blank=True
    )
    train = models.ForeignKey(
        "releases.ReleaseTrain",
        on_delete=models.CASCADE,
        related_name="votes",
        null=True,
        blank=True,
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    rule = models.ForeignKey(
        ApprovalRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="votes"
    )
    represented_as = models.CharField(max_length=100)
    approved = models.BooleanField()
    comment = models.CharField(max_length=sizes.PARAGRAPH, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "user"], name="approval_vote_once"),
            models.UniqueConstraint(fields=["train", "user"], name="approval_vote_once_per_train"),
            models.CheckConstraint(
                condition=models.Q(deployment__isnull=True) ^ models.Q(train__isnull=True),
                name="approval_vote_of_one_thing",
            ),
        ]

    def __str__(self) -> str:
        verdict = "approved" if self.approved else "rejected"
        what = (
            f"deployment #{self.deployment_id}" if self.deployment_id else f"train #{self.train_id}"
        )
        return f"{self.user} {verdict} {what} as {self.represented_as}"
