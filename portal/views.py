from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render

from portal.models import Environment, Service


@login_required
def home(request):
    services = Service.objects.select_related("team").prefetch_related("targets__environment")
    return render(
        request,
        "portal/home.html",
        {"services": services, "environments": Environment.objects.all()},
    )


def healthz(request):
    """Liveness for load balancers: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
