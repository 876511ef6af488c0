"""Every request gets an id (taken from X-Request-ID when sane, otherwise made, echoed
back) and one log event with its status and duration, counted in the request metrics."""

from __future__ import annotations

import re
import time

from portal.core.logs import REQUEST_ID, log, new_request_id
from portal.ops.metrics import observe_request

_SANE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        request.request_id = given if _SANE.match(given) else new_request_id()
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


class RequestLogMiddleware:
    """One log event per request: method, path, status, duration, user, request id."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.monotonic()
        token = REQUEST_ID.set(getattr(request, "request_id", "") or "")
        try:
            response = self.get_response(request)
        finally:
            REQUEST_ID.reset(token)
        user = getattr(request, "user", None)
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match else ""
        observe_request(view, request.method, response.status_code, time.monotonic() - started)
        log.info(
            "request",
            method=request.method,
            path=request.path,
            status=response.status_code,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            user=user.get_username() if user is not None and user.is_authenticated else None,
            request_id=getattr(request, "request_id", ""),
        )
        return response
