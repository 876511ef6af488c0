"""The OpenAPI schema: every operation documents its errors as problem details."""

from __future__ import annotations

from django.db import DatabaseError
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from portal.catalog.selectors import environment_choices
from portal.core.filters import KnownChoiceFilter
from portal.web.idempotency import KEY_PATTERN

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
    "already waiting, decided meanwhile, or an Idempotency-Key still running or bound to "
    "another request.",
    413: "Body larger than SLIPWAY_API_MAX_BODY_BYTES.",
    429: "Too many requests for this token; see Retry-After.",
}


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    # The constraint the server enforces (portal/web/idempotency.py KEY_RE), stated.
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN},
    location=OpenApiParameter.HEADER,
    required=False,
    description="1 to 255 printable ASCII characters, per caller, kept 24 h: the same key "
    "with the same body answers the first answer again (Idempotent-Replayed: true) and acts "
    "once; with another body, 409. Use a new key (a UUID) for each new request.",
)


# A slug as Django's SlugField takes it.
SLUG = {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"}


def environment_slugs() -> list[str]:
    """Today's environments; none when there is no database to ask (`check --deploy`
    builds the schema too, before any migration)."""
    try:
        return [slug for slug, _ in environment_choices()]
    except DatabaseError:
        return []


# Query parameters whose values live in the database: the schema, made per request, names
# the values the server knows today (an unknown one answers 400 naming the same list).
KNOWN_QUERY_VALUES = {"environment": environment_slugs}


class KnownChoicesFilterExtension(DjangoFilterExtension):
    """django-filter's parameters, with a KnownChoiceFilter's values as the schema's enum
    (drf-spectacular leaves choices that come from a function out, not knowing whether
    they may be asked for)."""

    priority = 1

    def _get_explicit_filter_choices(self, filter_field):
        if isinstance(filter_field, KnownChoiceFilter):
            choices = filter_field.extra["choices"]
            try:
                return [value for value, _ in (choices() if callable(choices) else choices)]
            except DatabaseError:  # no database to ask (`check --deploy` before migrating)
                return []
        return super()._get_explicit_filter_choices(filter_field)


class SlipwaySchema(AutoSchema):
    def _get_parameters(self):
        parameters = super()._get_parameters()
        for parameter in parameters:
            if parameter["in"] != "query":
                continue
            known = KNOWN_QUERY_VALUES.get(parameter["name"])
            values = known() if known and "enum" not in parameter["schema"] else None
            if values:
                parameter["schema"] = {**parameter["schema"], "enum": values}
            # A filter given empty (a page's form sends every field) filters nothing.
            if parameter["schema"].get("type") == "string" and parameter["name"] != "cursor":
                parameter["allowEmptyValue"] = True
        return parameters

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
            codes += [400, 409, 413]
        elif (
            self.get_filter_backends()
            or self._get_paginator()
            or getattr(self.view, "validates_query", False)
        ):
            codes.append(400)
        if self.method == "GET" and getattr(self.view, "may_conflict", False):
            codes.append(409)
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


# Django's and DRF's text fields refuse the NUL character (PostgreSQL cannot store it);
# DRF trims a body's text before asking it not to be blank, so "   " is blank.
NO_NUL = "^[^\\u0000]*$"
NOT_BLANK = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"


def _free_text(schema: dict) -> bool:
    return schema.get("type") == "string" and not {"enum", "pattern", "format"} & schema.keys()


def state_refused_characters(result: dict, generator, request, public) -> dict:
    """drf-spectacular post-processing: every free text the client sends (query parameters,
    request bodies) says it may not hold NUL, as the server refuses it."""
    for path in result.get("paths", {}).values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and _free_text(parameter.get("schema", {})):
                    parameter["schema"]["pattern"] = NO_NUL
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request"):
            for field in component.get("properties", {}).values():
                if _free_text(field):
                    field["pattern"] = NOT_BLANK if field.get("minLength", 0) else NO_NUL
    return result
