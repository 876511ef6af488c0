"""What every page that acts shares: a refusal becomes a message on the page the person
comes back to, never an error page (a missing role stays a 403 page naming it)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.contrib import messages

from portal.access.permissions import RoleMissing
from portal.core.errors import Refused


@contextlib.contextmanager
def refusals_as_messages(request) -> Iterator[None]:
    """Run an action; if the workflow refuses it, show why (`messages.error`) and go on to
    the view's redirect:

        with refusals_as_messages(request):
            deployment_start(…)
            messages.success(request, "Deploying …")
        return redirect("release-detail", pk=release.pk)
    """
    try:
        yield
    except RoleMissing:
        raise
    except Refused as exc:
        messages.error(request, str(exc))
