"""Words of access: roles, token scopes, where a role or an account comes from."""

from django.db import models


class Role(models.TextChoices):
    """A member's role in a team, from least to most powerful."""

    VIEWER = "viewer", "Viewer"
    DEVELOPER = "developer", "Developer"
    LEAD = "lead", "Lead"
    ADMIN = "admin", "Admin"

    @classmethod
    def rank(cls, role: str) -> int:
        return list(cls.values).index(role)


class TokenScope(models.TextChoices):
    """What an API token may do: read everything its user may see, deploy (build, deploy,
    promote, roll back, cancel, withdraw), approve (decide, manage freezes)."""

    READ = "read", "Read"
    DEPLOY = "deploy", "Deploy"
    APPROVE = "approve", "Approve"


class MembershipSource(models.TextChoices):
    """Who granted a role: an admin by hand, or an LDAP group at sign-in."""

    MANUAL = "manual", "Granted in Slipway"
    LDAP = "ldap", "From an LDAP group"


class AccountSource(models.TextChoices):
    """Where a person's account comes from: the LDAP directory, or Slipway itself (local
    break-glass accounts, made with createsuperuser or the admin)."""

    LOCAL = "local", "Local account"
    LDAP = "ldap", "LDAP directory"
