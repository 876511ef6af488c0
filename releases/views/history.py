"""Release and deployment history: filters, paging by id, streaming CSV export."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from portal.catalog.selectors import visible_services
from portal.core.exports import streamed_response
from releases import history
from releases.views.common import int_param


def _view(request) -> str:
    view = request.GET.get("view", "deployments")
    return view if view in history.VIEWS else "deployments"


@login_required
def history_page(request, slug: str = ""):
    """`/history/` (every service of the caller's teams) and `/services/<slug>/history/`."""
    params = request.GET.copy()
    service = None
    if slug:
        service = get_object_or_404(visible_services(request.user), slug=slug)
        params["service"] = slug
    view = _view(request)
    rows, bound = history.history_rows(user=request.user, view=view, params=params)
    if request.GET.get("format") == "csv":
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response = streamed_response(
            request, history.csv_lines(rows, view), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="slipway-{view}-{stamp}.csv"'
        return response
    page = history.page_of(
        rows, before=int_param(request, "before"), after=int_param(request, "after")
    )
    query = params.copy()
    for key in ("before", "after", "format"):
        query.pop(key, None)
    return render(
        request,
        "releases/history.html",
        {
            "service": service,
            "view": view,
            "filter": bound,
            "page": page,
            "rows": [(row, history.durations(row)) for row in page.rows],
            "query": query.urlencode(),
            "tab": "history",
        },
    )
