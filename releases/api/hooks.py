"""Jenkins tells Slipway when a build starts and ends: the Notification plugin's JSON
(`{name, url, build: {number, phase, status, full_url, parameters, …}}`) posted to
`/hooks/jenkins/<server name>?token=<the server's notification secret>`. The release it
builds is looked at at once; polling stays as the fallback (docs/jenkins.md)."""

from __future__ import annotations

import hmac

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from doors.jenkins import CORRELATION_PARAMETER
from portal.catalog.models import JenkinsServer
from releases.builds import build_notified, job_from_url

PHASES = ("QUEUED", "STARTED", "COMPLETED", "FINALIZED")


def _parameter(build: dict, name: str) -> str | None:
    """Build parameters as the plugin sends them: a mapping (or a list of {name, value})."""
    parameters = build.get("parameters")
    if isinstance(parameters, dict):
        value = parameters.get(name)
    elif isinstance(parameters, list):
        value = next(
            (p.get("value") for p in parameters if isinstance(p, dict) and p.get("name") == name),
            None,
        )
    else:
        value = None
    return str(value) if value is not None else None


@extend_schema(exclude=True)  # a hook for Jenkins, not part of the REST API
class JenkinsNotificationHook(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def post(self, request, name: str):
        server = JenkinsServer.objects.filter(name=name).first()
        if server is None:
            raise NotFound(f"No Jenkins server named {name!r}.")
        secret = server.notification_secret.reveal()
        token = request.query_params.get("token", "")
        if not secret or not hmac.compare_digest(secret.encode(), token.encode()):
            raise PermissionDenied(
                "Wrong or missing token for this Jenkins server's notifications."
            )
        payload = request.data
        build = payload.get("build") if isinstance(payload, dict) else None
        if not isinstance(build, dict) or build.get("phase") not in PHASES:
            raise ValidationError(
                {
                    "build": [
                        f"The Notification plugin's JSON: build.phase one of {', '.join(PHASES)}."
                    ]
                }
            )
        job = job_from_url(str(payload.get("url") or "")) or str(payload.get("name") or "")
        number = build.get("number")
        release_id = _parameter(build, CORRELATION_PARAMETER)
        release = build_notified(
            server=server,
            job=job,
            number=number if isinstance(number, int) else None,
            release_id=int(release_id) if release_id and release_id.isdigit() else None,
            phase=build["phase"],
        )
        return Response(
            {"release": release.pk if release else None}, status=status.HTTP_202_ACCEPTED
        )
