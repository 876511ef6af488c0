"""The portal app's models, defined by concern in its packages; Django loads an app's
models from here. Code imports them from their own package (portal.access.models, …)."""

from portal.access.models import Account, ApiToken, LdapGroupRole, Membership, Team
from portal.audit.models import AuditAnchor, AuditCheck, AuditEvent
from portal.catalog.models import (
    ClusterEnvironment,
    DeploymentTarget,
    Environment,
    EnvironmentLink,
    EnvironmentVariable,
    Freeze,
    JenkinsServer,
    NamespaceGrant,
    Registry,
    Service,
)
from portal.web.models import IdempotencyKey

__all__ = [
    "Account", "ApiToken", "AuditAnchor", "AuditCheck", "AuditEvent", "ClusterEnvironment",
    "DeploymentTarget", "Environment", "EnvironmentLink", "EnvironmentVariable", "Freeze",
    "IdempotencyKey", "JenkinsServer", "LdapGroupRole", "Membership", "NamespaceGrant",
    "Registry", "Service", "Team",
]  # fmt: skip
