"""Deliver one notification to one channel and record the attempt, whatever happens."""

from __future__ import annotations

import time

from django.conf import settings

from doors import egress
from notifications.formats import accepted, build_request
from notifications.messages import message_for
from notifications.models import Attempt, AttemptStatus, Channel
from portal.audit.models import AuditEvent
from portal.core import sizes
from portal.core.crypto import plaintext

# What is read of a receiver's answer: enough for DingTalk's and WeCom's errcode.
ANSWER_BYTES = 4096


def deliver(*, channel: Channel, event: AuditEvent, kind: str, number: int, last: bool) -> Attempt:
    """Send once; record the attempt as sent, retrying (not `last`) or failed."""
    message = message_for(event, kind)
    request = build_request(
        channel.kind, plaintext(channel.url), plaintext(channel.secret), message
    )
    started = time.monotonic()
    code, ok, error = None, False, ""
    try:
        answer = egress.request(
            "POST",
            request.url,
            body=request.body,
            headers=request.headers,
            deadline=settings.SLIPWAY_NOTIFY_TIMEOUT_SECONDS,
            max_bytes=ANSWER_BYTES,
        )
        code = answer.status
        ok, error = accepted(channel.kind, code, answer.body)
    except egress.EgressError as exc:
        # The door's messages name the failure, never the URL (a robot's key is in it).
        error = str(exc)
    status = AttemptStatus.SENT if ok else AttemptStatus.FAILED if last else AttemptStatus.RETRYING
    return Attempt.objects.create(
        channel=channel,
        audit_event_id=event.pk,
        event_kind=kind,
        summary=message.summary[: sizes.LINE],
        number=number,
        status=status,
        response_code=code,
        error=error[: sizes.LINE],
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def channels_for(event: AuditEvent, kind: str):
    return Channel.objects.filter(team_id=event.team_id, enabled=True, events__contains=[kind])
