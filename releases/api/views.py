"""The REST API for scripts and CI: everything the buttons do, with a token.

Thin like the pages: check access with the access policy (portal/permissions.py), call
one workflow function or selector, answer. Every error is problem details
(portal/drf.py); every POST honours `Idempotency-Key`; lists page by id.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response

from portal.access.choices import Role, TokenScope
from portal.access.permissions import require_role, visible
from portal.audit.chain import actor_and_context
from portal.catalog.models import Environment
from portal.catalog.selectors import environment_or_404, visible_services
from portal.web.api_defaults import Page
from portal.web.drf import ApiView
from portal.web.limits import require_scope
from releases import selectors, states
from releases.api.serializers import (
    ClusterDecisionInput,
    DecisionInput,
    DeploymentInput,
    DeploymentOutput,
    LogOutput,
    LogQuery,
    ReleaseInput,
    ReleaseOutput,
    ServiceDetailOutput,
    ServiceOutput,
    prefetched,
)
from releases.builds import release_cancel, release_create
from releases.canary import ABORT, PROMOTE, canary_decide
from releases.choices import RELEASE_ACTIVE
from releases.deployments import deployment_decide, deployment_start, deployment_withdraw
from releases.filters import DeploymentFilter, ReleaseFilter
from releases.models import ApprovalVote, Deployment, Release, TargetRollout
from releases.policies import decidable_or_404
from releases.promotion import deployment_role_needed
from releases.waves import RETRY, SKIP, deployment_cluster_decide

# A deployment's clusters in one query, however many there are. What no answer shows is
# left in the database: helm values, and secrets that would be decrypted row by row.
_ROLLOUTS = prefetched(
    "rollouts",
    TargetRollout.objects.select_related("target__cluster").defer(
        "values", "target__cluster__kubeconfig"
    ),
)
_UNSHOWN = ("change_ticket__system__secret",)
_VOTES = prefetched("votes", ApprovalVote.objects.select_related("user"))


def _releases(request):
    return visible(
        Release.objects.select_related("service__team", "requested_by")
        .defer("log_cursor")
        .prefetch_related(
            prefetched(
                "deployments",
                Deployment.objects.select_related(
                    "environment", "requested_by", "approval__decided_by", "change_ticket__system"
                )
                .defer(*_UNSHOWN)
                .prefetch_related(_ROLLOUTS, _VOTES),
            )
        ),
        request.user,
    )


def visible_deployments(request, *, everyone: bool = False):
    deployments = (
        Deployment.objects.select_related(
            "service__team",
            "environment",
            "release",
            "requested_by",
            "approval__decided_by",
            "change_ticket__system",
        )
        .defer(*_UNSHOWN, "release__log_cursor")
        .prefetch_related(_ROLLOUTS, _VOTES)
    )
    return deployments if everyone else visible(deployments, request.user)


def _decidable(request, pk: int) -> Deployment:
    """A deployment the caller sees, or one whose approval policy counts them (a rule may
    count people outside the team, e.g. QA)."""
    return decidable_or_404(visible_deployments(request), request.user, pk)


class ServiceListApi(generics.ListAPIView, ApiView):
    """Services of the caller's teams, each with what runs in every environment."""

    serializer_class = ServiceOutput

    def get_queryset(self):
        return visible_services(self.request.user).order_by("name")

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        environments = list(Environment.objects.order_by("order"))
        by_service = states.environment_states(page, environments)
        rows = [states.DashboardRow(s, by_service[s.pk]) for s in page]
        return self.get_paginated_response(ServiceOutput(rows, many=True).data)


class ServiceDetailApi(ApiView):
    """One service: per environment, what runs (release, digest, since, by whom), what is
    in flight or waiting, drift and freeze."""

    @extend_schema(responses=ServiceDetailOutput)
    def get(self, request, slug: str):
        service = get_object_or_404(visible_services(request.user), slug=slug)
        row = states.DashboardRow(service, states.service_overview(service=service))
        return Response(ServiceDetailOutput(row).data)


class ReleaseListApi(generics.ListAPIView, ApiView):
    """Releases of the services of the caller's teams, newest first."""

    serializer_class = ReleaseOutput
    filterset_class = ReleaseFilter
    pagination_class = Page

    def get_queryset(self):
        return _releases(self.request)


class ReleaseDetailApi(generics.RetrieveAPIView, ApiView):
    serializer_class = ReleaseOutput

    def get_queryset(self):
        return _releases(self.request)


class ReleaseCreateApi(ApiView):
    """Build `ref` once in Jenkins (and deploy it to `deploy_to` when built)."""

    @extend_schema(request=ReleaseInput, responses={201: ReleaseOutput})
    def post(self, request, slug: str):
        service = get_object_or_404(visible_services(request.user), slug=slug)
        require_role(request.user, service, Role.DEVELOPER)
        data = ReleaseInput(data=request.data)
        data.is_valid(raise_exception=True)
        deploy_to = data.validated_data.get("deploy_to")
        release = release_create(
            service=service,
            ref=data.validated_data["ref"],
            deploy_to=environment_or_404(deploy_to) if deploy_to else None,
            user=request.user,
            **actor_and_context(request),
        )
        return Response(ReleaseOutput(release).data, status=status.HTTP_201_CREATED)


class ReleaseLogApi(ApiView):
    """The build console from byte `offset`; poll with `next_offset` while `more`."""

    validates_query = True  # a bad offset answers 400 (portal/web/schema.py documents it)

    @extend_schema(parameters=[LogQuery], responses=LogOutput)
    def get(self, request, pk: int):
        release = get_object_or_404(_releases(request), pk=pk)
        query = LogQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        offset = query.validated_data["offset"]
        text, next_offset = selectors.release_log_since(release=release, offset=offset)
        return Response(
            LogOutput(
                {"text": text, "next_offset": next_offset, "more": release.status in RELEASE_ACTIVE}
            ).data
        )


class ReleaseCancelApi(ApiView):
    """Stop the build, or cancel its queue item."""

    @extend_schema(request=None, responses={202: ReleaseOutput})
    def post(self, request, pk: int):
        release = get_object_or_404(_releases(request), pk=pk)
        require_role(request.user, release.service, Role.DEVELOPER)
        release = release_cancel(release=release, **actor_and_context(request))
        return Response(ReleaseOutput(release).data, status=status.HTTP_202_ACCEPTED)


class DeploymentCreateApi(ApiView):
    """Deploy, promote or roll back a built release: the same image digest, never a rebuild."""

    @extend_schema(request=DeploymentInput, responses={201: DeploymentOutput})
    def post(self, request, pk: int):
        release = get_object_or_404(_releases(request), pk=pk)
        data = DeploymentInput(data=request.data)
        data.is_valid(raise_exception=True)
        kind = data.validated_data["kind"]
        require_role(request.user, release.service, deployment_role_needed(kind))
        if data.validated_data.get("freeze_override") or data.validated_data.get("gate_override"):
            require_scope(request, TokenScope.APPROVE, "Overriding a freeze or a gate")
        if data.validated_data.get("emergency_reason"):
            require_scope(request, TokenScope.APPROVE, "An emergency change")
        deployment = deployment_start(
            release=release,
            environment=environment_or_404(data.validated_data["environment"]),
            kind=kind,
            user=request.user,
            freeze_override=data.validated_data.get("freeze_override", ""),
            gate_override=data.validated_data.get("gate_override", ""),
            emergency_reason=data.validated_data.get("emergency_reason", ""),
            **actor_and_context(request),
        )
        return Response(DeploymentOutput(deployment).data, status=status.HTTP_201_CREATED)


class DeploymentListApi(generics.ListAPIView, ApiView):
    """Deployments of the caller's teams, newest first."""

    serializer_class = DeploymentOutput
    filterset_class = DeploymentFilter
    pagination_class = Page

    def get_queryset(self):
        return visible_deployments(self.request)


class DeploymentDetailApi(generics.RetrieveAPIView, ApiView):
    serializer_class = DeploymentOutput

    def get_queryset(self):
        return visible_deployments(self.request)


class DeploymentDecisionApi(ApiView):
    """A lead other than the requester approves or rejects a protected deployment."""

    approve = True
    scope = TokenScope.APPROVE

    @extend_schema(request=DecisionInput, responses=DeploymentOutput)
    def post(self, request, pk: int):
        deployment = _decidable(request, pk)
        data = DecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        deployment_decide(
            deployment=deployment,
            user=request.user,
            approve=self.approve,
            comment=data.validated_data.get("comment", ""),
            freeze_override=data.validated_data.get("freeze_override", ""),
            gate_override=data.validated_data.get("gate_override", ""),
            represented_as=data.validated_data.get("represented_as", ""),
            **actor_and_context(request),
        )
        # Fetched again whoever they are: having decided, they no longer wait for it.
        decided = visible_deployments(request, everyone=True).get(pk=pk)
        return Response(DeploymentOutput(decided).data)


class DeploymentRejectApi(DeploymentDecisionApi):
    approve = False


class DeploymentCancelApi(ApiView):
    """Withdraw a deployment that waits (for approval or a free environment) or is pending:
    the requester or a lead."""

    @extend_schema(request=None, responses=DeploymentOutput)
    def post(self, request, pk: int):
        deployment = get_object_or_404(visible_deployments(request), pk=pk)
        deployment_withdraw(deployment=deployment, user=request.user, **actor_and_context(request))
        return Response(DeploymentOutput(visible_deployments(request).get(pk=pk)).data)


class DeploymentCanaryApi(ApiView):
    """A lead's word on a deployment's canary, with a reason (audited): `promote` a paused
    step (the next weight, or the stable upgrade after the last), or `abort` it at any time
    (weight 0, canary release removed). The worker acts on it within a second or two."""

    scope = TokenScope.APPROVE

    @extend_schema(
        request=ClusterDecisionInput,
        responses={200: DeploymentOutput},
        parameters=[
            OpenApiParameter(
                "action", str, OpenApiParameter.PATH, enum=[PROMOTE, ABORT],
                description="`promote` the paused step, or `abort` the canary.",
            ),
        ],
    )  # fmt: skip
    def post(self, request, pk: int, action: str):
        deployment = get_object_or_404(visible_deployments(request), pk=pk)
        data = ClusterDecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        canary_decide(
            deployment=deployment,
            action=action,
            reason=data.validated_data["reason"],
            user=request.user,
            **actor_and_context(request),
        )
        return Response(DeploymentOutput(visible_deployments(request).get(pk=pk)).data)


class DeploymentClusterApi(ApiView):
    """A lead's word on a deployment that stopped at a cluster: `retry` that cluster (and go
    on with the ones after it), or `skip` it (go on with the ones after it). A new
    deployment goes on; both are audited on the stopped one with the reason."""

    scope = TokenScope.APPROVE

    @extend_schema(
        request=ClusterDecisionInput,
        responses={201: DeploymentOutput},
        parameters=[
            OpenApiParameter(
                "cluster", str, OpenApiParameter.PATH, description="The cluster's name."
            ),
            OpenApiParameter(
                "action", str, OpenApiParameter.PATH, enum=[RETRY, SKIP],
                description="`retry` the cluster (and go on with the ones after it), or "
                "`skip` it (go on with the ones after it).",
            ),
        ],
    )  # fmt: skip
    def post(self, request, pk: int, cluster: str, action: str):
        deployment = get_object_or_404(visible_deployments(request), pk=pk)
        data = ClusterDecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        continued = deployment_cluster_decide(
            deployment=deployment,
            cluster=cluster,
            action=action,
            reason=data.validated_data["reason"],
            user=request.user,
            **actor_and_context(request),
        )
        return Response(
            DeploymentOutput(visible_deployments(request).get(pk=continued.pk)).data,
            status=status.HTTP_201_CREATED,
        )
