"""Who people are to Slipway: teams, their members' roles, API tokens, where an account
comes from (the directory or Slipway), and LDAP groups' roles."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from portal.access.choices import AccountSource, MembershipSource, Role, TokenScope
from portal.core import sizes


class Team(models.Model):
    """A group of people who own services."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in one team."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    source = models.CharField(
        max_length=8,
        choices=MembershipSource.choices,
        default=MembershipSource.MANUAL,
        help_text="Roles from LDAP groups are refreshed (and removed) at each sign-in.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="membership_unique_team_user"),
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} in {self.team}"


class ApiToken(models.Model):
    """A token for scripts. Only its SHA-256 is stored; the token is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise it.")
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = ArrayField(
        models.CharField(max_length=8, choices=TokenScope.choices),
        default=list,
        help_text="read, deploy, approve.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scopes__contained_by=TokenScope.values),
                name="api_token_scopes_valid",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user}"


class Account(models.Model):
    """Where a person's account comes from. The LDAP backend never signs in a local account
    (a directory user named like the break-glass admin gets nothing) and the local backend
    never an LDAP one; offboarding re-reads the directory for LDAP accounts. No row: local."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account"
    )
    source = models.CharField(
        max_length=8, choices=AccountSource.choices, default=AccountSource.LOCAL
    )
    directory_checked_at = models.DateTimeField(
        null=True, blank=True, help_text="When offboarding last read the directory for them."
    )
    access_ended_at = models.DateTimeField(
        null=True, blank=True, help_text="When offboarding last ended their sessions and tokens."
    )

    def __str__(self) -> str:
        return f"{self.user} ({self.get_source_display()})"


class LdapGroupRole(models.Model):
    """Members of an LDAP group get a role in a team, refreshed at each sign-in."""

    group_dn = models.CharField(
        max_length=sizes.LINE, help_text="e.g. cn=shop-leads,ou=groups,dc=example,dc=com"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="ldap_groups")
    role = models.CharField(max_length=16, choices=Role.choices)

    class Meta:
        ordering = ["team", "group_dn"]
        constraints = [
            models.UniqueConstraint(fields=["group_dn", "team"], name="ldap_group_role_unique")
        ]

    def __str__(self) -> str:
        return f"{self.group_dn} → {self.role} in {self.team}"
