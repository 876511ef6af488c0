"""How the API reads and writes bodies: bounded JSON in, JSON or problem+json out.

Kept apart from portal/drf.py because DRF's settings import these classes while DRF's
views are still loading."""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer

PROBLEM_CONTENT_TYPE = "application/problem+json"
MAX_JSON_DEPTH = 32


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


class UnprocessableEntity(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request cannot be processed."
    default_code = "unprocessable"


class ConflictError(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


def _depth(value, limit: int) -> int:
    """Nesting depth of parsed JSON, without recursion (stops counting past `limit`)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


class BoundedJSONParser(JSONParser):
    """JSON bodies up to SLIPWAY_API_MAX_BODY_BYTES and MAX_JSON_DEPTH levels: a huge or
    deeply nested body is a clear 413/400, never a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.SLIPWAY_API_MAX_BODY_BYTES
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            parsed = json.loads(data.decode(encoding))
        except RecursionError as exc:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from exc
        if _depth(parsed, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise exceptions.ParseError(
                f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels."
            )
        return parsed


class ProblemJSONRenderer(JSONRenderer):
    """Lets a client ask for `application/problem+json` explicitly."""

    media_type = PROBLEM_CONTENT_TYPE
