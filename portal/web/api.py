"""Core API endpoints: who the caller is, the audit trail, and change freezes."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from portal.access.choices import TokenScope
from portal.access.models import Team
from portal.access.permissions import team_roles, visible_events, visible_teams
from portal.audit import reads as audit_reads
from portal.audit.chain import Actor, RequestContext
from portal.audit.models import AuditEvent
from portal.catalog.freezes import freeze_create, freeze_delete, visible_freezes
from portal.catalog.models import Freeze
from portal.catalog.selectors import environment_or_404
from portal.core import sizes
from portal.core.exports import streamed_response
from portal.web.api_defaults import CSVRenderer, Page, ProblemJSONRenderer
from portal.web.drf import ApiView


class MeApi(ApiView):
    """Who the caller is, their roles, and their token's scopes: a quick check."""

    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        authenticated_by = serializers.CharField()
        roles = serializers.DictField(child=serializers.CharField())
        scopes = serializers.ListField(child=serializers.CharField(), allow_null=True)
        superuser = serializers.BooleanField()

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        teams = dict(
            Team.objects.filter(pk__in=list(team_roles(request.user))).values_list("pk", "slug")
        )
        data = {
            "username": request.user.get_username(),
            "authenticated_by": "token" if request.auth is not None else "session",
            "roles": {teams[pk]: role for pk, role in team_roles(request.user).items()},
            "scopes": getattr(request.auth, "scopes", None),
            "superuser": request.user.is_superuser,
        }
        return Response(self.OutputSerializer(data).data)


class AuditEventOutput(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = audit_reads.COLUMNS


class AuditEventListApi(generics.ListAPIView, ApiView):
    """The audit events the caller may see, newest first; `?format=csv` streams them all
    as CSV (the filters apply)."""

    serializer_class = AuditEventOutput
    filterset_class = audit_reads.AuditEventFilter
    pagination_class = Page
    renderer_classes = [JSONRenderer, ProblemJSONRenderer, CSVRenderer]

    def get_queryset(self):
        return visible_events(self.request.user)

    @extend_schema(parameters=[OpenApiParameter("format", str, enum=["json", "csv"])])
    def get(self, request, *args, **kwargs):
        if request.query_params.get("format") == "csv":
            # The CSV holds every event, not a page; a page size is still checked, as the
            # schema says, rather than quietly ignored when malformed.
            self.paginator.get_page_size(request)
            events = self.filter_queryset(self.get_queryset()).order_by("-id")
            stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
            response = streamed_response(
                request, audit_reads.csv_lines(events), content_type="text/csv; charset=utf-8"
            )
            response["Content-Disposition"] = f'attachment; filename="slipway-audit-{stamp}.csv"'
            return response
        return super().get(request, *args, **kwargs)


class FreezeOutput(serializers.ModelSerializer):
    environment = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = Freeze
        fields = [
            "id",
            "environment",
            "team",
            "starts_at",
            "ends_at",
            "reason",
            "created_by",
            "created_at",
            "active",
        ]

    def get_active(self, freeze) -> bool:
        return freeze.starts_at <= timezone.now() < freeze.ends_at


class FreezeInput(serializers.Serializer):
    team = serializers.SlugField(
        required=False, help_text="The team whose services it freezes; omit for every team."
    )
    starts_at = serializers.DateTimeField(required=False, help_text="Default: now.")
    ends_at = serializers.DateTimeField()
    reason = serializers.CharField(max_length=sizes.LINE)


class FreezeListApi(generics.ListAPIView, ApiView):
    """Freezes of an environment that cover the caller's teams (current and planned
    first); POST makes one (a lead of the team, or a site admin for every team)."""

    serializer_class = FreezeOutput
    scope = TokenScope.APPROVE

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema is being generated
            return Freeze.objects.none()
        environment = environment_or_404(self.kwargs["slug"])
        return (
            visible_freezes(self.request.user)
            .filter(environment=environment, ends_at__gt=timezone.now())
            .order_by("starts_at", "id")
        )

    @extend_schema(request=FreezeInput, responses={201: FreezeOutput})
    def post(self, request, slug: str):
        environment = environment_or_404(slug)
        data = FreezeInput(data=request.data)
        data.is_valid(raise_exception=True)
        team = None
        if data.validated_data.get("team"):
            team = get_object_or_404(visible_teams(request.user), slug=data.validated_data["team"])
        freeze = freeze_create(
            environment=environment,
            team=team,
            starts_at=data.validated_data.get("starts_at") or timezone.now(),
            ends_at=data.validated_data["ends_at"],
            reason=data.validated_data["reason"],
            user=request.user,
            actor=Actor.from_request(request),
            context=RequestContext.from_request(request),
        )
        return Response(FreezeOutput(freeze).data, status=status.HTTP_201_CREATED)


class FreezeDetailApi(ApiView):
    """One freeze; DELETE ends it (a lead of its team, or a site admin)."""

    scope = TokenScope.APPROVE

    def _freeze(self, request, slug: str, pk: int) -> Freeze:
        return get_object_or_404(visible_freezes(request.user), environment__slug=slug, pk=pk)

    @extend_schema(responses=FreezeOutput)
    def get(self, request, slug: str, pk: int):
        return Response(FreezeOutput(self._freeze(request, slug, pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, slug: str, pk: int):
        freeze_delete(
            freeze=self._freeze(request, slug, pk),
            user=request.user,
            actor=Actor.from_request(request),
            context=RequestContext.from_request(request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
