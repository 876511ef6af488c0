"""Where a request stands against its approval policy, through the API: each rule, the
approvals counted for it (`represented_as`), whether it is met and who may still approve."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from portal.web.drf import ApiView
from releases.api.serializers import VoteOutput
from releases.api.views import visible_deployments
from releases.policies import decidable_or_404, policy_state


class RuleStateOutput(serializers.Serializer):
    name = serializers.CharField(source="rule.name")
    required_approvals = serializers.IntegerField(source="rule.required")
    who = serializers.CharField(source="rule.who", help_text="Who counts for the rule.")
    approvals = VoteOutput(many=True)
    met = serializers.BooleanField()
    may_approve = serializers.ListField(
        child=serializers.CharField(),
        help_text="Who may still approve it (while the request waits and the rule is unmet).",
    )


class PolicyStateOutput(serializers.Serializer):
    deployment = serializers.IntegerField()
    status = serializers.CharField()
    policy = serializers.CharField(source="state.policy.name")
    requester_may_approve = serializers.BooleanField(source="state.policy.requester_may_approve")
    met = serializers.BooleanField(source="state.met")
    rules = RuleStateOutput(source="state.rules", many=True)
    rejection = VoteOutput(source="state.rejection", allow_null=True)


class DeploymentApprovalsApi(ApiView):
    """The approval policy a request waits under, rule by rule."""

    @extend_schema(responses=PolicyStateOutput)
    def get(self, request, pk: int):
        deployment = decidable_or_404(visible_deployments(request), request.user, pk)
        state = policy_state(deployment, candidates=True)
        return Response(
            PolicyStateOutput(
                {"deployment": deployment.pk, "status": deployment.status, "state": state}
            ).data
        )
