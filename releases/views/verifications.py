"""A lead's word on a verification run from a page (the release page or the approvals
inbox): re-run, skip, or judge an inconclusive run (continue or roll back)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from portal.audit.chain import actor_and_context
from portal.web.once import acts_once
from portal.web.pages import refusals_as_messages
from releases import selectors
from releases.models import VerificationRun
from releases.verifying import ACTIONS, verification_decide

SAID = {
    "rerun": "re-run: a fresh run measures now",
    "skip": "skipped: the release counts as verified",
    "continue": "judged good: the release counts as verified",
    "rollback": "judged bad: rolling back to the last verified release",
}


@login_required
@require_POST
@acts_once
def verification_decide_view(request, pk: int):
    run = (
        VerificationRun.objects.filter(pk=pk, release__in=selectors.visible_releases(request.user))
        .select_related("service__team", "environment", "deployment__environment", "release")
        .first()
    )
    if run is None:
        raise Http404("No such verification run.")
    action = request.POST.get("action", "")
    if action not in ACTIONS:
        return HttpResponse(f"action must be one of {', '.join(ACTIONS)}", status=400)
    with refusals_as_messages(request):
        verification_decide(
            run=run,
            action=action,
            reason=request.POST.get("reason", ""),
            user=request.user,
            **actor_and_context(request),
        )
        messages.success(request, f"Verification #{run.pk} {SAID[action]}.")
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("release-detail", pk=run.release_id)
