"""Release evidence through the API: the signed JSON snapshot an auditor keeps
(releases/evidence.py)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from portal.access.choices import TokenScope
from portal.web.drf import ApiView
from releases import selectors
from releases.evidence import release_evidence, verify


class ReleaseEvidenceApi(ApiView):
    """The release's evidence, assembled now and signed with the audit key: build (commit,
    job, digest), each deployment (who requested and approved it, where and when it ran,
    what the clusters run), gates, checklist ticks, verifications with every measurement,
    and the ids and hashes of the audit events behind it with the chain's head. Save it;
    `manage.py verify_evidence FILE` or the evidence page tells whether a copy was altered."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, pk: int):
        release = get_object_or_404(
            selectors.visible_releases(request.user).select_related(
                "service__team", "jenkins_server", "drone_server", "requested_by"
            ),
            pk=pk,
        )
        return Response(release_evidence(release, generated_by=request.user.get_username()))


class EvidenceCheckOutput(serializers.Serializer):
    valid = serializers.BooleanField(
        help_text="The signature matches the content (false: altered, or not Slipway's)."
    )
    message = serializers.CharField(
        help_text="What was checked: the key, the release, the audit events it names."
    )


class EvidenceVerifyApi(ApiView):
    """Whether a saved evidence file is what Slipway signed: POST the file's JSON as it is.
    `valid` false means altered (or not evidence, or signed with a key this Slipway does not
    hold); the message says which. A valid signature whose audit events this log does not
    hold as named is valid, with the message saying so."""

    scope = TokenScope.READ  # a check changes nothing

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: EvidenceCheckOutput})
    def post(self, request):
        if not isinstance(request.data, dict):
            raise ValidationError({"detail": "Send the evidence file's JSON object, unchanged."})
        check = verify(request.data)
        return Response({"valid": check.valid, "message": check.message})
