"""Core pages: the audit trail (filters, paging, exports, the chain's state), health, and
the error pages."""

from __future__ import annotations

from celery import current_app
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template import loader
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_ratelimit.decorators import ratelimit

from portal.access.permissions import visible_events
from portal.audit import reads as audit_reads
from portal.core import queues
from portal.core.addresses import client_ip
from portal.core.exports import streamed_response
from portal.core.queues import Task
from portal.web.drf import PROBLEM_CONTENT_TYPE, problem
from portal.web.forms import SignInForm
from portal.web.once import acts_once

PAGE_SIZE = 50


def _client_address(group, request) -> str:
    return client_ip(request) or "unknown"


_sign_in_form = auth_views.LoginView.as_view(authentication_form=SignInForm)


@ratelimit(key=_client_address, rate=lambda group, request: settings.SLIPWAY_SIGNIN_RATE,
           method="POST", block=False)  # fmt: skip
def sign_in(request):
    """The sign-in page; at most SLIPWAY_SIGNIN_RATE attempts per client address, on top of
    the per-user-and-address lockout (django-axes)."""
    if getattr(request, "limited", False):
        return rate_limited(request, None)
    return _sign_in_form(request)


def rate_limited(request, exception):
    return render(request, "registration/rate_limited.html", status=429)


def _int(value: str) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@login_required
def audit_page(request):
    """The audit log: filter by actor, action, target and date; page by id; export."""
    events, bound = audit_reads.audit_events(
        events=visible_events(request.user), params=request.GET
    )
    export = request.GET.get("format")
    if export in ("csv", "jsonl"):
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        lines = (
            audit_reads.csv_lines(events) if export == "csv" else audit_reads.jsonl_lines(events)
        )
        response = streamed_response(
            request,
            lines,
            content_type="text/csv; charset=utf-8" if export == "csv" else "application/jsonl",
        )
        response["Content-Disposition"] = f'attachment; filename="slipway-audit-{stamp}.{export}"'
        return response
    before = _int(request.GET.get("before", ""))
    if before is not None:
        events = events.filter(pk__lt=before)
    chunk = list(events[: PAGE_SIZE + 1])
    query = request.GET.copy()
    for key in ("before", "format"):
        query.pop(key, None)
    return render(
        request,
        "portal/audit.html",
        {
            "filter": bound,
            "events": chunk[:PAGE_SIZE],
            "older": chunk[PAGE_SIZE - 1].pk if len(chunk) > PAGE_SIZE else None,
            "paged": before is not None,
            "query": query.urlencode(),
            "check": audit_reads.last_check(),
        },
    )


@login_required
@require_POST
@acts_once
def audit_verify_now(request):
    """An admin asks for a walk of the chain now (a worker does it)."""
    if not request.user.is_superuser:
        raise PermissionDenied("Only an admin may start a verification of the audit chain.")
    # Sent by name: pages do not import the tasks that workers run.
    current_app.send_task(
        Task.VERIFY_AUDIT, kwargs={"trigger": request.user.get_username()}, queue=queues.DEFAULT
    )
    messages.success(request, "Verification started; its result appears here when it is done.")
    return redirect("audit")


def _error(template: str, status: int):
    """An error page that says what to do; under /api/, problem details instead."""

    def view(request, exception=None):
        detail = str(exception) if exception and status in (400, 403) else ""
        if request.path.startswith("/api/"):
            body = problem(status, detail or _API_DETAIL[status])
            return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)
        if status == 500:
            # The database may be what failed: render without the context processors.
            page = loader.get_template(template).render({"request": request})
            return HttpResponse(page, status=500)
        return render(request, template, {"status": status, "detail": detail}, status=status)

    return view


_API_DETAIL = {
    400: "The request is not valid.",
    403: "You may not do this.",
    404: "Not found.",
    500: "Slipway failed to answer; the error is logged with the request id.",
}


bad_request = _error("errors/400.html", 400)
permission_denied = _error("errors/403.html", 403)
page_not_found = _error("errors/404.html", 404)
server_error = _error("errors/500.html", 500)
