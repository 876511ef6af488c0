"""Release trains through the API: make one (releases in order, one environment), read
where it stands (each release, the rules of its one approval), approve, reject, stop."""

from __future__ import annotations

from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from portal.access.choices import TokenScope
from portal.audit.chain import actor_and_context
from portal.catalog.selectors import environment_or_404
from portal.core import sizes
from portal.web.api_defaults import Page
from portal.web.drf import ApiView
from releases.api.approvals import RuleStateOutput
from releases.api.serializers import VoteOutput
from releases.models import ApprovalVote, ReleaseTrain, TrainMember
from releases.policies import may_vote
from releases.train_models import TrainMemberStatus, TrainStatus
from releases.trains import (
    MAX_RELEASES,
    of_train,
    train_cancel,
    train_create,
    train_decide,
    train_state,
    visible_trains,
)


class TrainMemberOutput(serializers.ModelSerializer):
    service = serializers.SlugField(source="release.service.slug")
    release = serializers.IntegerField(source="release_id")
    ref = serializers.CharField(source="release.ref")
    image = serializers.CharField(source="release.image")
    deployment = serializers.IntegerField(source="deployment_id", allow_null=True)
    status = serializers.ChoiceField(choices=TrainMemberStatus.choices)

    class Meta:
        model = TrainMember
        fields = [
            "position",
            "service",
            "release",
            "ref",
            "image",
            "deployment",
            "status",
            "reason",
        ]


class TrainOutput(serializers.ModelSerializer):
    environment = serializers.SlugField(source="environment.slug")
    requested_by = serializers.CharField(source="requested_by.username")
    status = serializers.ChoiceField(choices=TrainStatus.choices)
    releases = TrainMemberOutput(source="members", many=True)
    approvals = VoteOutput(source="votes", many=True, help_text="With the rule each counted for.")

    class Meta:
        model = ReleaseTrain
        fields = ["id", "name", "environment", "status", "status_reason", "requested_by",
                  "releases", "approvals", "created_at", "started_at", "finished_at"]  # fmt: skip


class TrainDetailOutput(TrainOutput):
    rules = serializers.SerializerMethodField(help_text="The one approval's rules, rule by rule.")

    class Meta(TrainOutput.Meta):
        fields = [*TrainOutput.Meta.fields, "rules"]

    @extend_schema_field(RuleStateOutput(many=True))
    def get_rules(self, train) -> list:
        return RuleStateOutput(train_state(train, candidates=True).rules, many=True).data


@extend_schema_field(
    {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2,
     "maxItems": MAX_RELEASES, "uniqueItems": True}  # each release once (trains.py)
)  # fmt: skip
class ReleaseIds(serializers.ListField):
    """Release ids; a bad item is said once, flat (as every other field's errors are)."""

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, dict):
                raise serializers.ValidationError(
                    "Release ids are whole numbers, 1 or more."
                ) from exc
            raise


class TrainInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    environment = serializers.SlugField(help_text="Where every release of the train goes.")
    releases = ReleaseIds(
        child=serializers.IntegerField(min_value=1),
        min_length=2,
        max_length=MAX_RELEASES,
        help_text="Release ids, in the order they go out (one per service).",
    )


class TrainDecisionInput(serializers.Serializer):
    comment = serializers.CharField(max_length=sizes.PARAGRAPH, required=False, allow_blank=True)
    represented_as = serializers.CharField(
        max_length=150, required=False, allow_blank=True,
        help_text="The rule this approval counts for (default: the first unmet one).",
    )  # fmt: skip


def _trains(request):
    return visible_trains(request.user).prefetch_related(
        Prefetch("members", TrainMember.objects.select_related("release__service")),
        Prefetch("votes", ApprovalVote.objects.select_related("user")),
    )


def _decidable(request, pk: int) -> ReleaseTrain:
    """A train the caller sees, or one whose approval counts them (QA outside the teams)."""
    found = _trains(request).filter(pk=pk).first()
    if found is None:
        found = get_object_or_404(
            ReleaseTrain.objects.filter(status=TrainStatus.AWAITING_APPROVAL), pk=pk
        )
        if not may_vote(of_train(found), request.user):
            raise Http404(f"No train #{pk} you may see or decide.")
    return found


class TrainListApi(generics.ListAPIView, ApiView):
    """Release trains with a release of the caller's teams, newest first; POST makes one."""

    serializer_class = TrainOutput
    pagination_class = Page

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema is generated unsigned-in
            return ReleaseTrain.objects.none()
        return _trains(self.request).order_by("-id")

    @extend_schema(request=TrainInput, responses={201: TrainDetailOutput})
    def post(self, request):
        data = TrainInput(data=request.data)
        data.is_valid(raise_exception=True)
        train = train_create(
            name=data.validated_data["name"],
            environment=environment_or_404(data.validated_data["environment"]),
            releases=data.validated_data["releases"],
            user=request.user,
            **actor_and_context(request),
        )
        fresh = _trains(request).get(pk=train.pk)
        return Response(TrainDetailOutput(fresh).data, status=status.HTTP_201_CREATED)


class TrainDetailApi(ApiView):
    @extend_schema(responses=TrainDetailOutput)
    def get(self, request, pk: int):
        return Response(TrainDetailOutput(_decidable(request, pk)).data)


class TrainDecisionApi(ApiView):
    """Approve (counted for one rule) or reject a train awaiting approval."""

    scope = TokenScope.APPROVE
    approve = True

    @extend_schema(request=TrainDecisionInput, responses=TrainDetailOutput)
    def post(self, request, pk: int):
        train = _decidable(request, pk)
        data = TrainDecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        train_decide(
            train=train,
            user=request.user,
            approve=self.approve,
            comment=data.validated_data.get("comment", ""),
            represented_as=data.validated_data.get("represented_as", ""),
            **actor_and_context(request),
        )
        fresh = ReleaseTrain.objects.prefetch_related("members__release__service", "votes__user")
        return Response(TrainDetailOutput(fresh.get(pk=pk)).data)


class TrainRejectApi(TrainDecisionApi):
    approve = False


class TrainCancelApi(ApiView):
    """Stop a train: what deploys now ends on its own, nothing after it starts."""

    scope = TokenScope.DEPLOY

    @extend_schema(request=None, responses=TrainDetailOutput)
    def post(self, request, pk: int):
        train = get_object_or_404(_trains(request), pk=pk)
        train_cancel(train=train, user=request.user, **actor_and_context(request))
        return Response(TrainDetailOutput(_trains(request).get(pk=pk)).data)
