"""Promotion gates through the API: what stands between a release and the next environment,
and a lead's tick of a checklist item."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from portal.access.choices import Role, TokenScope
from portal.access.permissions import require_role
from portal.audit.chain import actor_and_context
from portal.catalog.models import Environment
from portal.core import sizes
from portal.web.drf import ApiView
from portal.web.limits import api_rate
from releases import selectors
from releases.errors import Conflict
from releases.gates import checklist_tick, gates_check
from releases.models import PromotionGate
from releases.promotion import previous_environment, release_promotion_target


class GateVerdictOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    passed = serializers.BooleanField(
        allow_null=True, help_text="null: not checked yet for this release."
    )
    detail = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    checked_at = serializers.DateTimeField(allow_null=True)


class GatesOutput(serializers.Serializer):
    environment = serializers.SlugField(help_text="Where the release would be promoted.")
    from_environment = serializers.SlugField(allow_null=True)
    passed = serializers.BooleanField(help_text="Every gate checked and passed (or there is none).")
    gates = GateVerdictOutput(many=True)


class TickInput(serializers.Serializer):
    note = serializers.CharField(max_length=sizes.LINE, required=False, allow_blank=True)


def _stored(state) -> dict:
    last = state.last
    return {
        "id": state.gate.pk, "name": state.gate.name, "kind": state.gate.kind,
        "passed": last.passed if last else None,
        "detail": last.detail if last else "not checked yet: POST to check now",
        "value": last.value if last else None,
        "checked_at": last.checked_at if last else None,
    }  # fmt: skip


def _checked(verdict, now) -> dict:
    gate = verdict.gate
    return {"id": gate.pk, "name": gate.name, "kind": gate.kind, "passed": verdict.passed,
            "detail": verdict.detail, "value": verdict.value, "checked_at": now}  # fmt: skip


class ReleaseGatesApi(ApiView):
    """The gates a promotion of this release to `environment` must pass (default: the next
    environment on its path). GET shows the last stored result of each, calling nothing;
    POST checks them now (Prometheus is asked; each result is stored), a few times a
    minute per user."""

    validates_query = True
    may_conflict = True  # a release with no environment after its own (portal/web/schema.py)

    def _target(self, request, pk: int):
        release = get_object_or_404(selectors.visible_releases(request.user), pk=pk)
        slug = request.query_params.get("environment", "")
        environment = (
            Environment.objects.filter(slug=slug).first()
            if slug
            else release_promotion_target(release=release)
        )
        if environment is None and not slug:
            raise Conflict(f"Release #{release.pk} has no environment after where it runs.")
        if environment is None:
            raise ValidationError({"environment": [f"No environment {slug!r} to promote to."]})
        return release, environment

    def _answer(self, release, environment, gates: list[dict]) -> Response:
        source = previous_environment(release.service, environment)
        return Response(
            GatesOutput(
                {
                    "environment": environment.slug,
                    "from_environment": source.slug if source else None,
                    "passed": all(g["passed"] is True for g in gates),
                    "gates": gates,
                }
            ).data
        )

    @extend_schema(parameters=[OpenApiParameter("environment", str)], responses=GatesOutput)
    def get(self, request, pk: int):
        release, environment = self._target(request, pk)
        states = selectors.release_gates_to(release=release, environment=environment)
        return self._answer(release, environment, [_stored(s) for s in states])

    @extend_schema(
        parameters=[OpenApiParameter("environment", str)], request=None, responses=GatesOutput
    )
    def post(self, request, pk: int):
        release, environment = self._target(request, pk)
        require_role(request.user, release.service, Role.DEVELOPER)
        api_rate(request, "gate-check")
        now = timezone.now()
        verdicts = gates_check(release=release, environment=environment)
        return self._answer(release, environment, [_checked(v, now) for v in verdicts])


class ChecklistTickApi(ApiView):
    """A lead ticks a checklist gate for this release (audited)."""

    scope = TokenScope.APPROVE

    @extend_schema(request=TickInput, responses={201: None})
    def post(self, request, pk: int, gate: int):
        release = get_object_or_404(selectors.visible_releases(request.user), pk=pk)
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
