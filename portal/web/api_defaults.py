"""What DRF's settings name for the whole API: bounded JSON in, JSON or problem+json out,
token scopes, a rate per caller, paging.

Kept apart from portal/drf.py because DRF's settings import these classes while DRF's
views are still loading (so nothing here imports rest_framework.views)."""

from __future__ import annotations

import functools
import json
import math
import re
import time

import redis
from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.pagination import CursorPagination, LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.throttling import SimpleRateThrottle

from portal.access.choices import TokenScope
from portal.access.models import ApiToken
from portal.core.logs import log

PROBLEM_CONTENT_TYPE = "application/problem+json"
MAX_JSON_DEPTH = 32


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


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


class CSVRenderer(JSONRenderer):
    """Names `?format=csv` for content negotiation; views that offer CSV answer it with a
    stream of their own (the renderer itself never runs on their lists)."""

    media_type = "text/csv"
    format = "csv"


class TokenScopes(BasePermission):
    """A token does only what its scopes allow: GET needs `read`; other methods the
    view's `scope` (`deploy` unless it says `approve`). A browser session is not scoped."""

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        needed = (
            TokenScope.READ
            if request.method in SAFE_METHODS
            else getattr(view, "scope", TokenScope.DEPLOY)
        )
        if needed in token.scopes:
            return True
        self.message = (
            f"This token lacks the '{needed}' scope (it has {', '.join(token.scopes)}); "
            "issue one with it."
        )
        return False


@functools.cache
def _redis() -> redis.Redis:
    """One client per process (its pool is fork-safe): Django's cache makes a client per
    call, and the throttle runs on every API request."""
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


class CallerRateThrottle(SimpleRateThrottle):
    """SLIPWAY_API_RATE requests per token (or signed-in user, or address); more get 429
    with Retry-After.

    Counted in Redis as a sliding window (this window's count, plus the previous one's
    weighted by how much of it still overlaps), with one atomic INCR per request in one
    round trip. DRF's own throttle reads the caller's list of timestamps and writes it
    back: requests at once all read the same list, so a burst passed the limit; and the
    list, up to the whole rate long, was read and written on every request. A refused
    request is not counted. If Redis does not answer, the request is let through (logged):
    the API stays up while Redis is away."""

    scope = "caller"

    def get_rate(self) -> str:
        return settings.SLIPWAY_API_RATE

    def get_cache_key(self, request, view) -> str:
        if isinstance(request.auth, ApiToken):
            who = f"token:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            who = f"user:{request.user.pk}"
        else:
            who = f"ip:{self.get_ident(request)}"
        return f"{settings.CACHES['default'].get('KEY_PREFIX', 'slipway')}:throttle:{who}"

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        window = float(self.duration)
        now = time.time()
        number = int(now // window)
        elapsed = now - number * window
        current = f"{key}:{number}"
        try:
            pipe = _redis().pipeline(transaction=True)
            pipe.incr(current).expire(current, int(2 * window) + 1).get(f"{key}:{number - 1}")
            count, _, previous = pipe.execute()
            previous = int(previous or 0)
            overlap = (window - elapsed) / window
            if previous * overlap + count <= self.num_requests:
                return True
            _redis().decr(current)
        except redis.RedisError as exc:
            log.warning("api_throttle_unavailable", error=type(exc).__name__)
            return True
        # When a request would pass: this window full, into the next one until enough of
        # this one (at most the rate: refused requests are not kept) slides out of reach;
        # else until enough of the previous window has.
        if count > self.num_requests or not previous:
            self._wait = (window - elapsed) + window / self.num_requests
        else:
            self._wait = (window - elapsed) - (self.num_requests - count) * window / previous
        return False

    def wait(self) -> float:
        return max(1.0, math.ceil(getattr(self, "_wait", self.duration)))


INTEGER = re.compile(r"-?[0-9]+")


def query_int(request, name: str, *, default: int, minimum: int, maximum: int) -> int:
    """A query parameter that must be a whole number in range: anything else answers 400
    naming the range (DRF's paginators would quietly use their default, or cap)."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if len(raw) > 12 or not INTEGER.fullmatch(raw) or not minimum <= int(raw) <= maximum:
        raise exceptions.ValidationError({name: [f"A whole number from {minimum} to {maximum}."]})
    return int(raw)


def _bounded(parameters: list[dict], bounds: dict[str, dict]) -> list[dict]:
    """The paginator's documented parameters with the bounds `query_int` enforces."""
    for parameter in parameters:
        parameter["schema"].update(bounds.get(parameter["name"], {}))
    return parameters


class Page(CursorPagination):
    """Newest first, by id: a page deep in history costs what the first does."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request) -> int:
        return query_int(
            request, self.page_size_query_param, default=self.page_size, minimum=1,
            maximum=self.max_page_size,
        )  # fmt: skip

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return _bounded(
            super().get_schema_operation_parameters(view),
            {self.page_size_query_param: {"minimum": 1, "maximum": self.max_page_size}},
        )


class SmallPage(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200
    max_offset = 1_000_000  # past it, PostgreSQL's OFFSET would still answer, slowly

    def get_limit(self, request) -> int:
        return query_int(
            request, self.limit_query_param, default=self.default_limit, minimum=1,
            maximum=self.max_limit,
        )  # fmt: skip

    def get_offset(self, request) -> int:
        return query_int(
            request, self.offset_query_param, default=0, minimum=0, maximum=self.max_offset
        )

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return _bounded(
            super().get_schema_operation_parameters(view),
            {
                self.limit_query_param: {"minimum": 1, "maximum": self.max_limit},
                self.offset_query_param: {"minimum": 0, "maximum": self.max_offset},
            },
        )
