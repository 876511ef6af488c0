"""Action forms that act once: a double click or a resubmitted form makes one release.

Each action form carries a one-time token (`{% form_token %}`); the first POST with it
claims it (portal/idempotency.py) and its redirect is remembered, so a repeat is sent to
the same place without acting again.
"""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme

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

NOT_PART_OF_THE_REQUEST = ("csrfmiddlewaretoken", "form_token")


def _back(request):
    referer = request.META.get("HTTP_REFERER", "")
    safe = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return redirect(referer if safe and referer else "/")


def acts_once(view):
    """Decorate a POST view whose form carries `{% form_token %}`."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        token = request.POST.get("form_token", "") if request.method == "POST" else ""
        if not token or not request.user.is_authenticated:
            return view(request, *args, **kwargs)
        body = urlencode(
            sorted((k, v) for k, v in request.POST.items() if k not in NOT_PART_OF_THE_REQUEST)
        ).encode()
        try:
            claim = idempotency_claim(
                user=request.user,
                key=f"form:{token}",
                fingerprint=fingerprint("POST", request.path, body),
            )
        except KeyInvalid:
            return HttpResponseBadRequest("The form's token is not valid; reload the page.")
        except (KeyReused, KeyBusy):
            messages.error(request, "This form was already sent; reload the page to send it again.")
            return _back(request)
        if isinstance(claim, Replay):
            if claim.location:
                return redirect(claim.location)
            return HttpResponse(status=claim.status_code)
        try:
            response = view(request, *args, **kwargs)
        except BaseException:
            idempotency_release(claim)
            raise
        idempotency_complete(
            claim, status_code=response.status_code, location=response.get("Location", "")
        )
        return response

    return wrapper
