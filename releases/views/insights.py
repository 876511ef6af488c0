"""/insights/: delivery metrics (DORA) of the caller's teams over a period; CSV export."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render

from releases.filters import InsightsForm
from releases.insights import Insights, insights_csv, insights_for


def chart(result: Insights, width: int = 640, height: int = 160) -> dict:
    """A weekly bar chart, drawn on the server as SVG coordinates (no script, no CDN)."""
    weeks = result.weeks
    if not weeks:
        return {}
    top = max(max(w.deployments for w in weeks), 1)
    step = width / len(weeks)
    bars = []
    bar = min(max(step - 4, 1), 48)  # a lone week is a bar, not a band across the chart
    for i, week in enumerate(weeks):
        h = (height - 20) * week.deployments / top
        f = (height - 20) * week.failures / top
        x = i * step + (step - bar) / 2
        bars.append({
            "x": round(x, 1), "w": round(bar, 1),
            "y": round(height - 20 - h, 1), "h": round(h, 1),
            "fy": round(height - 20 - f, 1), "fh": round(f, 1),
            "label": week.week.strftime("%b %-d"), "deployments": week.deployments,
            "failures": week.failures, "lx": round(i * step + step / 2, 1),
        })  # fmt: skip
    return {"width": width, "height": height, "bars": bars, "top": top,
            "label_every": max(1, len(weeks) // 8)}  # fmt: skip


@login_required
def insights_page(request):
    form = InsightsForm(request.GET or None)
    if request.GET and not form.is_valid():
        return render(request, "releases/insights.html", {"form": form}, status=400)
    if not request.GET:
        form = InsightsForm({})
        form.is_valid()
    result = insights_for(request.user, **form.selection())
    if request.GET.get("format") == "csv":
        response = HttpResponse(insights_csv(result), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="slipway-insights.csv"'
        return response
    query = request.GET.copy()
    query.pop("format", None)
    return render(
        request,
        "releases/insights.html",
        {
            "form": form,
            "result": result,
            "overall": result.overall,
            "teams": [r for r in result.rows if r.scope == "team"],
            "services": [r for r in result.rows if r.scope == "service"],
            "chart": chart(result),
            "query": query.urlencode(),
        },
    )
