"""The core domain: teams and roles, services and environments, Jenkins servers,
API tokens, and the append-only audit log."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from portal.choices import AccountSource, ActorType, MembershipSource, Role, TokenScope
from portal.crypto import EncryptedTextField
from portal.images import default_image_values, validate_image_values

# Django's URLValidator wants a dotted host, but in-cluster and compose hosts often have
# none (http://jenkins:8080/), so any http(s) host is accepted.
http_url = RegexValidator(r"^https?://[^\s/?#]+(/\S*)?$", "Enter an http:// or https:// URL.")

dns_label = RegexValidator(
    r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
    "Use lowercase letters, digits and '-', starting and ending with a letter or digit.",
)


def system_namespace(namespace: str) -> bool:
    """kube-system and its kind (SLIPWAY_SYSTEM_NAMESPACES): never a target's."""
    return any(fnmatchcase(namespace, pattern) for pattern in settings.SLIPWAY_SYSTEM_NAMESPACES)


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


class JenkinsServer(models.Model):
    """A Jenkins controller Slipway triggers builds on. The API token is encrypted."""

    name = models.CharField(max_length=100, unique=True)
    url = models.CharField(
        max_length=300,
        validators=[http_url],
        help_text="Base URL, e.g. https://jenkins.example.com/",
    )
    username = models.CharField(max_length=150)
    api_token = EncryptedTextField(blank=True, help_text="Stored encrypted; never shown again.")
    timeout_seconds = models.PositiveIntegerField(default=30)

    def __str__(self) -> str:
        return self.name


class Registry(models.Model):
    """An OCI registry (Harbor, Docker Hub, distribution): where Slipway checks that an
    image digest exists before it deploys it."""

    name = models.CharField(max_length=100, unique=True)
    url = models.CharField(
        max_length=300,
        validators=[http_url],
        help_text="The registry's API root, e.g. https://harbor.example.com",
    )
    username = models.CharField(max_length=150, blank=True)
    password = EncryptedTextField(blank=True, help_text="Stored encrypted; never shown again.")
    ca_certificate = models.TextField(
        blank=True, help_text="PEM of a private CA that signed the registry's certificate."
    )
    timeout_seconds = models.PositiveIntegerField(default=10)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "registries"

    def __str__(self) -> str:
        return self.name


class Service(models.Model):
    """One deployable application: its Jenkins job, Helm chart, image repository, team."""

    slug = models.SlugField(unique=True, validators=[dns_label])
    name = models.CharField(max_length=100)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="services")
    repository_url = models.CharField(max_length=500, blank=True)
    jenkins_server = models.ForeignKey(
        JenkinsServer, on_delete=models.PROTECT, null=True, blank=True, related_name="services"
    )
    jenkins_job = models.CharField(
        max_length=300, blank=True, help_text="Job path; '/' separates folders, e.g. team/app."
    )
    chart = models.CharField(
        max_length=300, help_text="Helm chart reference: a path, repo/chart or oci:// URL."
    )
    chart_version = models.CharField(max_length=50, blank=True)
    image_repository = models.CharField(max_length=300, help_text="e.g. registry/team/app")
    default_values = models.JSONField(default=dict, blank=True)
    image_values = models.JSONField(
        default=default_image_values,
        validators=[validate_image_values],
        help_text="Where the image goes in the chart's values. Strings may hold {repository}, "
        "{digest}, {reference} (repository@digest) and {tag}; at least one must pin the "
        'digest. Default: {"image": {"repository": "{repository}", "digest": "{digest}"}}.',
    )
    registry = models.ForeignKey(
        Registry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="services",
        help_text="Check that each image digest exists here before deploying it.",
    )
    require_image_repository = models.BooleanField(
        default=False,
        help_text="Fail a build that reports an image outside this service's image repository.",
    )
    env_values_key = models.CharField(
        max_length=100,
        default="env",
        blank=True,
        help_text="The chart value (a name → value map) that receives the environment's "
        "variables; empty: not injected.",
    )
    secret_env_values_key = models.CharField(
        max_length=100,
        default="secretEnv",
        blank=True,
        help_text="The chart value that receives secret variables (the chart should put them "
        "in a Kubernetes Secret); empty: with the others.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Environment(models.Model):
    """A stage on the path to users, ordered: Beta before Prod (more may exist)."""

    slug = models.SlugField(unique=True, validators=[dns_label])
    name = models.CharField(max_length=100)
    order = models.PositiveIntegerField(unique=True, help_text="Lower comes first.")
    requires_approval = models.BooleanField(
        default=False, help_text="A lead other than the requester must approve deployments."
    )
    auto_rollback = models.BooleanField(
        default=False, help_text="Roll back to the previous revision when a rollout fails."
    )
    rollout_timeout_seconds = models.PositiveIntegerField(default=600)
    approval_timeout_seconds = models.PositiveIntegerField(
        default=24 * 3600, help_text="A request nobody approves or rejects expires after this."
    )
    protected = models.BooleanField(
        default=False,
        help_text="Where its targets point (cluster, namespace, Helm release) only a platform "
        "admin may change.",
    )

    class Meta:
        ordering = ["order"]

    def __str__(self) -> str:
        return self.name


class DeploymentTarget(models.Model):
    """Where one service runs in one environment: cluster, namespace, Helm release, values."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="targets")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="targets")
    cluster = models.ForeignKey(
        "clusters.Cluster", on_delete=models.PROTECT, related_name="targets"
    )
    namespace = models.CharField(max_length=63, validators=[dns_label])
    helm_release_name = models.CharField(max_length=53, validators=[dns_label])
    values = models.JSONField(default=dict, blank=True, help_text="Merged over the defaults.")
    drift = models.JSONField(
        null=True,
        blank=True,
        help_text="What the cluster runs that Slipway did not deploy (set by the drift check).",
    )
    drift_checked_at = models.DateTimeField(null=True, blank=True)
    adopted_release = models.CharField(
        max_length=200,
        blank=True,
        help_text="A Helm release installed without Slipway that a platform admin let this "
        "target take over, as cluster id/namespace/release (it counts only while the target "
        "still points there).",
    )

    class Meta:
        ordering = ["service", "environment__order"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "environment"],
                name="target_unique_service_environment",
                violation_error_message="The service already has a target in this "
                "environment; edit that one.",
            ),
            models.UniqueConstraint(
                fields=["cluster", "namespace", "helm_release_name"],
                name="target_unique_helm_release",
                violation_error_message="This Helm release (cluster, namespace, name) is "
                "another target's: a release has one owner.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service} in {self.environment}"

    def clean(self) -> None:
        if system_namespace(self.namespace):
            message = f"{self.namespace} is a system namespace: Slipway never deploys there."
            raise ValidationError({"namespace": message})


namespace_pattern = RegexValidator(
    r"^[a-z0-9*]([-a-z0-9*]{0,61}[a-z0-9*])?$",
    "A namespace or a pattern of one: lowercase letters, digits, '-' and '*' (any characters), "
    "e.g. shop-*.",
)


class ClusterEnvironment(models.Model):
    """A platform admin's word that targets of an environment may use a cluster."""

    cluster = models.ForeignKey(
        "clusters.Cluster", on_delete=models.CASCADE, related_name="environment_grants"
    )
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="cluster_grants"
    )

    class Meta:
        ordering = ["cluster", "environment__order"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "environment"], name="cluster_environment_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.environment} may use {self.cluster}"


class NamespaceGrant(models.Model):
    """A platform admin's word that a team's services may deploy into the namespaces that
    match `pattern` on a cluster (for one environment's targets, or any)."""

    cluster = models.ForeignKey(
        "clusters.Cluster", on_delete=models.CASCADE, related_name="namespace_grants"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="namespace_grants")
    pattern = models.CharField(
        max_length=63,
        validators=[namespace_pattern],
        help_text="A namespace, or a pattern such as shop-* ('*': any characters).",
    )
    environment = models.ForeignKey(
        Environment,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="namespace_grants",
        help_text="Only for this environment's targets; empty: any environment the cluster serves.",
    )

    class Meta:
        ordering = ["cluster", "team", "pattern"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "team", "pattern", "environment"],
                name="namespace_grant_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        where = f" for {self.environment}" if self.environment_id else ""
        return f"{self.team} may deploy to {self.pattern} on {self.cluster}{where}"


ENV_NAME = RegexValidator(
    r"^[A-Za-z_][A-Za-z0-9_.-]*$", "A variable name: letters, digits, _ . - (not first)."
)
LINK_PLACEHOLDERS = ("service", "namespace", "environment", "release", "digest")
# A link template holds plain `{name}` placeholders and nothing else in braces: no format
# spec (`{service:>999999999}` would allocate a gigabyte per render), no attribute or index.
LINK_PLACEHOLDER_RE = re.compile(r"\{([a-z]+)\}")


def validate_link_template(template: str) -> None:
    if not re.match(r"^https?://[^\s/?#{}]", template, re.I):
        raise ValidationError("A link starts with http:// or https:// and a host.")
    bare = LINK_PLACEHOLDER_RE.sub("", template)
    if "{" in bare or "}" in bare:
        raise ValidationError(
            "Use plain placeholders only, such as {service}: no format, attribute or index."
        )
    unknown = sorted(set(LINK_PLACEHOLDER_RE.findall(template)) - set(LINK_PLACEHOLDERS))
    if unknown:
        raise ValidationError(
            f"Unknown placeholder {', '.join('{' + f + '}' for f in unknown)}; use "
            + ", ".join("{" + p + "}" for p in LINK_PLACEHOLDERS)
        )


class EnvironmentVariable(models.Model):
    """A variable every service gets in one environment (or one target only, which wins):
    ENV=beta, an Apollo meta URL. Injected into the chart's values on every deployment."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="variables")
    target = models.ForeignKey(
        DeploymentTarget,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="variables",
        help_text="Only this service's target; empty: every service in the environment.",
    )
    name = models.CharField(max_length=100, validators=[ENV_NAME])
    value = models.TextField(blank=True, help_text="Shown on pages; empty for a secret.")
    is_secret = models.BooleanField(default=False)
    secret_value = EncryptedTextField(
        blank=True, help_text="For a secret: stored encrypted, never shown again."
    )

    class Meta:
        ordering = ["environment__order", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "name"],
                condition=models.Q(target__isnull=True),
                name="variable_unique_per_environment",
            ),
            models.UniqueConstraint(
                fields=["target", "name"],
                condition=models.Q(target__isnull=False),
                name="variable_unique_per_target",
            ),
        ]

    def __str__(self) -> str:
        where = self.target or self.environment
        return f"{self.name} in {where}"


class EnvironmentLink(models.Model):
    """A link a service gets per environment: its Grafana dashboard, its logs, its URL."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="links")
    name = models.CharField(max_length=50, help_text="e.g. Grafana, Logs, Open")
    url_template = models.CharField(
        max_length=1000,
        validators=[validate_link_template],
        help_text="May hold {service}, {namespace}, {environment}, {release}, {digest}.",
    )
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["environment__order", "order", "name"]

    def __str__(self) -> str:
        return f"{self.name} in {self.environment}"


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


class Freeze(models.Model):
    """A change freeze: no deployment into the environment (of one team's services, or of
    every service) between `starts_at` and `ends_at`, unless a lead overrides it with a
    reason."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="freezes")
    team = models.ForeignKey(
        Team,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="freezes",
        help_text="Empty: every team's services (site admins only).",
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=300)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="freeze_ends_after_start",
            )
        ]
        indexes = [models.Index(fields=["environment", "ends_at"])]

    def __str__(self) -> str:
        whose = self.team.name if self.team_id else "every team"
        return f"{self.environment} frozen for {whose} until {self.ends_at:%Y-%m-%d %H:%M}"


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
        max_length=300, help_text="e.g. cn=shop-leads,ou=groups,dc=example,dc=com"
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


class AuditCheck(models.Model):
    """One walk of the audit chain (`verify_audit`, beat daily, or an admin's button)."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    ok = models.BooleanField()
    events = models.PositiveBigIntegerField(help_text="Events verified before any break.")
    broken_event_id = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    trigger = models.CharField(max_length=30, help_text="command, beat or an admin's name")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{'intact' if self.ok else 'BROKEN'} at {self.finished_at:%Y-%m-%d %H:%M}"


class AuditAnchor(models.Model):
    """The audit chain's head as published (beat, every SLIPWAY_AUDIT_ANCHOR_SECONDS): also
    written to the log, outside the database. Verification checks the chain still reaches
    the latest anchor, so a tail cut off after it shows. Append-only like the events."""

    created_at = models.DateTimeField()
    last_event_id = models.BigIntegerField()
    last_hash = models.CharField(max_length=64)
    events = models.PositiveBigIntegerField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"anchor {self.last_event_id}:{self.last_hash[:12]}…"


class IdempotencyKey(models.Model):
    """A request that must act once: its caller's key, what it asked, and its first answer.

    The same key with the same request replays `status_code`/`body` (or `location`, for
    pages); with another request it is refused. Kept a day (see portal/idempotency.py).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    status_code = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Empty while the first request runs."
    )
    body = models.JSONField(null=True, blank=True)
    location = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_unique_user_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} of {self.user_id}"


class AuditEvent(models.Model):
    """An append-only, hash-chained record of an action or state change.

    PostgreSQL refuses UPDATE, DELETE and TRUNCATE on this table (a trigger, see the
    migration). `hash` covers the event's canonical content and the previous event's
    hash, so `manage.py verify_audit` detects an altered, removed or inserted event.
    Actors and targets are stored by value, not by foreign key, so deleting a user or
    a service never needs to touch the log.
    """

    created_at = models.DateTimeField()
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_name = models.CharField(max_length=200)
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(
        max_length=16, blank=True, help_text="Which audit key signed it (empty: before keys)."
    )
    # Whose event it is, for who may read it (not part of the hashed content: it decides
    # visibility only, like an index).
    team_id = models.BigIntegerField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.actor_name} {self.action} {self.target_repr}"
