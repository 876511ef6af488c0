"""What the API shows of services, releases and deployments (never a secret)."""

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.core import sizes
from releases.builds import REF_RE, REF_RULE
from releases.choices import DeploymentKind
from releases.models import ApprovalVote, ChangeTicket, Deployment, Release, TargetRollout


def prefetched(relation: str, queryset: QuerySet) -> Prefetch:
    """A prefetch of `relation` into a plain list (`<relation>_prefetched`), which the
    nested lists below read. Prefetched into the relation's manager instead, Django makes
    and filters a queryset per parent object (about 350 for a page of 50 releases: a
    third of the page's time)."""
    return Prefetch(relation, queryset, to_attr=_listed_as(relation))


def _listed_as(relation: str) -> str:
    return f"{relation}_prefetched"


def _listed(instance, relation: str) -> list | None:
    """What `prefetched` left of `relation` on `instance`; None when it did not run."""
    return getattr(instance, _listed_as(relation), None)


class PrefetchedList(serializers.ListSerializer):
    """A nested list read from what `prefetched` left on the parent, when it did (else as
    DRF reads its source: an object just made, a list)."""

    def get_attribute(self, instance):
        listed = _listed(instance, self.source)
        return listed if listed is not None else super().get_attribute(instance)


def username(source: str) -> serializers.CharField:
    """A user by name; null when there is none (Slipway itself acted)."""
    return serializers.CharField(source=f"{source}.username", read_only=True, allow_null=True)


class RolloutOutput(serializers.ModelSerializer):
    """The deployment's rollout to one of its clusters."""

    cluster = serializers.CharField(source="target.cluster.name")
    namespace = serializers.CharField(source="target.namespace")
    helm_release = serializers.CharField(source="target.helm_release_name")

    class Meta:
        model = TargetRollout
        list_serializer_class = PrefetchedList
        fields = [
            "cluster",
            "namespace",
            "helm_release",
            "wave",
            "status",
            "status_reason",
            "helm_revision",
            "previous_revision",
            "rolled_back_to_revision",
            "verified_images",
            "canary",
            "progress",
            "started_at",
            "finished_at",
        ]
        extra_kwargs = {
            "canary": {
                "help_text": "Canary steps on this cluster, if any: release (the canary Helm "
                "release), step, steps, weight (% of traffic), phase (rolling, analysing, "
                "paused, promoting, promoted, aborted), run (the step's verification run)."
            }
        }


def _sole(field: str, empty=None):
    """A rollout fact at the deployment's top level: the one cluster's (null when there are
    several: see `clusters`)."""

    def read(self, deployment):
        rollouts = _listed(deployment, "rollouts")
        rollouts = list(deployment.rollouts.all()) if rollouts is None else rollouts
        return getattr(rollouts[0], field) if len(rollouts) == 1 else empty

    return read


_revision = extend_schema_field(serializers.IntegerField(allow_null=True))


class VoteOutput(serializers.ModelSerializer):
    by = serializers.CharField(source="user.username")
    represented_as = serializers.CharField(help_text="The approval rule it counted for.")

    class Meta:
        model = ApprovalVote
        list_serializer_class = PrefetchedList
        fields = ["by", "represented_as", "approved", "comment", "at"]


class ChangeTicketOutput(serializers.ModelSerializer):
    system = serializers.CharField(source="system.name")

    class Meta:
        model = ChangeTicket
        fields = ["system", "number", "state", "approval", "planned_start", "planned_end",
                  "emergency", "emergency_reason", "outcome", "last_error"]  # fmt: skip


class DeploymentOutput(serializers.ModelSerializer):
    environment = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    requested_by = username("requested_by")
    approved_by = serializers.SerializerMethodField()
    decision_comment = serializers.SerializerMethodField()
    approvals = VoteOutput(
        source="votes",
        many=True,
        read_only=True,
        help_text="Each approval or rejection, with the rule it counted for.",
    )
    change_ticket = serializers.SerializerMethodField(
        help_text="The change request it opened, as last read back (none: no change system)."
    )
    clusters = RolloutOutput(
        source="rollouts",
        many=True,
        read_only=True,
        help_text="One rollout per cluster of the environment, in wave order.",
    )
    helm_revision = serializers.SerializerMethodField(help_text="With one cluster: its.")
    previous_revision = serializers.SerializerMethodField(help_text="With one cluster: its.")
    rolled_back_to_revision = serializers.SerializerMethodField(help_text="With one cluster: its.")
    verified_images = serializers.SerializerMethodField(help_text="With one cluster: its.")

    get_helm_revision = _revision(_sole("helm_revision"))
    get_previous_revision = _revision(_sole("previous_revision"))
    get_rolled_back_to_revision = _revision(_sole("rolled_back_to_revision"))
    get_verified_images = extend_schema_field(serializers.ListField(child=serializers.DictField()))(
        _sole("verified_images", [])
    )

    class Meta:
        model = Deployment
        list_serializer_class = PrefetchedList
        fields = [
            "id",
            "release",
            "environment",
            "kind",
            "status",
            "status_reason",
            "image",
            "helm_revision",
            "previous_revision",
            "rolled_back_to_revision",
            "verified_images",
            "clusters",
            "freeze_override",
            "gate_override",
            "progress",
            "requested_by",
            "approved_by",
            "decision_comment",
            "approvals",
            "change_ticket",
            "created_at",
            "started_at",
            "finished_at",
        ]

    @extend_schema_field(ChangeTicketOutput(allow_null=True))
    def get_change_ticket(self, deployment) -> dict | None:
        try:
            ticket = deployment.change_ticket
        except ChangeTicket.DoesNotExist:
            return None
        return ChangeTicketOutput(ticket).data

    def get_approved_by(self, deployment) -> str | None:
        approval = getattr(deployment, "approval", None)
        return approval.decided_by.get_username() if approval and approval.approved else None

    def get_decision_comment(self, deployment) -> str | None:
        approval = getattr(deployment, "approval", None)
        return approval.comment if approval else None


class ReleaseOutput(serializers.ModelSerializer):
    service = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    requested_by = username("requested_by")
    image = serializers.CharField(read_only=True)
    deployments = DeploymentOutput(many=True, read_only=True)

    class Meta:
        model = Release
        fields = [
            "id",
            "service",
            "ref",
            "commit_sha",
            "status",
            "status_reason",
            "progress",
            "build_backend",
            "jenkins_job",
            "drone_repository",
            "queue_item_id",
            "build_number",
            "build_url",
            "build_result",
            "image_repository",
            "image_digest",
            "image",
            "requested_by",
            "created_at",
            "build_started_at",
            "finished_at",
            "deployments",
        ]


class RunningOutput(serializers.Serializer):
    """What runs in one environment now."""

    deployment = serializers.IntegerField(source="pk")
    release = serializers.IntegerField(source="release_id")
    ref = serializers.CharField(source="release.ref")
    image = serializers.CharField()
    digest = serializers.CharField(source="release.image_digest")
    since = serializers.DateTimeField(source="finished_at")
    by = username("requested_by")


class BriefDeploymentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    release = serializers.IntegerField(source="release_id")
    kind = serializers.CharField()
    status = serializers.CharField()
    requested_by = username("requested_by")
    created_at = serializers.DateTimeField()


class FreezeBrief(serializers.Serializer):
    id = serializers.IntegerField()
    until = serializers.DateTimeField(source="ends_at")
    reason = serializers.CharField()
    by = serializers.CharField(source="created_by.username", read_only=True)


class LinkOutput(serializers.Serializer):
    name = serializers.CharField()
    url = serializers.CharField(help_text="The environment's link template, filled in.")


class VariableOutput(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.SerializerMethodField(help_text="Null for a secret: never shown.")
    secret = serializers.BooleanField(source="is_secret")
    scope = serializers.ChoiceField(
        choices=["environment", "target"],
        help_text="Set for the whole environment, or for this service's target (wins).",
    )

    def get_value(self, variable) -> str | None:
        return None if variable.is_secret else variable.value


class ClusterStateOutput(serializers.Serializer):
    """What one cluster of the environment runs: its last change, and any drift."""

    cluster = serializers.CharField(source="target.cluster.name")
    wave = serializers.IntegerField(source="target.wave")
    namespace = serializers.CharField(source="target.namespace")
    release = serializers.IntegerField(source="release_id", allow_null=True)
    status = serializers.CharField(
        source="last.status",
        allow_null=True,
        default=None,
        help_text="Of the last rollout that changed what runs there: succeeded or failed.",
    )
    deployment = serializers.IntegerField(
        source="last.deployment_id", allow_null=True, default=None
    )
    since = serializers.DateTimeField(source="last.finished_at", allow_null=True, default=None)
    drift = serializers.JSONField(allow_null=True)


class EnvironmentStateOutput(serializers.Serializer):
    environment = serializers.SlugField(source="environment.slug")
    name = serializers.CharField(source="environment.name")
    namespace = serializers.CharField(source="target.namespace", allow_null=True, default=None)
    running = RunningOutput(source="current", allow_null=True)
    in_flight = BriefDeploymentOutput(source="active", allow_null=True)
    waiting = serializers.IntegerField(
        source="waiting_count", help_text="Requests waiting for approval or for the environment."
    )
    ready_for = serializers.SlugField(
        source="promote_to.slug",
        allow_null=True,
        default=None,
        help_text="The next environment, when it does not run this release yet.",
    )
    drift = serializers.JSONField(
        allow_null=True,
        help_text="Null when the cluster runs what Slipway deployed; else what differs, and "
        "since when.",
    )
    freeze = FreezeBrief(allow_null=True)
    links = LinkOutput(many=True, help_text="Grafana, logs, URL… for the service here.")
    clusters = ClusterStateOutput(
        many=True,
        help_text="Each cluster (target) here, in wave order; `running` is set only "
        "when every one runs the same release.",
    )


class EnvironmentDetailOutput(EnvironmentStateOutput):
    rollback_to = serializers.IntegerField(
        source="rollback_to.pk",
        allow_null=True,
        default=None,
        help_text="The release that succeeded here before the one running now.",
    )
    variables = VariableOutput(
        many=True, help_text="Injected into the chart's values on every deployment here."
    )


class ServiceOutput(serializers.Serializer):
    slug = serializers.SlugField(source="service.slug")
    name = serializers.CharField(source="service.name")
    team = serializers.SlugField(source="service.team.slug")
    image_repository = serializers.CharField(source="service.image_repository")
    environments = EnvironmentStateOutput(many=True, source="states")


class ServiceDetailOutput(ServiceOutput):
    environments = EnvironmentDetailOutput(many=True, source="states")


class ReleaseInput(serializers.Serializer):
    # The rule release_create enforces, stated in the schema (no trimming: a ref with
    # spaces is refused, as the pattern says).
    ref = serializers.RegexField(
        REF_RE.pattern, max_length=sizes.QUOTE, trim_whitespace=False,
        help_text="A branch, tag or commit: letters, digits and ._/-+@, starting with a letter "
        "or digit, no '..'.",
        error_messages={"invalid": REF_RULE},
    )  # fmt: skip
    deploy_to = serializers.SlugField(
        required=False,
        help_text="First environment's slug, to deploy as soon as the build succeeds.",
    )


class DeploymentInput(serializers.Serializer):
    environment = serializers.SlugField()
    kind = serializers.ChoiceField(choices=DeploymentKind.choices, default=DeploymentKind.PROMOTE)
    freeze_override = serializers.CharField(
        max_length=sizes.LINE,
        required=False,
        allow_blank=True,
        help_text="A lead's reason to deploy while the environment is frozen.",
    )
    gate_override = serializers.CharField(
        max_length=sizes.LINE,
        required=False,
        allow_blank=True,
        help_text="A lead's reason to promote although promotion gates fail.",
    )
    emergency_reason = serializers.CharField(
        max_length=sizes.LINE,
        required=False,
        allow_blank=True,
        help_text="A lead's reason for an emergency change: the environment's change request "
        "is opened as an emergency and the deployment does not wait for its approval there "
        "(the approval policy still applies).",
    )


class ClusterDecisionInput(serializers.Serializer):
    reason = serializers.CharField(
        max_length=sizes.LINE, help_text="Why (recorded and audited).", trim_whitespace=True
    )


class DecisionInput(serializers.Serializer):
    comment = serializers.CharField(max_length=sizes.PARAGRAPH, required=False, allow_blank=True)
    represented_as = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        help_text="The approval rule this approval counts for (default: the first unmet rule "
        "the caller counts for). See GET /deployments/{id}/approvals.",
    )
    freeze_override = serializers.CharField(
        max_length=sizes.LINE,
        required=False,
        allow_blank=True,
        help_text="A lead's reason to start it while the environment is frozen.",
    )
    gate_override = serializers.CharField(
        max_length=sizes.LINE,
        required=False,
        allow_blank=True,
        help_text="A lead's reason to approve although promotion gates fail.",
    )


WHOLE = "A whole number, 0 or more."


class LogQuery(serializers.Serializer):
    offset = serializers.IntegerField(
        min_value=0,
        required=False,
        default=0,
        help_text="Byte offset to read from.",
        error_messages=dict.fromkeys(("invalid", "min_value", "max_string_length"), WHOLE),
    )


class LogOutput(serializers.Serializer):
    text = serializers.CharField()
    next_offset = serializers.IntegerField()
    more = serializers.BooleanField(
        help_text="True while the build runs: ask again from next_offset."
    )
