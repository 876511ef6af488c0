"""From an audit event to deliveries: the events a team subscribed to, queued after commit.

The audit signal fires inside the change's transaction; the fan-out task is sent only when
that transaction commits, and sending never runs in the transaction, so a slow or failing
channel never blocks or undoes a release.
"""

from __future__ import annotations

from celery import current_app
from django.db import transaction

from notifications.events import event_kind
from notifications.models import Channel
from portal.audit.chain import audit_recorded
from portal.core import queues
from portal.core.queues import Task


def _on_audit(sender, event, **kwargs) -> None:
    kind = event_kind(event)
    if kind is None or event.team_id is None:
        return
    # Most events of most teams go nowhere: ask the database, not the queue.
    subscribed = Channel.objects.filter(
        team_id=event.team_id, enabled=True, events__contains=[kind]
    )
    if not subscribed.exists():
        return

    event_id = event.pk
    # Sent by name: the signal's receiver does not import the tasks.
    transaction.on_commit(
        lambda: current_app.send_task(
            Task.NOTIFY_FAN_OUT, args=(event_id,), queue=queues.NOTIFICATIONS
        )
    )


def connect() -> None:
    audit_recorded.connect(_on_audit, dispatch_uid="notifications.on_audit")
