"""Verification after a deployment through the API: a release's runs with every
measurement, and a lead's word on a run (re-run, skip, or judge an inconclusive one)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from portal.access.choices import TokenScope
from portal.audit.chain import actor_and_context
from portal.core import sizes
from portal.web.drf import ApiView
from releases import selectors
from releases.choices import VerificationStatus
from releases.models import Measurement, VerificationRun
from releases.verified import is_verified
from releases.verifying import ACTIONS, verification_decide


class MeasurementOutput(serializers.ModelSerializer):
    metric = serializers.CharField(source="metric_name")

    class Meta:
        model = Measurement
        fields = ["metric", "sequence", "phase", "value", "detail", "query", "taken_at"]


class VerificationRunOutput(serializers.ModelSerializer):
    environment = serializers.SlugField(source="environment.slug")
    deployment = serializers.IntegerField(source="deployment_id")
    release = serializers.IntegerField(source="release_id")
    status = serializers.ChoiceField(choices=VerificationStatus.choices)
    verified = serializers.SerializerMethodField(
        help_text="Whether this run makes its release verified in its environment."
    )
    judgement = serializers.CharField(help_text="A lead's word on an inconclusive run, if any.")
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True, default=None)
    rollback = serializers.IntegerField(
        source="rollback_id", allow_null=True, help_text="The rollback its failure started."
    )
    measurements = MeasurementOutput(many=True)

    class Meta:
        model = VerificationRun
        fields = ["id", "environment", "deployment", "release", "status", "verified", "reason",
                  "judgement", "decided_by", "rollback", "created_at", "next_at", "finished_at",
                  "measurements"]  # fmt: skip

    def get_verified(self, run: VerificationRun) -> bool:
        return is_verified(run)


class VerificationDecisionInput(serializers.Serializer):
    reason = serializers.CharField(
        max_length=sizes.LINE, help_text="Why (recorded and audited).", trim_whitespace=True
    )


def _runs(request):
    return VerificationRun.objects.filter(
        release__in=selectors.visible_releases(request.user)
    ).select_related("environment", "decided_by", "deployment", "service__team", "release")


class ReleaseVerificationsApi(ApiView):
    """The verification runs of a release, newest first, each with every measurement."""

    @extend_schema(responses=VerificationRunOutput(many=True))
    def get(self, request, pk: int):
        release = get_object_or_404(selectors.visible_releases(request.user), pk=pk)
        runs = _runs(request).filter(release=release).prefetch_related("measurements")
        return Response(VerificationRunOutput(runs, many=True).data)


class VerificationDecisionApi(ApiView):
    """A lead's word on a verification run, with a reason (audited): `rerun` starts a fresh
    run of the same deployment; `skip` counts the release verified; on an inconclusive run,
    `continue` counts it verified and `rollback` redeploys the last release verified in the
    environment. Answers the run that holds the decision (a new one for rerun, and for skip
    of a finished run)."""

    scope = TokenScope.APPROVE

    @extend_schema(
        request=VerificationDecisionInput,
        responses={200: VerificationRunOutput},
        parameters=[
            OpenApiParameter(
                "action", str, OpenApiParameter.PATH, enum=list(ACTIONS),
                description="rerun, skip, continue or rollback.",
            ),
        ],
    )  # fmt: skip
    def post(self, request, pk: int, action: str):
        run = get_object_or_404(_runs(request), pk=pk)
        data = VerificationDecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        decided = verification_decide(
            run=run,
            action=action,
            reason=data.validated_data["reason"],
            user=request.user,
            **actor_and_context(request),
        )
        fresh = _runs(request).prefetch_related("measurements").get(pk=decided.pk)
        return Response(VerificationRunOutput(fresh).data)
