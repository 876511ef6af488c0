"""What the API shows of releases and deployments (never a secret)."""

from rest_framework import serializers

from releases.models import Deployment, Release


class DeploymentOutput(serializers.ModelSerializer):
    environment = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    requested_by = serializers.StringRelatedField()
    approved_by = serializers.SerializerMethodField()

    class Meta:
        model = Deployment
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
            "progress",
            "requested_by",
            "approved_by",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_approved_by(self, deployment) -> str | None:
        approval = getattr(deployment, "approval", None)
        return approval.decided_by.get_username() if approval and approval.approved else None


class ReleaseOutput(serializers.ModelSerializer):
    service = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    requested_by = serializers.StringRelatedField()
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
            "jenkins_job",
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


class ReleaseInput(serializers.Serializer):
    ref = serializers.CharField(max_length=200)
    deploy_to = serializers.SlugField(
        required=False,
        help_text="First environment's slug, to deploy as soon as the build succeeds.",
    )


class DeploymentInput(serializers.Serializer):
    environment = serializers.SlugField()
    kind = serializers.ChoiceField(choices=["deploy", "promote", "rollback"], default="promote")


class DecisionInput(serializers.Serializer):
    comment = serializers.CharField(max_length=500, required=False, allow_blank=True)


class LogOutput(serializers.Serializer):
    text = serializers.CharField()
    next_offset = serializers.IntegerField()
    more = serializers.BooleanField(
        help_text="True while the build runs: ask again from next_offset."
    )
