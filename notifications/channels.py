"""A team admin adds, pauses and removes the team's notification channels; each change is
audited without the channel's URL or secret (both are credentials)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from doors import egress
from notifications.actions import Channels
from notifications.events import EventKind
from notifications.models import Channel, ChannelKind
from portal.access.models import Team
from portal.audit.chain import Actor, RequestContext, audit_record
from portal.core.crypto import plaintext
from portal.core.errors import Refused


class ChannelRefused(Refused):
    """The channel cannot be saved as asked."""


def _shown(channel: Channel) -> dict:
    host = urlsplit(plaintext(channel.url)).hostname or ""
    return {"name": channel.name, "kind": channel.kind, "events": list(channel.events),
            "enabled": channel.enabled, "host": host}  # fmt: skip


def channel_create(
    *,
    team: Team,
    name: str,
    kind: str,
    url: str,
    secret: str = "",
    events: list[str],
    actor: Actor,
    context: RequestContext | None = None,
) -> Channel:
    name = name.strip()
    if not name:
        raise ChannelRefused("Give the channel a name.")
    if kind not in ChannelKind.values:
        raise ChannelRefused(
            f"Unknown channel kind {kind!r}; one of {', '.join(ChannelKind.values)}."
        )
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ChannelRefused("The URL must be an http:// or https:// address.")
    limit = settings.SLIPWAY_NOTIFY_MAX_CHANNELS
    if Channel.objects.filter(team=team).count() >= limit:
        raise ChannelRefused(
            f"{team} has {limit} channels, the most a team may have "
            "(SLIPWAY_NOTIFY_MAX_CHANNELS); remove one first."
        )
    unknown = sorted(set(events) - set(EventKind.values))
    if unknown or not events:
        raise ChannelRefused(
            f"Choose event kinds among {', '.join(EventKind.values)}"
            + (f" (unknown: {', '.join(unknown)})." if unknown else ".")
        )
    if kind == ChannelKind.WEBHOOK and not secret:
        raise ChannelRefused(
            "A webhook needs a secret: receivers check the HMAC signature with it."
        )
    if Channel.objects.filter(team=team, name=name).exists():
        raise ChannelRefused(f"{team} already has a channel named {name!r}.")
    try:
        egress.check_destination(url.strip())
    except egress.EgressError as exc:
        raise ChannelRefused(f"Slipway will not send to this URL: {exc}.") from exc
    with transaction.atomic():
        channel = Channel.objects.create(
            team=team,
            name=name,
            kind=kind,
            url=url.strip(),
            secret=secret,
            events=sorted(set(events)),
        )
        audit_record(
            actor=actor,
            action=Channels.CREATE,
            target=channel,
            after=_shown(channel),
            context=context,
        )
    return channel


def channel_set_enabled(
    *, channel: Channel, enabled: bool, actor: Actor, context: RequestContext | None = None
) -> Channel:
    with transaction.atomic():
        before = _shown(channel)
        channel.enabled = enabled
        channel.save(update_fields=["enabled"])
        audit_record(
            actor=actor,
            action=Channels.ENABLE if enabled else Channels.PAUSE,
            target=channel,
            before={"enabled": before["enabled"]},
            after={"enabled": enabled},
            context=context,
        )
    return channel


def channel_delete(
    *, channel: Channel, actor: Actor, context: RequestContext | None = None
) -> None:
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=Channels.DELETE,
            target=channel,
            before=_shown(channel),
            context=context,
        )
        channel.delete()
