"""The OpenAPI schema: every operation documents its errors as problem details."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

PROBLEM = "application/problem+json"


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, the shape of every error."""

    type = serializers.CharField(help_text="urn:slipway:problem:<kind>")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField(help_text="What went wrong, for a person.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Per field, for invalid input (400).",
    )

    class Meta:
        ref_name = "Problem"


ERRORS = {
    400: "Invalid input or refused as given (problem details, `errors` per field).",
    401: "No, bad, expired or revoked token.",
    403: "A missing role (named in `detail`), or a token without the scope.",
    404: "Unknown, or of a team you are not in.",
    409: "The current state refuses it: busy, not what the environment before runs, frozen, "
    "already waiting, decided meanwhile, or the same Idempotency-Key still running.",
    413: "Body larger than SLIPWAY_API_MAX_BODY_BYTES.",
    422: "An Idempotency-Key reused for a different request.",
    429: "Too many requests for this token; see Retry-After.",
}


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    location=OpenApiParameter.HEADER,
    required=False,
    description="1 to 255 printable ASCII characters, per caller, kept 24 h: the same key "
    "with the same body answers the first answer again (Idempotent-Replayed: true) and acts "
    "once; with another body, 422.",
)


class SlipwaySchema(AutoSchema):
    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self.method == "POST":
            parameters.append(IDEMPOTENCY_KEY)
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        codes = [401, 403, 404, 429]
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes += [400, 409, 413, 422]
        elif (
            self.get_filter_backends()
            or self._get_paginator()
            or getattr(self.view, "validates_query", False)
        ):
            codes.append(400)
        for code in sorted(codes):
            responses.setdefault(
                str(code),
                self._get_response_for_code(
                    OpenApiResponse(ProblemSerializer, description=ERRORS[code]),
                    str(code),
                    media_types=[PROBLEM],
                    direction=direction,
                ),
            )
        return responses
