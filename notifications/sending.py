"""Deliver one notification to one channel and record the attempt, whatever happens."""

from __future__ import annotations

import time

import requests
from django.conf import settings

from notifications.formats import accepted, build_request
from notifications.messages import message_for
from notifications.models import Attempt, AttemptStatus, Channel
from portal.crypto import plaintext
from portal.models import AuditEvent


def _error(exc: Exception) -> str:
    # requests' own messages quote the URL, and a Slack, DingTalk or WeCom URL is the
    # credential: name the failure, never the address.
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect"
    return type(exc).__name__


def deliver(*, channel: Channel, event: AuditEvent, kind: str, number: int, last: bool) -> Attempt:
    """Send once; record the attempt as sent, retrying (not `last`) or failed."""
    message = message_for(event, kind)
    request = build_request(
        channel.kind, plaintext(channel.url), plaintext(channel.secret), message
    )
    started = time.monotonic()
    code, ok, error = None, False, ""
    try:
        response = requests.post(
            request.url,
            data=request.body,
            headers=request.headers,
            timeout=settings.SLIPWAY_NOTIFY_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
        code = response.status_code
        ok, error = accepted(channel.kind, code, response.content[:4096])
    except requests.RequestException as exc:
        error = _error(exc)
    status = AttemptStatus.SENT if ok else AttemptStatus.FAILED if last else AttemptStatus.RETRYING
    return Attempt.objects.create(
        channel=channel,
        audit_event_id=event.pk,
        event_kind=kind,
        summary=message.summary[:300],
        number=number,
        status=status,
        response_code=code,
        error=error[:300],
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def channels_for(event: AuditEvent, kind: str):
    return Channel.objects.filter(team_id=event.team_id, enabled=True, events__contains=[kind])
