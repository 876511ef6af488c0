"""GET /api/v1/insights/: the delivery metrics of the insights page, as JSON or CSV."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from portal.web.api_defaults import CSVRenderer, ProblemJSONRenderer
from portal.web.drf import ApiView
from portal.web.schema import SLUG
from releases.filters import InsightsForm
from releases.insights import insights_csv, insights_for


class MetricsOutput(serializers.Serializer):
    scope = serializers.ChoiceField(choices=["overall", "team", "service"])
    name = serializers.CharField()
    team = serializers.CharField()
    service = serializers.CharField()
    deployments = serializers.IntegerField(help_text="Succeeded changes to Prod.")
    per_week = serializers.FloatField()
    changes = serializers.IntegerField()
    failures = serializers.IntegerField()
    failure_rate = serializers.FloatField(allow_null=True, help_text="0 to 1.")
    lead_time_median_hours = serializers.FloatField(allow_null=True)
    lead_time_p90_hours = serializers.FloatField(allow_null=True)
    restore_median_hours = serializers.FloatField(allow_null=True)
    restored = serializers.IntegerField()


class WeekOutput(serializers.Serializer):
    week = serializers.DateTimeField()
    deployments = serializers.IntegerField()
    failures = serializers.IntegerField()


class InsightsOutput(serializers.Serializer):
    since = serializers.DateTimeField(source="period.since")
    until = serializers.DateTimeField(source="period.until")
    environment = serializers.SlugField(source="environment.slug", allow_null=True)
    rows = MetricsOutput(many=True)
    weeks = WeekOutput(many=True)


class InsightsApi(ApiView):
    """Deployment frequency, lead time, change failure rate and time to restore, per
    service, per team and overall (definitions: docs/insights.md)."""

    renderer_classes = [JSONRenderer, ProblemJSONRenderer, CSVRenderer]
    validates_query = True  # a bad date answers 400 (portal/schema.py documents it)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "since", OpenApiTypes.DATE, description="First day; default 30 days ago"
            ),
            OpenApiParameter("until", OpenApiTypes.DATE, description="Last day, included"),
            OpenApiParameter("team", SLUG, description="A team's slug"),
            OpenApiParameter("service", SLUG, description="A service's slug"),
            OpenApiParameter("format", str, enum=["json", "csv"]),
        ],
        responses=InsightsOutput,
    )
    def get(self, request):
        form = InsightsForm(request.query_params)
        if not form.is_valid():
            raise ValidationError(
                {field or "non_field_errors": errors for field, errors in form.errors.items()}
            )
        result = insights_for(request.user, **form.selection())
        if request.query_params.get("format") == "csv":
            response = HttpResponse(insights_csv(result), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = 'attachment; filename="slipway-insights.csv"'
            return response
        return Response(InsightsOutput(result).data)
