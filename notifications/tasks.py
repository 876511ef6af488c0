"""Notifications are sent by workers, one task per channel, retried with backoff."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from notifications.events import event_kind
from notifications.models import AttemptStatus, Channel
from notifications.sending import channels_for, deliver
from portal.audit.models import AuditEvent
from portal.core import queues
from portal.core.queues import Task


@shared_task(
    name=Task.NOTIFY_FAN_OUT,
    queue=queues.NOTIFICATIONS,
    acks_late=True,
    soft_time_limit=30,
    time_limit=60,
)
def notify_fan_out(event_id: int) -> int:
    """One delivery task per channel subscribed to the event's kind."""
    event = AuditEvent.objects.filter(pk=event_id).first()
    kind = event_kind(event) if event else None
    if kind is None:
        return 0
    channel_ids = list(channels_for(event, kind).values_list("pk", flat=True))
    for channel_id in channel_ids:
        notify_deliver.delay(channel_id, event_id, kind)
    return len(channel_ids)


@shared_task(
    bind=True,
    name=Task.NOTIFY_DELIVER,
    queue=queues.NOTIFICATIONS,
    acks_late=True,
    max_retries=None,
    # One try ends at its deadline (the egress door); this only stops a stuck worker.
    soft_time_limit=settings.SLIPWAY_NOTIFY_TIMEOUT_SECONDS + 15,
    time_limit=settings.SLIPWAY_NOTIFY_TIMEOUT_SECONDS + 30,
)
def notify_deliver(self, channel_id: int, event_id: int, kind: str) -> str:
    channel = Channel.objects.filter(pk=channel_id, enabled=True).first()
    event = AuditEvent.objects.filter(pk=event_id).first()
    if channel is None or event is None:
        return "gone"
    number = self.request.retries + 1
    attempts = settings.SLIPWAY_NOTIFY_ATTEMPTS
    attempt = deliver(
        channel=channel, event=event, kind=kind, number=number, last=number >= attempts
    )
    if attempt.status == AttemptStatus.RETRYING:
        backoff = settings.SLIPWAY_NOTIFY_BACKOFF_SECONDS * 2 ** (number - 1)
        raise self.retry(countdown=backoff)
    return attempt.status
