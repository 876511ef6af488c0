"""Promotion gates through the API: what stands between a release and the next environment,
and a lead's tick of a checklist item."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from portal.audit import actor_and_context
from portal.choices import TokenScope
from portal.drf import ApiView
from portal.models import Environment
from releases.api.views import _releases
from releases.gates import checklist_tick, gates_check
from releases.models import PromotionGate
from releases.promotion import previous_environment, release_promotion_target


class GateVerdictOutput(serializers.Serializer):
    id = serializers.IntegerField(source="gate.pk")
    name = serializers.CharField(source="gate.name")
    kind = serializers.CharField(source="gate.kind")
    passed = serializers.BooleanField()
    detail = serializers.CharField()
    value = serializers.FloatField(allow_null=True)


class GatesOutput(serializers.Serializer):
    environment = serializers.SlugField(help_text="Where the release would be promoted.")
    from_environment = serializers.SlugField(allow_null=True)
    passed = serializers.BooleanField(help_text="Every gate passed (or there is none).")
    gates = GateVerdictOutput(many=True)


class TickInput(serializers.Serializer):
    note = serializers.CharField(max_length=300, required=False, allow_blank=True)


class ReleaseGatesApi(ApiView):
    """Evaluate, now, the gates a promotion of this release to `environment` must pass
    (default: the next environment on its path); each result is stored."""

    validates_query = True

    @extend_schema(parameters=[OpenApiParameter("environment", str)], responses=GatesOutput)
    def get(self, request, pk: int):
        release = get_object_or_404(_releases(request), pk=pk)
        slug = request.query_params.get("environment", "")
        environment = (
            Environment.objects.filter(slug=slug).first()
            if slug
            else release_promotion_target(release=release)
        )
        if environment is None:
            raise ValidationError({"environment": [f"No environment {slug!r} to promote to."]})
        verdicts = gates_check(release=release, environment=environment)
        source = previous_environment(release.service, environment)
        return Response(
            GatesOutput(
                {
                    "environment": environment.slug,
                    "from_environment": source.slug if source else None,
                    "passed": all(v.passed for v in verdicts),
                    "gates": verdicts,
                }
            ).data
        )


class ChecklistTickApi(ApiView):
    """A lead ticks a checklist gate for this release (audited)."""

    scope = TokenScope.APPROVE

    @extend_schema(request=TickInput, responses={201: None})
    def post(self, request, pk: int, gate: int):
        release = get_object_or_404(_releases(request), pk=pk)
        found = get_object_or_404(PromotionGate, pk=gate, enabled=True)
        data = TickInput(data=request.data)
        data.is_valid(raise_exception=True)
        tick = checklist_tick(
            gate=found,
            release=release,
            user=request.user,
            note=data.validated_data.get("note", ""),
            **actor_and_context(request),
        )
        return Response(
            {"gate": found.name, "ticked_by": tick.ticked_by.get_username(), "at": tick.ticked_at},
            status=status.HTTP_201_CREATED,
        )
