"""Tell open pages that something changed (server-sent events, django-eventstream).

An event names what changed as topics (`release-12`, `deployment-40`, `service-3`),
never what it changed to: a page that hears one of its topics asks the server again for
its fragment, through the same permission checks as any request. Channels: `changes`
(releases and deployments moved), `approvals` (a kick for every top bar's count), and
`log-<release id>` (its console grew; only those who may see the release may listen).

Telling is best effort and after the commit: a change is never held up or undone because
Redis is away, and a page that missed an event still polls slowly (docs/pages.md).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from portal.core.logs import log

EVENT_TYPE = "change"
CHANGES = "changes"
APPROVALS = "approvals"
LOG_PREFIX = "log-"


def log_channel(release_id: int) -> str:
    return f"{LOG_PREFIX}{release_id}"


def live_publish(channel: str, topics: Iterable[str]) -> None:
    """Send `topics` on `channel` once the current transaction commits (at once outside
    one)."""
    topics = sorted(set(topics))
    transaction.on_commit(lambda: _send(channel, topics))


def _send(channel: str, topics: list[str]) -> None:
    from django_eventstream import send_event

    try:
        send_event(channel, EVENT_TYPE, {"channel": channel, "topics": topics})
    except Exception as error:  # Redis away: pages fall back to polling; the change stands
        log.warning("live_event_not_sent", channel=channel, error=type(error).__name__)
