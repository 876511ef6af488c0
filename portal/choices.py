"""Enumerations of the core domain."""

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


class ActorType(models.TextChoices):
    USER = "user", "User"
    TOKEN = "token", "API token"
    SYSTEM = "system", "System"
