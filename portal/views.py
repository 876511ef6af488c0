from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render

from portal.models import Environment, Service


@login_required
def home(request):
    """The dashboard: which release runs in which environment of every service."""
    from releases.selectors import service_overview

    environments = list(Environment.objects.all())
    rows = []
    for service in Service.objects.select_related("team"):
        overview = {row["environment"].pk: row for row in service_overview(service=service)}
        cells = [
            {"targeted": env.pk in overview, **overview.get(env.pk, {})} for env in environments
        ]
        rows.append({"service": service, "cells": cells})
    return render(request, "portal/home.html", {"rows": rows, "environments": environments})


def healthz(request):
    """Liveness for load balancers: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
