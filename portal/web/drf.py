"""What every API endpoint shares: bounded JSON bodies, one error shape (RFC 9457
problem details), and exactly-once POSTs (`Idempotency-Key`)."""

from __future__ import annotations

from http import HTTPStatus

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db.utils import OperationalError as DatabaseOperationalError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from portal.core.errors import Refused
from portal.web.api_defaults import (
    PROBLEM_CONTENT_TYPE,
    ConflictError,
    PayloadTooLarge,
)
from portal.web.idempotency import (
    KeyBusy,
    KeyInvalid,
    KeyReused,
    Replay,
    fingerprint,
    idempotency_claim,
    idempotency_complete,
    idempotency_release,
)

# Problem types, by HTTP status (RFC 9457 `type`; a URN, as Slipway hosts no problem pages).
PROBLEM_TYPES = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    422: "unprocessable",
    429: "throttled",
    500: "server-error",
    503: "unavailable",
}


def problem_type(status_code: int, slug: str = "") -> str:
    return f"urn:slipway:problem:{slug or PROBLEM_TYPES.get(status_code, 'error')}"


def problem(status_code: int, detail: str, *, title: str = "", slug: str = "", **extra) -> dict:
    """An RFC 9457 problem details body."""
    return {
        "type": problem_type(status_code, slug),
        "title": title or HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": detail,
        **extra,
    }


def _detail_text(data) -> str:
    if isinstance(data, dict) and "detail" in data:
        return str(data["detail"])
    if isinstance(data, list):
        return " ".join(str(item) for item in data)
    return str(data)


RETRY_AFTER_SECONDS = 5


def problem_exception_handler(exc, context):
    """Every error of the API as `application/problem+json` (RFC 9457)."""
    if isinstance(exc, Refused):
        body = problem(exc.http_status, str(exc), title=exc.title)
        return Response(body, status=exc.http_status, content_type=PROBLEM_CONTENT_TYPE)
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge("The request body is too large.")
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(
            str(exc) if str(exc) and "matches the given query" not in str(exc) else "Not found."
        )
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, DatabaseOperationalError):
        # The database refused a connection (none free in the pool, or it is down): the
        # caller may try again, which a 500 would not tell it.
        body = problem(
            503, "The database is busy or unavailable; try again in a few seconds.",
            title="Service unavailable",
        )  # fmt: skip
        response = Response(body, status=503, content_type=PROBLEM_CONTENT_TYPE)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    response = exception_handler(exc, context)
    if response is None:
        return None  # not an API error: the server error handler answers (also a problem)
    if isinstance(exc, exceptions.ValidationError):
        errors = (
            response.data
            if isinstance(response.data, dict)
            else {"non_field_errors": response.data}
        )
        body = problem(
            response.status_code,
            "Some fields are not valid; see errors.",
            title="Invalid request",
            slug="validation",
            errors=errors,
        )
    else:
        body = problem(response.status_code, _detail_text(response.data))
    response.data = body
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


class _Replayed(Exception):
    def __init__(self, replay: Replay) -> None:
        self.replay = replay


class ApiView(APIView):
    """Base of every endpoint: a POST with an `Idempotency-Key` acts once per caller and
    key; repeats get the first answer (with `Idempotent-Replayed: true`), a repeat with
    another body 409 (the key is bound to another request: a conflict with what the
    server holds, like one still running, which waits for it or answers 409)."""

    _claim = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or key is None:
            return
        try:
            found = idempotency_claim(
                user=request.user,
                key=key,
                fingerprint=fingerprint(request.method, request.path, request.body),
            )
        except KeyInvalid as exc:
            raise exceptions.ValidationError({"Idempotency-Key": [str(exc)]}) from exc
        except KeyReused as exc:
            raise ConflictError(str(exc)) from exc
        except KeyBusy as exc:
            raise ConflictError(str(exc)) from exc
        if isinstance(found, Replay):
            raise _Replayed(found)
        self._claim = found

    def handle_exception(self, exc):
        if isinstance(exc, _Replayed):
            content_type = PROBLEM_CONTENT_TYPE if exc.replay.status_code >= 400 else None
            response = Response(
                exc.replay.body, status=exc.replay.status_code, content_type=content_type
            )
            response["Idempotent-Replayed"] = "true"
            return response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self._claim is not None:
            claim, self._claim = self._claim, None
            idempotency_complete(claim, status_code=response.status_code, body=response.data)
        return response

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        except BaseException:
            if self._claim is not None:
                idempotency_release(self._claim)
                self._claim = None
            raise
