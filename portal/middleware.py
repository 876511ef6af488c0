"""Request id: taken from X-Request-ID when sane, otherwise made; echoed back."""

import re

from portal.audit import new_request_id

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
