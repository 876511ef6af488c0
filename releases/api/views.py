"""The REST API for scripts and CI: everything the buttons do, with a token.

Thin like the pages: check the caller's role, call one service, answer. A refused
request is a 400 with the reason; a busy environment is a 409.
"""

from __future__ import annotations

import django_filters
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.audit import Actor, RequestContext
from portal.choices import Role
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
)
from releases.choices import RELEASE_ACTIVE, ReleaseStatus
from releases.models import Deployment, Release
from releases.services import (
    DeploymentBusy,
    ReleaseRefused,
    deployment_decide,
    deployment_role_needed,
    deployment_start,
    release_cancel,
    release_create,
)


def _require(request, service: Service, role: str) -> None:
    if not has_role(request.user, service, role):
        raise PermissionDenied(f"You need the {role} role in {service.team} for this.")


def _refused(exc: ReleaseRefused) -> Response:
    code = status.HTTP_409_CONFLICT if isinstance(exc, DeploymentBusy) else 400
    return Response({"detail": str(exc)}, status=code)


def _visible_releases(request):
    if getattr(request, "swagger_fake_view", False) or not request.user.is_authenticated:
        return Release.objects.none()  # schema generation, or a refused caller
    releases = Release.objects.select_related("service", "requested_by").prefetch_related(
        "deployments__environment", "deployments__approval__decided_by"
    )
    if request.user.is_superuser:
        return releases
    teams = Membership.objects.filter(user=request.user).values("team")
    return releases.filter(service__team__in=teams)


class ReleaseFilter(django_filters.FilterSet):
    service = django_filters.CharFilter(field_name="service__slug")
    status = django_filters.ChoiceFilter(choices=ReleaseStatus.choices)
    ref = django_filters.CharFilter()

    class Meta:
        model = Release
        fields = ["service", "status", "ref"]


class ReleaseListApi(generics.ListAPIView):
    """Releases of the services of the caller's teams, newest first."""

    serializer_class = ReleaseOutput
    filterset_class = ReleaseFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Release.objects.none()
        return _visible_releases(self.request).order_by("-id")


class ReleaseDetailApi(generics.RetrieveAPIView):
    serializer_class = ReleaseOutput

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Release.objects.none()
        return _visible_releases(self.request)


class ReleaseCreateApi(APIView):
    """Build `ref` once in Jenkins (and deploy it to `deploy_to` when built)."""

    @extend_schema(request=ReleaseInput, responses={201: ReleaseOutput})
    def post(self, request, slug: str):
        service = get_object_or_404(Service, slug=slug)
        _require(request, service, Role.DEVELOPER)
        data = ReleaseInput(data=request.data)
        data.is_valid(raise_exception=True)
        deploy_to = None
        if data.validated_data.get("deploy_to"):
            deploy_to = Environment.objects.filter(slug=data.validated_data["deploy_to"]).first()
            if deploy_to is None:
                return Response({"deploy_to": ["No such environment."]}, status=400)
        try:
            release = release_create(
                service=service,
                ref=data.validated_data["ref"],
                deploy_to=deploy_to,
                user=request.user,
                actor=Actor.from_request(request),
                context=RequestContext.from_request(request),
            )
        except ReleaseRefused as exc:
            return _refused(exc)
        return Response(ReleaseOutput(release).data, status=status.HTTP_201_CREATED)


class ReleaseLogApi(APIView):
    """The build console from byte `offset`; poll with `next_offset` while `more`."""

    @extend_schema(parameters=[OpenApiParameter("offset", int)], responses=LogOutput)
    def get(self, request, pk: int):
        release = get_object_or_404(_visible_releases(request), pk=pk)
        try:
            offset = max(0, int(request.query_params.get("offset", "0")))
        except ValueError:
            return Response({"offset": ["A whole number."]}, status=400)
        text, next_offset = selectors.release_log_since(release=release, offset=offset)
        return Response(
            LogOutput(
                {"text": text, "next_offset": next_offset, "more": release.status in RELEASE_ACTIVE}
            ).data
        )


class ReleaseCancelApi(APIView):
    @extend_schema(request=None, responses=ReleaseOutput)
    def post(self, request, pk: int):
        release = get_object_or_404(_visible_releases(request), pk=pk)
        _require(request, release.service, Role.DEVELOPER)
        try:
            release = release_cancel(
                release=release,
                actor=Actor.from_request(request),
                context=RequestContext.from_request(request),
            )
        except ReleaseRefused as exc:
            return _refused(exc)
        return Response(ReleaseOutput(release).data, status=status.HTTP_202_ACCEPTED)


class DeploymentCreateApi(APIView):
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
            raise NotFound("No such environment.")
        try:
            deployment = deployment_start(
                release=release,
                environment=environment,
                kind=kind,
                user=request.user,
                actor=Actor.from_request(request),
                context=RequestContext.from_request(request),
            )
        except ReleaseRefused as exc:
            return _refused(exc)
        return Response(DeploymentOutput(deployment).data, status=status.HTTP_201_CREATED)


def _visible_deployment(request, pk: int) -> Deployment:
    deployment = get_object_or_404(
        Deployment.objects.select_related("service__team", "environment"), pk=pk
    )
    _require(request, deployment.service, Role.VIEWER)
    return deployment


class DeploymentDetailApi(APIView):
    @extend_schema(responses=DeploymentOutput)
    def get(self, request, pk: int):
        return Response(DeploymentOutput(_visible_deployment(request, pk)).data)


class DeploymentDecisionApi(APIView):
    """A lead other than the requester approves or rejects a protected deployment."""

    approve = True

    @extend_schema(request=DecisionInput, responses=DeploymentOutput)
    def post(self, request, pk: int):
        deployment = _visible_deployment(request, pk)
        data = DecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            deployment_decide(
                deployment=deployment,
                user=request.user,
                approve=self.approve,
                comment=data.validated_data.get("comment", ""),
                actor=Actor.from_request(request),
                context=RequestContext.from_request(request),
            )
        except ReleaseRefused as exc:
            return _refused(exc)
        return Response(DeploymentOutput(deployment).data)


class DeploymentRejectApi(DeploymentDecisionApi):
    approve = False
