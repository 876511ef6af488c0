"""What Slipway deploys and where: services, environments, deployment targets and the
grants that bound them, Jenkins servers and registries, per-environment variables and
links, and freezes."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from portal.access.models import Team
from portal.catalog.canary_steps import CANARY_SUFFIX, CanaryStepsInvalid, parse_canary_steps
from portal.catalog.validators import (
    ENV_NAME,
    dns_label,
    http_url,
    namespace_pattern,
    system_namespace,
    validate_link_template,
)
from portal.core import sizes
from portal.core.crypto import EncryptedTextField
from portal.core.images import default_image_values, validate_image_values


class JenkinsServer(models.Model):
    """A Jenkins controller Slipway triggers builds on. The API token is encrypted."""

    name = models.CharField(max_length=100, unique=True)
    url = models.CharField(
        max_length=sizes.LINE,
        validators=[http_url],
        help_text="Base URL, e.g. https://jenkins.example.com/",
    )
    username = models.CharField(max_length=150)
    api_token = EncryptedTextField(blank=True, help_text="Stored encrypted; never shown again.")
    notification_secret = EncryptedTextField(
        blank=True,
        help_text="Turns on build notifications: Jenkins's Notification plugin posts to "
        "/hooks/jenkins/<name>?token=<this secret> when a build starts and ends, and Slipway "
        "polls only as a fallback (SLIPWAY_POLL_FALLBACK_SECONDS). Stored encrypted.",
    )
    timeout_seconds = models.PositiveIntegerField(default=30)

    def __str__(self) -> str:
        return self.name


class Registry(models.Model):
    """An OCI registry (Harbor, Docker Hub, distribution): where Slipway checks that an
    image digest exists before it deploys it."""

    name = models.CharField(max_length=100, unique=True)
    url = models.CharField(
        max_length=sizes.LINE,
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


class BuildBackend(models.TextChoices):
    """What builds a service's images (docs/builds.md)."""

    JENKINS = "jenkins", "Jenkins"
    DRONE = "drone", "Drone"


class DroneServer(models.Model):
    """A Drone server Slipway starts builds on (it builds only; promotion stays Slipway's).
    The token is encrypted."""

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(help_text="e.g. https://drone.example.com")
    token = EncryptedTextField(blank=True, help_text="Stored encrypted; never shown again.")
    timeout_seconds = models.PositiveIntegerField(default=10)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Service(models.Model):
    """One deployable application: its Jenkins job, Helm chart, image repository, team."""

    slug = models.SlugField(unique=True, validators=[dns_label])
    name = models.CharField(max_length=100)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="services")
    repository_url = models.CharField(max_length=sizes.PARAGRAPH, blank=True)
    jenkins_server = models.ForeignKey(
        JenkinsServer, on_delete=models.PROTECT, null=True, blank=True, related_name="services"
    )
    jenkins_job = models.CharField(
        max_length=sizes.LINE,
        blank=True,
        help_text="Job path; '/' separates folders, e.g. team/app.",
    )
    build_backend = models.CharField(
        max_length=16, choices=BuildBackend.choices, default=BuildBackend.JENKINS
    )
    drone_server = models.ForeignKey(
        DroneServer, on_delete=models.PROTECT, null=True, blank=True, related_name="services"
    )
    drone_repository = models.CharField(
        max_length=200, blank=True, help_text="Drone's owner/name of the repository it builds."
    )
    chart = models.CharField(
        max_length=sizes.LINE, help_text="Helm chart reference: a path, repo/chart or oci:// URL."
    )
    chart_version = models.CharField(max_length=50, blank=True)
    image_repository = models.CharField(max_length=sizes.LINE, help_text="e.g. registry/team/app")
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

    catalog_source = models.ForeignKey(
        "CatalogSource",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="services",
        help_text="Declared by a slipway.yaml this source reads (docs/catalog.md): change it "
        "there, not here.",
    )
    catalog_repository = models.CharField(max_length=sizes.PARAGRAPH, blank=True)
    catalog_commit = models.CharField(max_length=64, blank=True)
    orphaned_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Its slipway.yaml disappeared: history kept, nothing deploys until it is back.",
    )
    backstage_entity = models.CharField(
        max_length=200, blank=True, help_text="The Backstage entity that points here."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CatalogSource(models.Model):
    """Repositories whose slipway.yaml declare services (docs/catalog.md): synced on a
    schedule and on a push webhook, a dry run first if you like, a full sync per source."""

    name = models.CharField(max_length=100, unique=True)
    repositories = models.TextField(
        help_text="One repository URL per line (https://, http://, git:// or ssh://); each "
        "may end with #branch."
    )
    webhook_secret = EncryptedTextField(
        blank=True,
        help_text="Turns on the push webhook /hooks/catalog/<id>?token=…; stored encrypted.",
    )
    enabled = models.BooleanField(default=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_report = models.JSONField(
        default=dict, blank=True, help_text="Per repository: the commit read, or the error."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def repository_list(self) -> list[tuple[str, str]]:
        """(url, branch) per line; an empty branch means the default one."""
        found = []
        for line in self.repositories.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                url, _, branch = line.partition("#")
                found.append((url.strip(), branch.strip()))
        return found


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
    rollout_timeout_seconds = models.PositiveIntegerField(
        default=600, help_text="How long one cluster's rollout may take."
    )
    bake_seconds = models.PositiveIntegerField(
        default=0,
        help_text="With several clusters: how long a wave's release runs before the next "
        "cluster gets it.",
    )
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
    """Where one service runs in one environment on one cluster: namespace, Helm release,
    values. An environment may have several (Prod in cluster-a and cluster-b): a deployment
    there rolls out to them one wave after another, lowest wave first."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="targets")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="targets")
    cluster = models.ForeignKey(
        "clusters.Cluster", on_delete=models.PROTECT, related_name="targets"
    )
    namespace = models.CharField(max_length=63, validators=[dns_label])
    helm_release_name = models.CharField(max_length=53, validators=[dns_label])
    values = models.JSONField(default=dict, blank=True, help_text="Merged over the defaults.")
    wave = models.PositiveSmallIntegerField(
        default=1,
        help_text="With several clusters in the environment: the order they get a release "
        "in (1 first).",
    )
    canary_steps = models.JSONField(
        default=list,
        blank=True,
        help_text='Opt-in canary: e.g. [{"weight": 10}, {"weight": 50, "pause": "lead"}]; the '
        "new digest runs beside the stable release, traffic shifted by nginx-ingress canary "
        "annotations, each step analysed (docs/verification.md). Empty: off.",
    )
    drift = models.JSONField(
        null=True,
        blank=True,
        help_text="What the cluster runs that Slipway did not deploy (set by the drift check).",
    )
    drift_checked_at = models.DateTimeField(null=True, blank=True)
    adopted_release = models.CharField(
        max_length=sizes.QUOTE,
        blank=True,
        help_text="A Helm release installed without Slipway that a platform admin let this "
        "target take over, as cluster id/namespace/release (it counts only while the target "
        "still points there).",
    )

    class Meta:
        ordering = ["service", "environment__order", "wave", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "environment", "cluster"],
                name="target_unique_service_environment_cluster",
                violation_error_message="The service already has a target on this cluster in "
                "this environment; edit that one.",
            ),
            models.UniqueConstraint(
                fields=["service", "environment", "wave"],
                name="target_unique_wave",
                violation_error_message="Another of the service's targets in this environment "
                "has this wave; give each cluster its own.",
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
        try:
            steps = parse_canary_steps(self.canary_steps)
        except CanaryStepsInvalid as exc:
            raise ValidationError({"canary_steps": str(exc)}) from exc
        if steps and len(self.helm_release_name) > 53 - len(CANARY_SUFFIX):
            raise ValidationError(
                {"canary_steps": f"The canary Helm release is named {self.helm_release_name}"
                 f"{CANARY_SUFFIX}: shorten the release name to {53 - len(CANARY_SUFFIX)} "
                 "characters."}
            )  # fmt: skip


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
    reason = models.CharField(max_length=sizes.LINE)
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
