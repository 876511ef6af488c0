"""The REST API for scripts and CI: everything the buttons do, with a token.

Thin like the pages: check the caller's role, call one workflow function, answer. Every
error is problem details (portal/drf.py); every POST honours `Idempotency-Key`.
"""

from __future__ import annotations

import django_filters
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response

from portal.audit import Actor, RequestContext
from portal.choices import Role
from portal.drf import ApiView
from portal.models import Environment, Membership, Service
from portal.permissions import has_role
from releases import selectors
from releases.api.serializers import (
    DecisionInput,
    DeploymentInput,
    DeploymentOutput,
    LogOutput,
    ReleaseInput,
    ReleaseOutput,
    ServiceOutput,
)
from releases.builds import release_cancel, release_create
from releases.choices import RELEASE_ACTIVE, ReleaseStatus
from releases.deployments import deployment_decide, deployment_start, deployment_withdraw
from releases.models import Deployment, Release
from releases.promotion import deployment_role_needed


def _require(request, service: Service, role: str) -> None:
    if not has_role(request.user, service, role):
        raise PermissionDenied(f"You need the {role} role in {service.team} for this.")


def _context(request) -> dict:
    return {"actor": Actor.from_request(request), "context": RequestContext.from_request(request)}


def _visible_services(request):
    if getattr(request, "swagger_fake_view", False) or not request.user.is_authenticated:
        return Service.objects.none()
    services = Service.objects.select_related("team")
    if request.user.is_superuser:
        return services
    return services.filter(team__in=Membership.objects.filter(user=request.user).values("team"))


def _visible_releases(request):
    releases = Release.objects.select_related("service__team", "requested_by").prefetch_related(
        "deployments__environment",
        "deployments__requested_by",
        "deployments__approval__decided_by",
    )
    return releases.filter(service__in=_visible_services(request))


def _visible_deployment(request, pk: int) -> Deployment:
    return get_object_or_404(
        Deployment.objects.select_related(
            "service__team", "environment", "release", "requested_by", "approval__decided_by"
        ).filter(service__in=_visible_services(request)),
        pk=pk,
    )


class ReleaseFilter(django_filters.FilterSet):
    service = django_filters.CharFilter(field_name="service__slug")
    status = django_filters.ChoiceFilter(choices=ReleaseStatus.choices)
    ref = django_filters.CharFilter()

    class Meta:
        model = Release
        fields = ["service", "status", "ref"]


class ReleaseListApi(generics.ListAPIView, ApiView):
    """Releases of the services of the caller's teams, newest first."""

    serializer_class = ReleaseOutput
    filterset_class = ReleaseFilter

    def get_queryset(self):
        return _visible_releases(self.request).order_by("-id")


class ReleaseDetailApi(generics.RetrieveAPIView, ApiView):
    serializer_class = ReleaseOutput

    def get_queryset(self):
        return _visible_releases(self.request)


class ReleaseCreateApi(ApiView):
    """Build `ref` once in Jenkins (and deploy it to `deploy_to` when built)."""

    @extend_schema(request=ReleaseInput, responses={201: ReleaseOutput})
    def post(self, request, slug: str):
        service = get_object_or_404(_visible_services(request), slug=slug)
        _require(request, service, Role.DEVELOPER)
        data = ReleaseInput(data=request.data)
        data.is_valid(raise_exception=True)
        deploy_to = None
        if data.validated_data.get("deploy_to"):
            deploy_to = Environment.objects.filter(slug=data.validated_data["deploy_to"]).first()
            if deploy_to is None:
                raise NotFound(f"No environment {data.validated_data['deploy_to']!r}.")
        release = release_create(
            service=service,
            ref=data.validated_data["ref"],
            deploy_to=deploy_to,
            user=request.user,
            **_context(request),
        )
        return Response(ReleaseOutput(release).data, status=status.HTTP_201_CREATED)


class ReleaseLogApi(ApiView):
    """The build console from byte `offset`; poll with `next_offset` while `more`."""

    @extend_schema(parameters=[OpenApiParameter("offset", int)], responses=LogOutput)
    def get(self, request, pk: int):
        release = get_object_or_404(_visible_releases(request), pk=pk)
        try:
            offset = int(request.query_params.get("offset", "0"))
        except ValueError:
            offset = -1
        if offset < 0:
            raise ValidationError({"offset": ["A whole number, 0 or more."]})
        text, next_offset = selectors.release_log_since(release=release, offset=offset)
        return Response(
            LogOutput(
                {"text": text, "next_offset": next_offset, "more": release.status in RELEASE_ACTIVE}
            ).data
        )


class ReleaseCancelApi(ApiView):
    @extend_schema(request=None, responses={202: ReleaseOutput})
    def post(self, request, pk: int):
        release = get_object_or_404(_visible_releases(request), pk=pk)
        _require(request, release.service, Role.DEVELOPER)
        release = release_cancel(release=release, **_context(request))
        return Response(ReleaseOutput(release).data, status=status.HTTP_202_ACCEPTED)


class DeploymentCreateApi(ApiView):
    """Deploy, promote or roll back a built release: the same image digest, never a rebuild."""

    @extend_schema(request=DeploymentInput, responses={201: DeploymentOutput})
    def post(self, request, pk: int):
        release = get_object_or_404(_visible_releases(request), pk=pk)
        data = DeploymentInput(data=request.data)
        data.is_valid(raise_exception=True)
        kind = data.validated_data["kind"]
        _require(request, release.service, deployment_role_needed(kind))
        environment = Environment.objects.filter(slug=data.validated_data["environment"]).first()
        if environment is None:
            raise NotFound(f"No environment {data.validated_data['environment']!r}.")
        deployment = deployment_start(
            release=release,
            environment=environment,
            kind=kind,
            user=request.user,
            **_context(request),
        )
        return Response(DeploymentOutput(deployment).data, status=status.HTTP_201_CREATED)


class DeploymentDetailApi(ApiView):
    @extend_schema(responses=DeploymentOutput)
    def get(self, request, pk: int):
        return Response(DeploymentOutput(_visible_deployment(request, pk)).data)


class DeploymentDecisionApi(ApiView):
    """A lead other than the requester approves or rejects a protected deployment."""

    approve = True

    @extend_schema(request=DecisionInput, responses=DeploymentOutput)
    def post(self, request, pk: int):
        deployment = _visible_deployment(request, pk)
        data = DecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        deployment_decide(
            deployment=deployment,
            user=request.user,
            approve=self.approve,
            comment=data.validated_data.get("comment", ""),
            **_context(request),
        )
        return Response(DeploymentOutput(_visible_deployment(request, pk)).data)


class DeploymentRejectApi(DeploymentDecisionApi):
    approve = False


class DeploymentCancelApi(ApiView):
    """Withdraw a deployment that waits (for approval or a free environment) or is pending:
    the requester or a lead."""

    @extend_schema(request=None, responses=DeploymentOutput)
    def post(self, request, pk: int):
        deployment = _visible_deployment(request, pk)
        deployment_withdraw(deployment=deployment, user=request.user, **_context(request))
        return Response(DeploymentOutput(_visible_deployment(request, pk)).data)


class ServiceDetailApi(ApiView):
    """One service: per environment, what runs (release, digest, since, by whom), what is in
    flight or waiting, and drift."""

    @extend_schema(responses=ServiceOutput)
    def get(self, request, slug: str):
        service = get_object_or_404(_visible_services(request), slug=slug)
        overview = selectors.service_overview(service=service)
        return Response(ServiceOutput({"service": service, "environments": overview}).data)
